"""Training on a GPU, measured: samples/s of the CNN and PiczakNet per device and precision, and what
each setting scores on one fold of the demo data.

Settings: ``cpu`` with ``precision="32"`` and ``"bf16-mixed"``; ``cuda`` with ``"32"``, ``"bf16-mixed"``
and ``"16-mixed"`` when a CUDA device is present (skipped with a message otherwise; ``bf16-mixed``
also needs a GPU of compute capability 8.0 or later). For each net (``cnn`` with its defaults on
whole clips' log-mel images, 60 bands and their delta; ``piczak`` as the demo runs it: 1000 hidden
units, 41-frame windows and a mean vote) and each setting:

(a) **throughput**: one training epoch (after a warm-up epoch of a separate net: CUDA's context,
    cuDNN's kernel choice and the allocator are ready) and one ``predict_proba`` pass over
    ``--n-samples`` synthetic samples of the per-sample shape the net gets from the demo's feature
    set (a whole clip's image for the cnn, a 41-frame window for piczak), with the net's own training
    recipe (augmentation, schedule) but no validation split. Printed as samples/s of wall time and
    CPU seconds per 1,000 samples (this process's CPU time: on a shared machine, wall time counts the
    other processes' load, CPU time does not). skorch reads each batch's loss with ``.item()``, so the
    GPU's queue is drained within each timed span.
(b) **accuracy**: the toolkit's cross-validation of that net on one test fold of the demo data
    (``--fold``; trained on the other four folds, the validation split drawn from them), as
    ``cli.py cv --estimator NAME --folds FOLD --device D --precision P`` runs it, with the nets'
    own epoch limits and early stopping, or ``--epochs``. Mixed precision must not cost accuracy:
    compare each row with the ``32`` row of the same device.

Every run is seeded (``random_state=0``); on a GPU, cuDNN's kernels are not all deterministic, so
scores there can move by a clip or two between runs.

    python benchmarks/gpu.py [--epochs 10] [--fold 1] [--nets cnn piczak] [--n-samples 1024]
                             [--devices cpu cuda] [--threads N] [--cache cache] [--output DIR]

``make bench-gpu`` runs it with its defaults (``BENCH_GPU_ARGS="--epochs 5"`` for a quick run).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import estimators  # noqa: E402
from estimators._precision import PRECISIONS  # noqa: E402
from featurestore import FeatureStore, extract, load_dataset  # noqa: E402
from pipelines.build import clips_in, feature_params_for, make_pipeline  # noqa: E402
from pipelines.evaluate import cross_validate  # noqa: E402
from pipelines.experiment import DEMO_MODELS  # noqa: E402
from pipelines.loader import adapt_input  # noqa: E402
from pipelines.splits import ClipSplitter  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

#: The nets measured: registry name -> (parameters, segment window), as the demo runs them, but for
#: the number of epochs: the benchmark's ``--epochs``, or the net's own default.
NETS = {"cnn": ({}, None), **{name: ({key: value for key, value in params.items() if key != "max_epochs"}, window)
                              for name, params, window in DEMO_MODELS if name == "piczak"}}
#: (device, precision) settings, in the order printed.
SETTINGS = [("cpu", "32"), ("cpu", "bf16-mixed"), ("cuda", "32"), ("cuda", "bf16-mixed"), ("cuda", "16-mixed")]


class EpochClock(Callback):
    """Wall and CPU seconds of the last training epoch (from ``on_epoch_begin`` to ``on_epoch_end``)."""

    def on_epoch_begin(self, net, **kwargs):
        self.start_ = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, net, **kwargs):
        wall, cpu = self.start_
        self.wall_, self.cpu_ = time.perf_counter() - wall, time.process_time() - cpu


def unavailable(device, precision):
    """Why ``(device, precision)`` cannot run here, or None."""
    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    if (device, precision) == ("cuda", "bf16-mixed") and not torch.cuda.is_bf16_supported(including_emulation=False):
        return f"{torch.cuda.get_device_name()} has no native bfloat16"
    return None


def demo_data(store):
    """The demo data set (built on first use) and each net's stored feature set."""
    dataset = load_dataset("demo", store.root / "datasets" / "demo")
    sets = {}
    for name in NETS:
        kind, params = feature_params_for(name)
        sets[name] = extract(dataset, {kind: params}, store=store, progress=False)[kind]
    return dataset, sets


def input_shape(name, feature_set):
    """Per-sample shape of the net's input: the stored clip in the net's layout, cut to its window."""
    spec = estimators.get_spec(name)
    clip = feature_set.read(feature_set.clip_ids[:1])
    shape = list(adapt_input(clip, spec.input).shape[1:])
    window = NETS[name][1]
    if window:
        shape[-1] = window  # the time axis of an image (C, F, T)
    return tuple(shape)


def throughput(name, shape, device, precision, *, n_samples, threads, seed=0):
    """Training and inference speed of net ``name`` on ``n_samples`` synthetic samples of ``shape``.

    Returns
    -------
    dict
        ``train_sps``, ``train_cpu_per_1k`` (CPU s per 1,000 samples), ``infer_sps``, ``infer_cpu_per_1k``.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, *shape)).astype(np.float32)
    y = np.arange(n_samples) % 8  # the demo's 8 classes

    def net(epochs, clock=None):
        params, _ = NETS[name]
        callbacks = [("epoch_clock", clock)] if clock is not None else []
        return estimators.build(name, **params, random_state=seed, device=device, precision=precision,
                                max_epochs=epochs, valid_fraction=None, n_threads=threads,
                                callbacks=callbacks)

    warm = net(1).fit(X[:256], y[:256])  # CUDA context, cuDNN autotuning, allocator; CPU caches
    warm.predict_proba(X[:256])
    clock = EpochClock()
    fitted = net(1, clock).fit(X, y)
    start = time.perf_counter(), time.process_time()
    fitted.predict_proba(X)
    infer_wall, infer_cpu = time.perf_counter() - start[0], time.process_time() - start[1]
    return {"train_sps": n_samples / clock.wall_, "train_cpu_per_1k": 1000 * clock.cpu_ / n_samples,
            "infer_sps": n_samples / infer_wall, "infer_cpu_per_1k": 1000 * infer_cpu / n_samples}


def fold_accuracy(name, dataset, feature_set, device, precision, *, fold, epochs, threads, seed=0):
    """Accuracy, balanced accuracy and fit time of net ``name`` on test fold ``fold`` of the demo data."""
    params, window = NETS[name]
    clips = clips_in(dataset, feature_set)
    pipeline = make_pipeline(name, feature_set, segment_window=window,
                             run_settings={"random_state": seed, "device": device, "precision": precision,
                                           "max_epochs": epochs, "n_threads": threads}, **params)
    start = time.perf_counter(), time.process_time()
    result = cross_validate(pipeline, clips, splitter=ClipSplitter(clips, folds=[fold]), progress=False)
    row = result.folds.iloc[0]
    epochs_run = len(result.histories[0]) if result.histories and result.histories[0] else None
    return {"accuracy": row["accuracy"], "balanced_accuracy": row["balanced_accuracy"], "epochs_run": epochs_run,
            "cv_wall_s": time.perf_counter() - start[0], "cv_cpu_s": time.process_time() - start[1]}


def markdown(table):
    formats = {"train_sps": "{:.1f}", "train_cpu_per_1k": "{:.2f}", "infer_sps": "{:.1f}", "infer_cpu_per_1k": "{:.2f}",
               "accuracy": "{:.3f}", "balanced_accuracy": "{:.3f}", "cv_wall_s": "{:.1f}", "cv_cpu_s": "{:.1f}"}
    shown = table.copy()
    for column, fmt in formats.items():
        if column in shown:
            shown[column] = shown[column].map(lambda v, fmt=fmt: "" if pd.isna(v) else fmt.format(v))
    return "\n".join(["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
                     + ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, help="epoch limit of the accuracy runs (default: each net's own)")
    parser.add_argument("--fold", type=int, default=1, help="the demo's test fold of the accuracy runs (default 1)")
    parser.add_argument("--nets", nargs="+", choices=list(NETS), default=list(NETS))
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=["cpu", "cuda"])
    parser.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--n-samples", type=int, default=1024, help="samples of the throughput runs (default 1024)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads (default: this machine's cores)")
    parser.add_argument("--no-accuracy", action="store_true", help="throughput only")
    parser.add_argument("--cache", default="cache", help="the feature store (default ./cache)")
    parser.add_argument("--output", type=Path, help="folder for gpu.csv and gpu.md")
    args = parser.parse_args(argv)

    store = FeatureStore(args.cache)
    dataset, sets = demo_data(store)
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__}, {args.threads} threads, CUDA device: {device_name}", flush=True)
    rows = []
    for name in args.nets:
        shape = input_shape(name, sets[name])
        for device, precision in SETTINGS:
            if device not in args.devices or precision not in args.precisions:
                continue
            why = unavailable(device, precision)
            if why:
                print(f"{name:7s} {device:4s} {precision:10s} skipped: {why}", flush=True)
                continue
            row = {"net": name, "device": device, "precision": precision, "input": "x".join(map(str, shape)),
                   **throughput(name, shape, device, precision, n_samples=args.n_samples, threads=args.threads)}
            if not args.no_accuracy:
                row.update(fold_accuracy(name, dataset, sets[name], device, precision, fold=args.fold,
                                         epochs=args.epochs, threads=args.threads))
            accuracy = f", fold {args.fold} accuracy {row['accuracy']:.3f}" if "accuracy" in row else ""
            print(f"{name:7s} {device:4s} {precision:10s} train {row['train_sps']:8.1f} samples/s "
                  f"({row['train_cpu_per_1k']:.2f} CPU s/1k), predict {row['infer_sps']:8.1f} samples/s "
                  f"({row['infer_cpu_per_1k']:.2f} CPU s/1k){accuracy}", flush=True)
            rows.append(row)
    table = pd.DataFrame(rows)
    if rows:
        print("\n" + markdown(table))
    if args.output and rows:
        args.output.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.output / "gpu.csv", index=False)
        (args.output / "gpu.md").write_text(markdown(table) + "\n")
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
