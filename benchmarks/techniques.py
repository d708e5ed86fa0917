"""Training techniques compared: the same network with and without each technique.

On the built-in demo data (its 5 folds) and on the Free Spoken Digit recordings under
``../shared/datasets/fsdd`` (folds grouped by speaker; skipped when absent), each row
cross-validates one network with one technique switched on, or none:

- the ``cnn`` on log-mel features: none, stored augmented copies (2 per clip: time stretch,
  pitch shift and noise), SpecAugment masks, mixup;
- ``deepfourier`` (the learnable mel front end + PiczakNet) on waveforms: front end frozen,
  trainable from the start, trainable after 5 epochs, and that plus on-the-fly waveform
  augmentation (gain, shift, noise);
- ``mstnet`` on waveforms: none, spectrogram forcing, forcing and the IceBreaker schedule.

Every net gets the same seed, epoch limit and early stopping; the scores are the data set's
cross-validation accuracy (mean +/- std over test folds). The table is printed and written to
``--output`` as CSV and markdown.

    python benchmarks/techniques.py [--datasets demo fsdd] [--max-epochs 20] [--n-jobs 2]
                                    [--fsdd-takes 10] [--only cnn] [--folds 1 2]
"""

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimators._augment import BatchAugment  # noqa: E402
from featurestore import FeatureStore, extract, extract_augmented, load_dataset  # noqa: E402
from featurestore.augment import WaveformAugmentation  # noqa: E402
from pipelines.build import clips_in, make_pipeline  # noqa: E402
from pipelines.evaluate import cross_validate  # noqa: E402
from pipelines.splits import ClipSplitter  # noqa: E402

FSDD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fsdd" / "recordings"

#: Stored copies: the augmentations of the UrbanSound8K study, 2 per clip.
STORED = WaveformAugmentation(time_stretch=0.2, pitch_shift=2.0, noise_snr=20.0)
STORED_COPIES = 2

PICZAK = {"n_hidden": 256}  # PiczakNet's 5000-unit layers take hours on 2 cores

#: (network, technique, estimator, parameters, stored copies)
VARIANTS = (
    ("cnn", "none", "cnn", {}, 0),
    ("cnn", "stored copies x2", "cnn", {}, STORED_COPIES),
    ("cnn", "SpecAugment", "cnn", {"batch_augment": BatchAugment(time_mask=8, freq_mask=8, n_masks=2)}, 0),
    ("cnn", "mixup 0.2", "cnn", {"batch_augment": BatchAugment(mixup_alpha=0.2)}, 0),
    ("deepfourier", "front end frozen", "deepfourier", {**PICZAK, "freeze_front_end": True}, 0),
    ("deepfourier", "trainable", "deepfourier", {**PICZAK, "freeze_front_end": False}, 0),
    ("deepfourier", "trainable after 5", "deepfourier", {**PICZAK, "freeze_front_end": 5}, 0),
    ("deepfourier", "after 5 + on-the-fly gain/shift/noise", "deepfourier",
     {**PICZAK, "freeze_front_end": 5,
      "batch_augment": BatchAugment(gain_db=6.0, time_shift=0.1, noise_snr=20.0)}, 0),
    ("mstnet", "none", "mstnet", PICZAK, 0),
    ("mstnet", "forcing", "mstnet", {**PICZAK, "forcing_epochs": 10}, 0),
    ("mstnet", "forcing + IceBreaker", "mstnet", {**PICZAK, "forcing_epochs": 10, "icebreaker": [4, 4, 4, 8]}, 0),
)

KIND_OF = {"cnn": "mel", "deepfourier": "raw", "mstnet": "raw"}


def fsdd_dataset(store, takes):
    """FSDD as a CSV manifest (label: digit, group: speaker), takes 0 .. ``takes - 1`` of each."""
    rows = []
    for path in sorted(FSDD.glob("*.wav")):
        digit, speaker, take = path.stem.split("_")
        if int(take) < takes:
            rows.append({"path": str(path), "label": digit, "group": speaker})
    manifest = store.root / "benchmarks" / f"fsdd-takes{takes}.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    text = pd.DataFrame(rows).to_csv(index=False)
    if not manifest.is_file() or manifest.read_text() != text:  # rewriting would change its identity
        manifest.write_text(text)
    return load_dataset("csv", manifest)


def run(dataset, audio, variants, *, store, max_epochs, n_jobs, folds):
    """Cross-validate each variant on ``dataset``; one result row per variant."""
    n_threads = max(1, (os.cpu_count() or 1) // n_jobs)
    sets = {}
    rows = []
    for network, technique, name, params, copies in variants:
        kind = KIND_OF[network]
        if kind not in sets:
            sets[kind] = extract(dataset, {kind: {}}, store=store, audio=audio, n_jobs=n_jobs)[kind]
        fs = sets[kind]
        augmented = None
        if copies:
            augmented = extract_augmented(dataset, {kind: {}}, STORED, copies=copies, seed=0, store=store,
                                          audio=audio, n_jobs=n_jobs)[kind]
        common = {"random_state": 0, "max_epochs": max_epochs, "n_threads": n_threads}
        pipeline = make_pipeline(name, fs, augmented_set=augmented, run_settings=common, **params)
        clips = clips_in(dataset, fs)
        start = time.perf_counter()
        result = cross_validate(pipeline, clips, splitter=ClipSplitter(clips, folds=folds, random_state=0),
                                n_jobs=n_jobs, progress=False)
        row = {"dataset": dataset.name if dataset.name != "csv" else "fsdd", "network": network,
               "technique": technique, "accuracy": result.mean("accuracy"), "std": result.std("accuracy"),
               "balanced_accuracy": result.mean("balanced_accuracy"), "folds": len(result.folds),
               "n_clips": len(clips), "wall_time_s": time.perf_counter() - start}
        print(f"{row['dataset']:6s} {network:12s} {technique:40s} {row['accuracy']:.3f} +/- {row['std']:.3f} "
              f"({row['wall_time_s']:.0f} s)", flush=True)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["demo", "fsdd"], choices=["demo", "fsdd"])
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=2, help="folds trained in parallel")
    parser.add_argument("--fsdd-takes", type=int, default=10,
                        help="recordings per speaker and digit (of 50): 10 gives 600 clips")
    parser.add_argument("--only", nargs="+", choices=sorted(KIND_OF), help="networks to run (default all)")
    parser.add_argument("--folds", nargs="+", type=int, help="test folds of the demo data (default all)")
    parser.add_argument("--output", default=None, help="folder of the table (default results/techniques-<time>)")
    args = parser.parse_args(argv)

    store = FeatureStore()
    variants = [v for v in VARIANTS if not args.only or v[0] in args.only]
    rows = []
    for name in args.datasets:
        if name == "demo":
            dataset, audio, folds = load_dataset("demo", store.root / "datasets" / "demo"), None, args.folds
        elif FSDD.is_dir():
            dataset, audio, folds = fsdd_dataset(store, args.fsdd_takes), {"duration": 1.0}, None
        else:
            print(f"FSDD skipped: no recordings at {FSDD}")
            continue
        print(f"\n== {name}: {len(dataset.clips)} clips ==", flush=True)
        rows += run(dataset, audio, variants, store=store, max_epochs=args.max_epochs, n_jobs=args.n_jobs,
                    folds=folds)

    table = pd.DataFrame(rows)
    out = Path(args.output or Path("results") / f"techniques-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "techniques.csv", index=False)
    shown = table.assign(accuracy=[f"{a:.3f} +/- {s:.3f}" for a, s in zip(table["accuracy"], table["std"])],
                         balanced_accuracy=table["balanced_accuracy"].map("{:.3f}".format),
                         wall_time_s=table["wall_time_s"].map("{:.0f}".format)).drop(columns="std")
    markdown = "\n".join(["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
                         + ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)])
    (out / "techniques.md").write_text(markdown + "\n")
    print("\n" + markdown)
    print(f"\nwritten to {out / 'techniques.csv'} and {out / 'techniques.md'}")


if __name__ == "__main__":
    main()
