"""How long a default network takes to train one fold: issue 11's target, 2,100 four-second clips in
at most 10 minutes on 2 cores.

For each registry name (by default the nets of the default ensemble: ``DEFAULT_ENSEMBLE`` in
``pipelines/build.py``, less its classical member), the per-clip shape of the net's default feature
is that of the store's own function (:func:`featurestore.features.compute`) on one clip of
``--seconds`` of noise at ``--sr``, given to the net as a pipeline gives it
(:func:`pipelines.loader.adapt_input`). The default estimator (its recipe, epochs and seed 0) is
fitted on ``--clips`` random float32 inputs of that shape (what a fit costs does not depend on the
values), then predicts ``--clips // 5`` more, as the held-out fold of a 5-fold split; both timed by
the wall clock and ``time.process_time``, with ``--threads`` torch threads. Feature extraction is
not timed: the store computes it once for every later run. Run it alone on a quiet machine::

    python benchmarks/fold_time.py [--estimators cnn cnn6 tdnn gru] [--clips 2100] [--seconds 4]
                                   [--sr 22050] [--threads 2] [--max-epochs N]

The fold's wall time is the fit's and the prediction's; ``--max-epochs`` shortens a run, and the fit's
time per epoch times the default epochs then estimates the fold (marked "estimated").
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import estimators  # noqa: E402
from featurestore.features import compute  # noqa: E402
from pipelines.build import DEFAULT_ENSEMBLE, feature_params_for  # noqa: E402
from pipelines.loader import adapt_input  # noqa: E402

TARGET_S = 600  # the 10 minutes per fold
N_CLASSES = 10


def input_shape(name, seconds, sr):
    """Per-clip shape of what estimator ``name`` gets from its default feature of a ``seconds`` clip.

    Returns
    -------
    tuple of int
        E.g. ``(2, 64, 173)`` for cnn6 (64-band log-mel and its delta) of 4 s at 22,050 Hz.
    """
    kind, params = feature_params_for(name)
    clip = np.random.default_rng(0).standard_normal(int(round(seconds * sr))).astype(np.float32) * 0.1
    feature = compute(kind, clip, sr=sr, **params)
    return adapt_input(feature[np.newaxis], estimators.get_spec(name).input).shape[1:]


def time_fold(name, shape, *, n_clips, max_epochs=None, seed=0):
    """Fit the default ``name`` on ``n_clips`` random inputs of ``shape``, predict a fifth as many more.

    Returns
    -------
    dict
        ``epochs`` (trained), ``default_epochs`` (the estimator's own ``max_epochs``), ``fit_wall_s``,
        ``fit_cpu_s``, ``predict_wall_s`` and ``predict_cpu_s``.
    """
    rng = np.random.default_rng(seed)
    n_test = max(1, n_clips // 5)
    X = rng.standard_normal((n_clips + n_test, *shape)).astype(np.float32)
    y = np.arange(n_clips + n_test) % N_CLASSES
    model = estimators.build(name, random_state=seed)
    default_epochs = model.max_epochs
    if max_epochs is not None:
        model.set_params(max_epochs=max_epochs)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(X[:n_clips], y[:n_clips])
    fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    model.predict_proba(X[n_clips:])
    return {"epochs": len(model.history_), "default_epochs": default_epochs,
            "fit_wall_s": fit_wall, "fit_cpu_s": fit_cpu,
            "predict_wall_s": time.perf_counter() - wall, "predict_cpu_s": time.process_time() - cpu}


def main(argv=None):
    nets = [name for name in DEFAULT_ENSEMBLE if estimators.get_spec(name).input != "flat"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--estimators", nargs="+", default=nets, help=f"registry names (default: {' '.join(nets)})")
    parser.add_argument("--clips", type=int, default=2100, help="training clips of the fold")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of a clip")
    parser.add_argument("--sr", type=int, default=22050, help="sampling rate of the clips, Hz")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--max-epochs", type=int, default=None, help="fewer epochs than the default, for a quick run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{args.clips} training clips of {args.seconds:g} s at {args.sr} Hz, {args.threads} torch threads; "
          f"target: a fold within {TARGET_S} s", flush=True)
    columns = ["estimator", "input per clip", "epochs", "fit wall s", "fit CPU s", "predict wall s", "fold wall s",
               "within target"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for name in args.estimators:
        shape = input_shape(name, args.seconds, args.sr)
        row = time_fold(name, shape, n_clips=args.clips, max_epochs=args.max_epochs)
        default_epochs = row["default_epochs"]
        fold_s = row["fit_wall_s"] * default_epochs / row["epochs"] + row["predict_wall_s"]
        fold = f"{fold_s:.0f}"
        if row["epochs"] != default_epochs:
            fold += f" (for {default_epochs} epochs, estimated)"
        print(f"| {name} | {' x '.join(map(str, shape))} | {row['epochs']} | {row['fit_wall_s']:.0f} | "
              f"{row['fit_cpu_s']:.0f} | {row['predict_wall_s']:.1f} | {fold} | "
              f"{'yes' if fold_s <= TARGET_S else 'no'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
