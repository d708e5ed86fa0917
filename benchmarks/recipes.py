"""Recipe benchmark: each family's defaults against hand-written baselines, on the same folds.

On the built-in demo data, the Free Spoken Digit recordings under ``../shared/datasets/fsdd``
(leave one speaker out: 6 folds) and the drum one-shots that ``../shared/datasets/drumkits/build.py``
assembles (5 kit folds; ``--drumkits`` names its manifest), each row cross-validates one recipe
fold by fold and reports, per test fold and as the mean, the accuracy, the balanced accuracy and
the CPU time of that fold (fit and predict; features are computed before, once per data set):

- ``baseline: librosa MFCC(40) mean/std + SVC(C=10)``: the script a user writes by hand, in plain
  librosa and scikit-learn (:func:`baseline_features`, :func:`baseline_fold`), on the toolkit's
  folds but not on its features or audio loading;
- ``svm``, ``softmax``, ``mlp``, ``xgboost``: the registry's classical estimators with their
  defaults, on their default stored features, through the toolkit's API (what ``cli.py cv
  --estimator NAME`` runs).

A data set whose files are absent is skipped with a message. The data under ``../shared`` is
for measuring only; nothing in the project depends on it. The table is printed and written to
``--output`` as CSV and markdown.

    python benchmarks/recipes.py [--datasets demo fsdd drumkits] [--only svm baseline]
                                 [--shared ../shared/datasets] [--drumkits /tmp/drumkits/manifest.csv]
                                 [--output DIR]
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
from pipelines.build import clips_in, feature_params_for, make_pipeline  # noqa: E402
from pipelines.evaluate import cross_validate  # noqa: E402
from pipelines.splits import ClipSplitter  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"  # ../shared of the checkout
DRUMKITS = Path("/tmp/drumkits/manifest.csv")

#: The toolkit's recipes, by row name: (registry name, parameters). Defaults only.
CLASSICAL = {"svm": ("svm", {}), "softmax": ("softmax", {}), "mlp": ("mlp", {}), "xgboost": ("xgboost", {})}
BASELINE = "baseline: librosa MFCC(40) mean/std + SVC(C=10)"

# Deep-net rows go here: the toolkit's nets as more CLASSICAL-style entries (run by toolkit_folds,
# which takes any registry name) and the hand-written plain-torch PiczakNet loop as a second
# baseline, a function with baseline_fold's signature added to the `baselines` dict in run().


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


# ---------------------------------------------------------------- runs
def toolkit_folds(name, params, dataset, store):
    """Per-fold rows of registry estimator ``name`` with ``params``, through the toolkit's API."""
    kind, feature_params = feature_params_for(name)
    fs = extract(dataset, {kind: feature_params}, store=store, progress=False)[kind]
    clips = clips_in(dataset, fs)
    pipeline = make_pipeline(name, fs, run_settings={"random_state": 0}, **params)
    rows = []
    for fold in sorted(clips["fold"].unique()):
        start = time.process_time()
        result = cross_validate(pipeline, clips, splitter=ClipSplitter(clips, folds=[fold]), progress=False)
        cpu = time.process_time() - start
        scores = result.folds.iloc[0]
        rows.append({"fold": fold, "accuracy": scores["accuracy"],
                     "balanced_accuracy": scores["balanced_accuracy"], "cpu_s": cpu})
    return rows


def baseline_folds(fold_fn, dataset):
    """Per-fold rows of a hand-written baseline on the data set's own folds."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    clips = dataset.clips
    F = baseline_features(clips["path"])
    y = clips["label"].to_numpy()
    rows = []
    for fold in sorted(clips["fold"].unique()):
        train, test = np.flatnonzero(clips["fold"] != fold), np.flatnonzero(clips["fold"] == fold)
        start = time.process_time()
        prediction = fold_fn(F, y, train, test)
        rows.append({"fold": fold, "accuracy": accuracy_score(y[test], prediction),
                     "balanced_accuracy": balanced_accuracy_score(y[test], prediction),
                     "cpu_s": time.process_time() - start})
    return rows


def run(name, dataset, store, only):
    """Every selected recipe on one data set: one row per (recipe, fold)."""
    baselines = {BASELINE: baseline_fold}
    recipes = [(row, lambda fn=fn: baseline_folds(fn, dataset)) for row, fn in baselines.items()]
    recipes += [(row, lambda e=e, p=p: toolkit_folds(e, p, dataset, store))
                for row, (e, p) in CLASSICAL.items()]
    rows = []
    for recipe, folds in recipes:
        if only and not any(word in recipe for word in only):
            continue
        per_fold = pd.DataFrame(folds()).assign(dataset=name, recipe=recipe)
        print(f"{name:9s} {recipe:50s} acc {per_fold['accuracy'].mean():.3f} "
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
            "accuracy_per_fold": " ".join(f"{a:.3f}" for a in rows["accuracy"]),
            "balanced_per_fold": " ".join(f"{a:.3f}" for a in rows["balanced_accuracy"]),
            "cpu_s_per_fold_each": " ".join(f"{c:.2f}" for c in rows["cpu_s"]),
        })
    return pd.DataFrame(lines)


def markdown(table):
    shown = table.assign(**{c: table[c].map("{:.3f}".format) for c in ("accuracy", "balanced_accuracy")},
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
    parser.add_argument("--output", default=None, help="folder of the table (default results/recipes-<time>)")
    args = parser.parse_args(argv)

    store = FeatureStore()
    per_fold = []
    for name, dataset in datasets(args.datasets, store, args.shared, args.drumkits):
        print(f"\n== {name}: {len(dataset.clips)} clips ==", flush=True)
        per_fold += run(name, dataset, store, args.only)
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
