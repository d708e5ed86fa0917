"""Classify new audio files with a saved model, by sliding windows when a file is longer than a clip."""

import joblib
import numpy as np
import pandas as pd

from featurestore import audio as audio_io


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


def predict_files(model_path, files, *, hop=0.5):
    """Predict the class of each file, window by window and aggregated.

    Parameters
    ----------
    model_path : str
        ``model.joblib`` written by an experiment (a fitted pipeline and its audio settings).
    files : list of str
    hop : float
        Hop between windows as a fraction of the clip length.

    Returns
    -------
    pandas.DataFrame
        One row per window (``window`` = 0, 1, ...) and one aggregated row per file (``window`` =
        "all", the mean probability over windows): ``file``, ``window``, ``start_s``, ``end_s``,
        ``prediction``, ``probability``.
    """
    if not 0 < hop <= 1:
        raise ValueError(f"hop={hop} must be in (0, 1]")
    bundle = joblib.load(model_path)
    model, settings = bundle["model"], bundle["audio"]
    sr = settings["sr"]
    n_samples = round(sr * settings["duration"])
    rows = []
    for path in files:
        y, native_sr = audio_io.decode(path)
        y = audio_io.resample(y, native_sr, sr)
        if settings.get("normalize"):
            y = y / max(float(np.abs(y).max()), 1e-12)
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
        for i, (start, (label, p)) in enumerate(zip(starts, per_window)):
            rows.append({"file": str(path), "window": str(i), "start_s": start / sr,
                         "end_s": min(start + n_samples, len(y)) / sr, "prediction": label, "probability": p})
        rows.append({"file": str(path), "window": "all", "start_s": 0.0, "end_s": len(y) / sr,
                     "prediction": overall[0], "probability": overall[1]})
    return pd.DataFrame(rows)
