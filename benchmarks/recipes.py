"""Recipe benchmark: each family's defaults against hand-written baselines, on the same folds.

On the built-in demo data, the Free Spoken Digit recordings under ``../shared/datasets/fsdd``
(leave one speaker out: 6 folds) and the drum one-shots that ``../shared/datasets/drumkits/build.py``
assembles (5 kit folds; ``--drumkits`` names its manifest), each row cross-validates one recipe
fold by fold and reports, per test fold and as the mean, the accuracy, the balanced accuracy and
the CPU time of that fold (fit and predict; features are computed before, once per data set):

- ``baseline: librosa MFCC(40) mean/std + SVC(C=10)``: the script a user writes by hand, in plain
  librosa and scikit-learn (:func:`baseline_features`, :func:`baseline_fold`), on the toolkit's
  folds but not on its features or audio loading;
- ``baseline: plain-torch PiczakNet ...``: the deep script a user writes by hand
  (:func:`piczak_features`, :func:`piczak_fold`): librosa log-mel (60 bands) and its delta,
  41-frame segments with 50 % overlap, PiczakNet written inline in plain torch (as in
  ``estimators/piczak.py``: 80 filters, two dense layers of 5000), Adam (lr 1e-4), 15 epochs of
  batches of 32, and a clip's class the mean of its segments' probabilities;
- ``svm``, ``softmax``, ``mlp``, ``xgboost``: the registry's classical estimators with their
  defaults, on their default stored features, through the toolkit's API (what ``cli.py cv
  --estimator NAME`` runs);
- ``cnn``, ``cnn6``, ``crnn``, ``tdnn``, ``piczak`` and the deep default (:data:`pipelines.build.DEEP_DEFAULT`): the registry's
  nets with their defaults, the same way;
- ``ensemble: soft svm+cnn+cnn6+tdnn+gru`` (:data:`pipelines.build.DEFAULT_ENSEMBLE`): the default
  ensemble (what ``cli.py ensemble`` runs), each member fitted with the groups of its training
  clips, every net trained on every clip and voting its softmax as it is (none holds a validation
  split out to calibrate on); and again with each other calibration of
  :data:`pipelines.build.CALIBRATIONS` (``temperature``: on two inner fits of each training set;
  ``none``). Its rows also give ``log_loss`` (of the out-of-fold probabilities), where calibration
  shows.

A data set whose files are absent is skipped with a message. The data under ``../shared`` is
for measuring only; nothing in the project depends on it. The table is printed and written to
``--output`` as CSV and markdown.

    python benchmarks/recipes.py [--datasets demo fsdd drumkits] [--only svm baseline] [--folds 1 2]
                                 [--shared ../shared/datasets] [--drumkits /tmp/drumkits/manifest.csv]
                                 [--output DIR]

``--only`` keeps the rows whose name contains one of its words; ``--folds`` runs only those test
folds (each still trained on every other fold, so its scores are those of the full protocol).
"""

import argparse
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featurestore import FeatureStore, extract, load_dataset  # noqa: E402
from pipelines.build import (CALIBRATIONS, DEEP_DEFAULT, DEFAULT_ENSEMBLE, clips_in,  # noqa: E402
                             feature_params_for, make_ensemble, make_pipeline, nets_to_calibrate)
from pipelines.evaluate import METRICS, cross_validate  # noqa: E402
from pipelines.splits import ClipSplitter  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"  # ../shared of the checkout
DRUMKITS = Path("/tmp/drumkits/manifest.csv")

#: The toolkit's recipes, by row name: (registry name, parameters). Defaults only.
CLASSICAL = {"svm": ("svm", {}), "softmax": ("softmax", {}), "mlp": ("mlp", {}), "xgboost": ("xgboost", {})}
#: The toolkit's nets, by row name; the deep default is added by its name (one place: pipelines.build).
DEEP = {name: (name, {}) for name in dict.fromkeys(["cnn", "cnn6", "crnn", "tdnn", "piczak", DEEP_DEFAULT])}
BASELINE = "baseline: librosa MFCC(40) mean/std + SVC(C=10)"
PICZAK_BASELINE = "baseline: plain-torch PiczakNet, log-mel 60 + delta, 41-frame segments"
ENSEMBLE = f"ensemble: soft {'+'.join(DEFAULT_ENSEMBLE)}"


# ---------------------------------------------------------------- data sets
def fsdd_dataset(store, recordings):
    """FSDD as a CSV manifest: label the digit, group and fold the speaker (leave one speaker out)."""
    rows = []
    for path in sorted(recordings.glob("*.wav")):
        digit, speaker, _ = path.stem.split("_")
        rows.append({"path": str(path), "label": digit, "group": speaker})
    table = pd.DataFrame(rows)
    speakers = sorted(table["group"].unique())
    table["fold"] = table["group"].map({s: i + 1 for i, s in enumerate(speakers)})
    manifest = store.root / "benchmarks" / "fsdd-speaker-folds.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    text = table.to_csv(index=False)
    if not manifest.is_file() or manifest.read_text() != text:  # rewriting would change its identity
        manifest.write_text(text)
    return load_dataset("csv", manifest)


def datasets(names, store, shared, drumkits):
    """``(name, Dataset)`` of each requested data set that is present; a message for the others."""
    fsdd = shared / "fsdd" / "recordings"
    for name in names:
        if name == "demo":
            yield name, load_dataset("demo", store.root / "datasets" / "demo")
        elif name == "fsdd" and fsdd.is_dir():
            yield name, fsdd_dataset(store, fsdd)
        elif name == "drumkits" and drumkits.is_file():
            yield name, load_dataset("csv", drumkits)
        elif name == "fsdd":
            print(f"fsdd skipped: no recordings at {fsdd}", flush=True)
        else:
            print(f"drumkits skipped: no manifest at {drumkits}; build it with "
                  f"`python3 {shared / 'drumkits' / 'build.py'} --out {drumkits.parent}` "
                  "(see its README)", flush=True)


# ---------------------------------------------------------------- the hand-written baseline
def baseline_features(paths):
    """What a user writes: librosa's default load (22,050 Hz mono) and MFCC(40) mean and std.

    Returns
    -------
    F : np.ndarray [shape=(n_clips, 80)]
    """
    import librosa

    rows = []
    for path in paths:
        y, sr = librosa.load(path)
        with warnings.catch_warnings():  # n_fft larger than a very short clip: librosa pads it
            warnings.simplefilter("ignore", UserWarning)
            mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
        rows.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
    return np.array(rows)


def baseline_fold(F, y, train, test):
    """Predictions of ``StandardScaler -> SVC(C=10)`` (RBF) fitted on rows ``train`` of ``F``."""
    from sklearn.pipeline import make_pipeline as sk_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return sk_pipeline(StandardScaler(), SVC(C=10)).fit(F[train], y[train]).predict(F[test])


# ---------------------------------------------------------------- the hand-written deep baseline
PICZAK = {"sr": 22050, "n_mels": 60, "n_fft": 1024, "hop_length": 512, "frames": 41, "hop_frames": 20,
          "n_filters": 80, "n_hidden": 5000, "lr": 1e-4, "epochs": 15, "batch_size": 32}


def piczak_features(paths, *, sr=PICZAK["sr"], n_mels=PICZAK["n_mels"], n_fft=PICZAK["n_fft"],
                    hop_length=PICZAK["hop_length"], frames=PICZAK["frames"]):
    """What a user writes: librosa's load, log-mel in dB and its delta, as one 2-channel image per clip.

    A clip shorter than one segment is padded with silence to ``frames`` frames.

    Returns
    -------
    list of np.ndarray [shape=(2, n_mels, n_frames)], float32
    """
    import librosa

    images = []
    for path in paths:
        y, _ = librosa.load(path, sr=sr)
        y = np.pad(y, (0, max(0, (frames - 1) * hop_length - len(y))))
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                                                 n_mels=n_mels), ref=np.max)
        images.append(np.stack([mel, librosa.feature.delta(mel)]).astype(np.float32))
    return images


def piczak_segments(images, rows, *, frames=PICZAK["frames"], hop=PICZAK["hop_frames"]):
    """The ``frames``-wide segments (hop ``hop``: 50 % overlap) of clips ``rows``, and the clip of each.

    Returns
    -------
    segments : np.ndarray [shape=(n_segments, 2, n_mels, frames)], float32
    owner : np.ndarray [shape=(n_segments,)], int
        Position in ``rows`` of each segment's clip.
    """
    segments, owner = [], []
    for k, row in enumerate(rows):
        image = images[row]
        for start in range(0, image.shape[-1] - frames + 1, hop):
            segments.append(image[..., start:start + frames])
            owner.append(k)
    return np.stack(segments), np.array(owner)


def piczak_fold(images, y, train, test, *, seed=0, **overrides):
    """Train PiczakNet in plain torch on the segments of clips ``train``; the mean-probability vote of
    each ``test`` clip's segments. ``overrides`` change :data:`PICZAK`'s training settings (tests
    make it tiny).

    Returns
    -------
    np.ndarray [shape=(len(test),)]
        Predicted labels of the ``test`` clips.
    """
    import torch
    from torch import nn

    settings = {**PICZAK, **overrides}
    torch.manual_seed(seed)
    classes, codes = np.unique(y[train], return_inverse=True)
    X, owner = piczak_segments(images, train, frames=settings["frames"], hop=settings["hop_frames"])
    mean, std = X.mean(axis=(0, 3), keepdims=True), X.std(axis=(0, 3), keepdims=True) + 1e-6  # per band
    X = torch.from_numpy((X - mean) / std)
    targets = torch.from_numpy(codes[owner]).long()
    f, hidden = settings["n_filters"], settings["n_hidden"]
    convs = nn.Sequential(  # the first convolution spans 57 of 60 bands, as in the paper
        nn.Conv2d(2, f, kernel_size=(settings["n_mels"] - 3, 6)), nn.ReLU(), nn.MaxPool2d((4, 3), stride=(1, 3)),
        nn.Dropout(0.5), nn.Conv2d(f, f, kernel_size=(1, 3)), nn.ReLU(), nn.MaxPool2d((1, 3), stride=(1, 3)),
        nn.Flatten())
    n_flat = convs(X[:1]).shape[1]
    net = nn.Sequential(convs, nn.Linear(n_flat, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, hidden),
                        nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, len(classes)))
    optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"])
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(settings["epochs"]):
        for batch in torch.randperm(len(X), generator=generator).split(settings["batch_size"]):
            optimizer.zero_grad()
            loss_fn(net(X[batch]), targets[batch]).backward()
            optimizer.step()
    net.eval()
    X_test, owner = piczak_segments(images, test, frames=settings["frames"], hop=settings["hop_frames"])
    with torch.no_grad():
        proba = torch.softmax(net(torch.from_numpy((X_test - mean) / std)), dim=1).numpy()
    votes = np.stack([proba[owner == k].mean(axis=0) for k in range(len(test))])
    return classes[votes.argmax(axis=1)]


# ---------------------------------------------------------------- runs
def _row(fold, y_true, prediction, cpu, proba=None, classes=None):
    from sklearn.metrics import log_loss

    row = {"fold": fold, "accuracy": METRICS["accuracy"](y_true, prediction),
           "balanced_accuracy": METRICS["balanced_accuracy"](y_true, prediction), "cpu_s": cpu}
    if proba is not None:
        # the proba_<class> columns name the classes as text
        row["log_loss"] = log_loss(np.asarray(y_true).astype(str), proba, labels=classes)
    return row


def _test_folds(clips, folds):
    present = sorted(int(f) for f in clips["fold"].unique())
    return [f for f in present if folds is None or f in folds]


def _features(names, dataset, store):
    """The stored feature set of each registry name's default kind."""
    sets = {}
    for name in names:
        kind, feature_params = feature_params_for(name)
        sets[name] = extract(dataset, {kind: feature_params}, store=store, progress=False)[kind]
    return sets


def _cv_folds(model, clips, folds, members=()):
    """Per-fold rows of ``model`` (a pipeline or an ensemble); with ``members``, also each member's rows
    from the member fitted inside the fold's ensemble (CPU time: the ensemble's)."""
    rows, member_rows = [], {name: [] for name in members}
    for fold in _test_folds(clips, folds):
        start = time.process_time()
        result = cross_validate(model, clips, splitter=ClipSplitter(clips, folds=[fold]), progress=False)
        cpu = time.process_time() - start
        p = result.predictions
        classes = [c[len("proba_"):] for c in p.columns if c.startswith("proba_")]
        proba = p[[f"proba_{c}" for c in classes]].to_numpy() if classes else None
        rows.append(_row(fold, p["label"], p["prediction"], cpu, proba, classes or None))
        for name in members:
            member_rows[name].append(_row(fold, p["label"], p[f"member_{name}"], cpu))
    return rows, member_rows


def toolkit_folds(name, params, dataset, store, folds=None):
    """Per-fold rows of registry estimator ``name`` with ``params``, through the toolkit's API."""
    fs = _features([name], dataset, store)[name]
    clips = clips_in(dataset, fs)
    pipeline = make_pipeline(name, fs, run_settings={"random_state": 0}, **params)
    return _cv_folds(pipeline, clips, folds)[0]


def ensemble_folds(dataset, store, folds=None, calibration=CALIBRATIONS[0]):
    """Per-fold rows of the default ensemble (soft vote; nets calibrated as ``calibration``, one of
    :data:`pipelines.build.CALIBRATIONS`), and of each of its members as fitted inside it:
    ``(rows, {member: rows})``."""
    sets = _features(DEFAULT_ENSEMBLE, dataset, store)
    clips = clips_in(dataset, *sets.values())
    members = [(name, make_pipeline(name, sets[name], run_settings={"random_state": 0})) for name in DEFAULT_ENSEMBLE]
    model = make_ensemble(members, "soft", clips, calibrate=nets_to_calibrate(members, calibration),
                          calibration=calibration)
    return _cv_folds(model, clips, folds, DEFAULT_ENSEMBLE)


def baseline_folds(features_fn, fold_fn, dataset, folds=None):
    """Per-fold rows of a hand-written baseline on the data set's own folds: ``features_fn(paths)``
    once, then ``fold_fn(features, y, train, test)`` per test fold."""
    clips = dataset.clips
    F = features_fn(clips["path"])
    y = clips["label"].to_numpy()
    rows = []
    for fold in _test_folds(clips, folds):
        train, test = np.flatnonzero(clips["fold"] != fold), np.flatnonzero(clips["fold"] == fold)
        start = time.process_time()
        prediction = fold_fn(F, y, train, test)
        rows.append(_row(fold, y[test], prediction, time.process_time() - start))
    return rows


def recipes(dataset, store, folds=None):
    """``(row name, callable giving its per-fold rows)`` of every recipe; an ensemble's callable gives
    its members' rows too, as ``{row name: rows}``."""
    out = [(BASELINE, lambda: baseline_folds(baseline_features, baseline_fold, dataset, folds)),
           (PICZAK_BASELINE, lambda: baseline_folds(piczak_features, piczak_fold, dataset, folds))]
    out += [(row, lambda e=e, p=p: toolkit_folds(e, p, dataset, store, folds))
            for row, (e, p) in {**CLASSICAL, **DEEP}.items()]
    for calibration in CALIBRATIONS:
        row = ENSEMBLE if calibration == CALIBRATIONS[0] else f"{ENSEMBLE} (calibration {calibration})"

        def run_ensemble(row=row, calibration=calibration):
            rows, members = ensemble_folds(dataset, store, folds, calibration)
            if calibration != CALIBRATIONS[0]:  # the same members' predictions as the default's: reported once
                return rows
            return {row: rows, **{f"{name} (in the ensemble)": member for name, member in members.items()}}
        out.append((row, run_ensemble))
    return out


def run(name, dataset, store, only, folds=None):
    """Every selected recipe on one data set: one row per (recipe, fold)."""
    rows = []
    for recipe, folds_of in recipes(dataset, store, folds):
        if only and not any(word in recipe for word in only):
            continue
        out = folds_of()
        for row, per_fold in (out.items() if isinstance(out, dict) else [(recipe, out)]):
            per_fold = pd.DataFrame(per_fold).assign(dataset=name, recipe=row)
            print(f"{name:9s} {row:60s} acc {per_fold['accuracy'].mean():.3f} "
                  f"bal {per_fold['balanced_accuracy'].mean():.3f} cpu/fold {per_fold['cpu_s'].mean():.2f} s",
                  flush=True)
            rows.append(per_fold)
    return rows


def table_of(per_fold):
    """One line per (data set, recipe): per-fold scores and CPU times, and their means."""
    lines = []
    for (dataset, recipe), rows in per_fold.groupby(["dataset", "recipe"], sort=False):
        lines.append({
            "dataset": dataset, "recipe": recipe,
            "accuracy": rows["accuracy"].mean(), "balanced_accuracy": rows["balanced_accuracy"].mean(),
            "cpu_s_per_fold": rows["cpu_s"].mean(),
            "log_loss": rows["log_loss"].mean() if "log_loss" in rows else np.nan,
            "accuracy_per_fold": " ".join(f"{a:.3f}" for a in rows["accuracy"]),
            "balanced_per_fold": " ".join(f"{a:.3f}" for a in rows["balanced_accuracy"]),
            "cpu_s_per_fold_each": " ".join(f"{c:.2f}" for c in rows["cpu_s"]),
        })
    return pd.DataFrame(lines)


def markdown(table):
    shown = table.assign(**{c: table[c].map("{:.3f}".format) for c in ("accuracy", "balanced_accuracy", "log_loss")},
                         cpu_s_per_fold=table["cpu_s_per_fold"].map("{:.2f}".format))
    return "\n".join(["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
                     + ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["demo", "fsdd", "drumkits"],
                        choices=["demo", "fsdd", "drumkits"])
    parser.add_argument("--shared", type=Path, default=SHARED,
                        help="the shared data sets folder (default: ../shared/datasets of the checkout)")
    parser.add_argument("--drumkits", type=Path, default=DRUMKITS, help="manifest.csv of the drum kits")
    parser.add_argument("--only", nargs="+", help="recipes whose name contains one of these words")
    parser.add_argument("--folds", nargs="+", type=int, help="test folds to run (default all; each still trains "
                                                               "on every other fold)")
    parser.add_argument("--output", default=None, help="folder of the table (default results/recipes-<time>)")
    args = parser.parse_args(argv)

    store = FeatureStore()
    per_fold = []
    for name, dataset in datasets(args.datasets, store, args.shared, args.drumkits):
        print(f"\n== {name}: {len(dataset.clips)} clips ==", flush=True)
        per_fold += run(name, dataset, store, args.only, args.folds)
    if not per_fold:
        print("nothing was run")
        return
    per_fold = pd.concat(per_fold, ignore_index=True)
    table = table_of(per_fold)
    out = Path(args.output or Path("results") / f"recipes-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    per_fold.to_csv(out / "recipes-folds.csv", index=False)
    table.to_csv(out / "recipes.csv", index=False)
    (out / "recipes.md").write_text(markdown(table) + "\n")
    print("\n" + markdown(table))
    print(f"\nwritten to {out / 'recipes.csv'}, {out / 'recipes-folds.csv'} and {out / 'recipes.md'}")


if __name__ == "__main__":
    main()
