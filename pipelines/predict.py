"""Classify new audio files with a saved model, by sliding windows when a file is longer than a clip."""

import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from featurestore import audio as audio_io
from featurestore.errors import AudioError, ParameterError

#: What every ``model.joblib`` written by an experiment holds.
MODEL_KEYS = ("model", "audio", "estimator", "feature", "dataset", "classes")


class ModelFileError(Exception):
    """A file given as a model is not a ``model.joblib`` written by grid, cv, ensemble or demo."""


def load_model(path):
    """Read a ``model.joblib`` written by an experiment (see :func:`pipelines.results.write_run`).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        With the keys :data:`MODEL_KEYS`: ``model`` is the fitted pipeline, ``audio`` its audio settings.

    Raises
    ------
    ModelFileError
        If ``path`` is missing, a folder, not a joblib file, or a joblib file of something else.
    """
    path = Path(path)
    what = "not a model.joblib written by grid, cv, ensemble or demo"
    if not path.exists():
        raise ModelFileError(f"{path} does not exist")
    if path.is_dir():
        hint = " (the model is its model.joblib)" if (path / "model.joblib").is_file() else ""
        raise ModelFileError(f"{path} is a folder, {what}{hint}")
    try:
        bundle = joblib.load(path)
    # what unpickling a file of another kind raises depends on its first bytes (KeyError for text,
    # UnpicklingError, EOFError, ValueError...): any of them means the file is not a model
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, IndexError, TypeError,
            AttributeError, ImportError) as exc:
        raise ModelFileError(f"{path} is {what}") from exc  # the cause, for --debug, is unpickling noise
    if not isinstance(bundle, dict) or not set(MODEL_KEYS) <= set(bundle):
        raise ModelFileError(f"{path} is {what} (it holds a {type(bundle).__name__} without {', '.join(MODEL_KEYS)})")
    return bundle


def windows_of(y, n_samples, hop, pad_mode="zero"):
    """Cut ``y`` into windows of ``n_samples``, ``hop`` samples apart, the last one ending at the end.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    n_samples : int
        Window (clip) length.
    hop : int
        Samples between window starts.

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, n_samples)], float32
    starts : np.ndarray [shape=(n_windows,)], int
        First sample of each window (a shorter signal gives one window at 0, padded).
    """
    if len(y) <= n_samples:
        return audio_io.fix_length(y, n_samples, pad_mode=pad_mode)[None], np.array([0])
    starts = list(range(0, len(y) - n_samples + 1, max(1, hop)))
    if starts[-1] != len(y) - n_samples:
        starts.append(len(y) - n_samples)
    starts = np.array(starts)
    return np.stack([y[s:s + n_samples] for s in starts]).astype(np.float32), starts


def predict_files(model_path, files, *, hop=0.5, on_error=None):
    """Predict the class of each file, window by window and aggregated.

    Parameters
    ----------
    model_path : str
        ``model.joblib`` written by an experiment (a fitted pipeline and its audio settings).
    files : list of str
    hop : float
        Hop between windows as a fraction of the clip length.
    on_error : callable, optional
        Called as ``on_error(path, exc)`` for a file that cannot be used (an :class:`AudioError`:
        missing, unreadable, empty...), and the other files are classified; without it, the first
        such file raises.

    Returns
    -------
    pandas.DataFrame
        One row per window (``window`` = 0, 1, ...) and one aggregated row per file (``window`` =
        "all", the mean probability over windows): ``file``, ``window``, ``start_s``, ``end_s``,
        ``prediction``, ``probability``.
    """
    if not 0 < hop <= 1:
        raise ParameterError(f"hop={hop} must be in (0, 1]")
    bundle = load_model(model_path)
    rows = []
    for path in files:
        try:
            y = _read(path, bundle["audio"])
        except AudioError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            continue
        rows.extend(_predict_one(bundle["model"], str(path), y, bundle["audio"], hop))
    return pd.DataFrame(rows, columns=["file", "window", "start_s", "end_s", "prediction", "probability"])


def _read(path, settings):
    """The samples of ``path`` at the model's rate (normalised when the model's audio settings say so)."""
    y, native_sr = audio_io.decode(path)
    y = audio_io.resample(y, native_sr, settings["sr"])
    if settings.get("normalize"):
        y = y / max(float(np.abs(y).max()), 1e-12)
    return y


def _predict_one(model, path, y, settings, hop):
    """Rows of :func:`predict_files` for one file's samples ``y``."""
    sr = settings["sr"]
    n_samples = round(sr * settings["duration"])
    windows, starts = windows_of(y, n_samples, int(hop * n_samples), settings.get("pad_mode", "zero"))
    classes = np.asarray(model.classes_)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(windows)
        mean = proba.mean(axis=0)
        per_window = [(classes[p.argmax()], float(p.max())) for p in proba]
        overall = (classes[mean.argmax()], float(mean.max()))
    else:  # hard voting: majority over windows
        predicted = model.predict(windows)
        values, counts = np.unique(predicted, return_counts=True)
        per_window = [(p, np.nan) for p in predicted]
        overall = (values[counts.argmax()], counts.max() / len(predicted))
    rows = [{"file": path, "window": str(i), "start_s": start / sr, "end_s": min(start + n_samples, len(y)) / sr,
             "prediction": label, "probability": p} for i, (start, (label, p)) in enumerate(zip(starts, per_window))]
    rows.append({"file": path, "window": "all", "start_s": 0.0, "end_s": len(y) / sr,
                 "prediction": overall[0], "probability": overall[1]})
    return rows
