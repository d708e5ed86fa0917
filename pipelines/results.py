"""The results folder of a run: created atomically, written once, never over another run's.

A results folder holds ``run.json`` (headline scores, read by ``report``), ``cv_results.csv``,
``best_params.json``, ``folds.csv``, ``predictions.csv`` (out-of-fold), ``per_class.csv``,
``confusion_matrix.png``, ``learning_curves.png`` (torch nets), ``skipped.csv`` (the clips left out:
missing or unusable audio, with the reason), ``summary.md``, ``config.toml`` (the fully resolved
configuration of the run: ``cli.py COMMAND --config config.toml`` repeats it) and, when the run refitted
its model on all clips, ``model.joblib`` (``run.json``'s ``model_saved`` and ``summary.md`` say whether
it did).

``run.json`` also records how the run was made (:mod:`pipelines.records`): the command line, the
resolved configuration, the seed, the toolkit's git commit, Python's and the libraries' versions, the
host, the data set's identity, the store keys of every feature set, the skipped clips, wall and CPU time.

A results folder is created atomically and never shared: two runs started in the same second get
``...-<time>`` and ``...-<time>-2``; an explicit ``output`` must be new or an empty folder.
"""

import itertools
import json
import time
from datetime import datetime
from pathlib import Path

import joblib
import pandas as pd

from featurestore.audio import AUDIO_DEFAULTS
from featurestore.augment import AUGMENT_SETTINGS
from pipelines import html_report, reports
from pipelines.evaluate import METRICS
from pipelines.config import write_config
from pipelines.records import RunRecord
from pipelines.reporter import Reporter


class ResultsFolderError(Exception):
    """A results folder cannot be written (an ``--output`` that holds files) or read (no ``run.json``)."""


def new_folder(parent, stem):
    """Create ``parent/stem``, or ``stem-2``, ``stem-3``... if taken, and return it.

    ``mkdir`` without ``exist_ok`` either creates the folder or fails: the creation is atomic, so
    two runs (threads or processes) never get the same folder.

    Returns
    -------
    pathlib.Path
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        folder = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def check_output(output):
    """Raise :class:`ResultsFolderError` if ``output`` exists and is not an empty folder.

    Called before a run starts, so that a taken ``--output`` fails in a second, not after the training.
    """
    path = Path(output)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ResultsFolderError(f"--output {path} exists and is not empty: results are never written over "
                                 "another run's; choose a new folder")


def output_folder(output):
    """Create the explicit results folder ``output`` (an existing empty folder is used) and return it."""
    path = Path(output)
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        check_output(path)  # another run may have written it since this one started
    return path


def timestamp():
    """Local time to the second, as used in results folder names: ``20260105-142501``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


#: Layouts that read any folder or manifest: their data sets are named after that root.
ROOT_NAMED_LAYOUTS = ("csv", "folder")


def dataset_label(dataset):
    """The name a data set goes by in results folder names, titles and ``run.json``'s ``dataset``.

    A published data set's registry name (``urbansound8k``); for the layouts of
    :data:`ROOT_NAMED_LAYOUTS`, the name of the root: ``birds`` for ``--root birds.csv`` or ``birds/``
    (``run.json`` records the layout itself as ``layout``).
    """
    if dataset.name not in ROOT_NAMED_LAYOUTS:
        return dataset.name
    return dataset.root.stem if dataset.root.is_file() else dataset.root.name


def describe_audio(audio, overrides=None):
    """One line of the audio settings of a run, marking those set with ``--set audio.*``.

    >>> describe_audio({"sr": 8000, "duration": 0.5, "pad_mode": "zero", "normalize": False}, {"sr": 8000})
    'sr=8000 Hz (--set), duration=0.5 s, pad_mode=zero, normalize=False'
    """
    units = {"sr": " Hz", "duration": " s"}
    order = [*(k for k in AUDIO_DEFAULTS if k in audio), *sorted(set(audio) - set(AUDIO_DEFAULTS))]
    return ", ".join(f"{k}={audio[k]}{units.get(k, '')}{' (--set)' if k in (overrides or {}) else ''}"
                     for k in order)


def skipped_clips(dataset, feature_sets):
    """The clips a run left out: rows of missing audio, and clips whose audio or features were unusable.

    Parameters
    ----------
    dataset : featurestore.Dataset
    feature_sets : list of featurestore.FeatureSet

    Returns
    -------
    pandas.DataFrame
        Columns ``clip_id``, ``path``, ``reason``; one row per clip (the first reason when several
        feature sets skipped it).
    """
    rows = [*dataset.skipped, *(row for fs in feature_sets for row in fs.skipped)]
    table = pd.DataFrame([{k: row.get(k) for k in ("clip_id", "path", "reason")} for row in rows],
                         columns=["clip_id", "path", "reason"])
    return table.drop_duplicates("clip_id", ignore_index=True)

def write_run(folder, *, name, estimator, kind, result, model, cv_results, feature_set, dataset, wall_time,
              scoring="accuracy", augment=None, skipped=None, search=None, nested=None, members=None, reporter=None,
              method=None, record=None, config=None, seed=None, pipeline=None):
    """Write a results folder (see the module docstring).

    ``augment`` (an :class:`~featurestore.specs.AugmentSpec`) is recorded as ``augmentation`` in ``run.json``
    (``copies``, ``seed`` and the bounds; null without) and described in ``summary.md``.
    ``skipped`` (from :func:`skipped_clips`; none when omitted) is written to ``skipped.csv``, counted
    as ``n_skipped`` in ``run.json`` and stated in ``summary.md``, so that a score says what it was
    computed on. A grid's ``search`` ("nested" or "flat") is recorded as ``nested: true/false``; a nested
    search (:class:`~pipelines.evaluate.NestedResult`) adds ``selected_params`` per outer fold, and its
    ``result`` holds the outer-fold scores of what was selected (the headline ``mean_<metric>``).
    ``model`` None (a ``cv`` or ``ensemble`` run without refit) writes no ``model.joblib``: ``run.json``
    records ``model_saved: false`` and ``summary.md`` says how to get one.
    An ensemble's ``members`` (:func:`pipelines.compare.member_scores`: each member's and the ensemble's
    scores per fold) go to ``members.csv``, to ``run.json`` as ``members`` (mean and std per metric of
    each member) and to ``summary.md``.
    ``reporter`` (a :class:`~pipelines.reporter.Reporter`; silent by default) hears of the model's saving.
    A grid's ``method`` (``grid``, ``random``, ``halving``, ``optuna``: how its candidates were generated)
    is recorded as ``search``.
    ``pipeline`` (the run's pipeline or ensemble, fitted or not; default ``model``) names the feature sets
    whose store keys ``run.json`` records: a run without refit has no ``model``.
    ``record`` (a :class:`~pipelines.records.RunRecord`; default: one started now) adds the fields of
    :meth:`~pipelines.records.RunRecord.fields` to ``run.json``, with the run's ``seed`` and ``config``
    (the fully resolved configuration), which is also written as ``config.toml`` when given.

    Returns
    -------
    dict
        The ``run.json`` written.
    """
    folder = Path(folder)
    data = dataset_label(dataset)
    if skipped is None:
        skipped = skipped_clips(dataset, [])
    skipped.to_csv(folder / "skipped.csv", index=False)
    labels = sorted(result.predictions["label"].unique())
    if cv_results is not None:
        table = cv_results.copy()
        table["params"] = table["params"].map(lambda p: json.dumps(p, default=str))
        table.to_csv(folder / "cv_results.csv", index=False)
    (folder / "best_params.json").write_text(json.dumps(result.params, indent=2, default=str))
    folds = result.folds.copy()
    if "params" in folds:  # a nested search's selected parameters, one dict per fold
        folds["params"] = folds["params"].map(lambda p: json.dumps(p, default=str))
    folds.to_csv(folder / "folds.csv", index=False)
    result.predictions.to_csv(folder / "predictions.csv", index=False)
    per_class = reports.per_class_report(result.predictions["label"], result.predictions["prediction"], labels)
    per_class.to_csv(folder / "per_class.csv")
    reports.plot_confusion_matrix(result.predictions["label"], result.predictions["prediction"], labels,
                                  folder / "confusion_matrix.png", title=f"{name} on {data} (out-of-fold)")
    figures = ["confusion_matrix.png"]
    if any(result.histories):
        reports.plot_learning_curves(result.histories, folder / "learning_curves.png", title=name)
        figures.append("learning_curves.png")
    if model is not None:
        _save_model(folder / "model.joblib", {"model": model, "audio": feature_set.audio, "estimator": estimator,
                                              "feature": kind, "dataset": data, "classes": labels},
                    reporter or Reporter())
    augmentation = None
    if augment:
        augmentation = augment.settings()
    run = {"name": name, "estimator": estimator, "feature": kind, "dataset": data, "layout": dataset.name,
           "audio": feature_set.audio,
           "n_clips": int(len(result.predictions)), "folds": [int(f) for f in result.folds["fold"]],
           "n_skipped": len(skipped), "params": result.params, "augmentation": augmentation, "wall_time": wall_time,
           "model_saved": model is not None, **result.summary()}
    if search is not None:
        run["nested"] = search == "nested"
    if method is not None:
        run["search"] = method
    if nested is not None:
        run["selected_params"] = nested.selected_params()
    if members is not None:
        members.to_csv(folder / "members.csv", index=False)
        run["members"] = {name: {key: float(value) for m in METRICS
                                 for key, value in ((f"mean_{m}", rows[m].mean()), (f"std_{m}", rows[m].std(ddof=0)))}
                          for name, rows in members.groupby("model", sort=False)}
    record = record if record is not None else RunRecord()
    if config is not None:
        write_config(folder / "config.toml", config,
                     comment=f"The resolved configuration of the run in {folder}.\nRepeat it: cli.py "
                             f"{config.get('command', 'COMMAND')} --config {folder / 'config.toml'}")
    run.update(record.fields(dataset=dataset, feature_sets=_feature_sets(pipeline if pipeline is not None else model,
                                                                           feature_set), skipped=skipped,
                             seed=seed, config=config))
    (folder / "run.json").write_text(json.dumps(run, indent=2, default=str))
    headline = ", ".join(f"{m} {run[f'mean_{m}']:.3f} +/- {run[f'std_{m}']:.3f}" for m in METRICS)
    sections = {
        "Result": f"{name} ({kind} features) on {data}, {len(result.folds)} test folds: {headline}.",
        "Clips": _describe_clips(run["n_clips"], skipped),
        "Audio": describe_audio(feature_set.audio),
        "Best parameters": f"`{json.dumps(result.params, default=str)}`",
        "Model": ("Refitted on all clips and saved as [model.joblib](model.joblib) (`cli.py predict --model`)."
                  if model is not None else "No model was saved: the scores come from the fold fits alone. "
                  "`cli.py cv --refit` (or `ensemble --refit`) also fits on all clips and saves model.joblib."),
        "Augmentation": _describe_augmentation(augmentation, result.params),
        "Per fold": "```\n" + result.folds.drop(columns="params", errors="ignore").to_string(index=False) + "\n```",
        "Per class": "```\n" + per_class.to_string() + "\n```",
        "Figures": "\n".join(f"![{f}]({f})" for f in figures),
    }
    if augmentation is None:
        del sections["Augmentation"]
    if search is not None:  # a grid: which score the headline is; where the saved model's parameters come from
        label = reports.NESTED_LABEL if search == "nested" else reports.FLAT_LABEL
        kind = "Grid" if method in (None, "grid") else {"random": "Random", "halving": "Successive halving",
                                                          "optuna": "Optuna"}[method]
        sections["Result"] = f"{kind} search, {label}. " + sections["Result"]
        if nested is not None:
            sections["Result"] += ("\n\n```\n" + reports.format_selection_table(nested.selected_params(), scoring)
                                   + "\n```")
        sections["Best parameters"] = ("The saved model's, selected by the flat search over all folds and "
                                       f"refitted on all clips: {sections['Best parameters']}")
    if members is not None:
        from pipelines.compare import format_member_scores

        sections["Members"] = ("Each member as fitted inside each fold's ensemble, scored in the same folds "
                               "([members.csv](members.csv)):\n\n```\n" + format_member_scores(members) + "\n```")
    if cv_results is not None:
        label = reports.FLAT_LABEL if search is not None else None
        text = reports.format_cv_table(cv_results, metric=scoring, label=label)
        sections["Parameter sets"] = "```\n" + text + "\n```"
    (folder / "summary.md").write_text(reports.summary_markdown(f"{name} on {data}", sections))
    html_report.write_run_page(folder, dataset=dataset, histories=result.histories)  # report.html
    return run


def _feature_sets(model, feature_set):
    """Every feature set the loaders of ``model`` (a pipeline or ensemble, fitted or not; None: only
    ``feature_set``) read: main sets, then augmented copies, ``feature_set`` first."""
    from featurestore.store import FeatureSet
    from pipelines.loader import FeatureLoader

    params = model.get_params(deep=True) if model is not None else {}
    loaders = [v for v in params.values() if isinstance(v, FeatureLoader)]
    paths = [str(feature_set.path)]
    for loader in loaders:
        paths += [p for p in (loader.feature_set, loader.augmented_set) if p is not None]
    return [feature_set if path == str(feature_set.path) else FeatureSet(path) for path in dict.fromkeys(paths)]


def _save_model(path, bundle, reporter):
    """``joblib.dump`` of ``bundle``, telling ``reporter``: a large ensemble takes a while to write."""
    reporter.saving(path)
    start = time.perf_counter()
    joblib.dump(bundle, path)
    reporter.saved(path, path.stat().st_size, time.perf_counter() - start)


def _describe_clips(n_clips, skipped):
    if len(skipped) == 0:
        return f"Scores are computed on {n_clips} clips; none was skipped."
    reasons = ", ".join(f"{count} {reason}" for reason, count in skipped["reason"].value_counts().items())
    return (f"Scores are computed on {n_clips} clips; {len(skipped)} clips were skipped ({reasons}) and are "
            "listed in [skipped.csv](skipped.csv).")


def _describe_augmentation(augmentation, params):
    if augmentation is None:
        return ""
    bounds = {k: v for k, v in augmentation.items() if k not in AUGMENT_SETTINGS and v not in (0.0, None)}
    used = params.get("augment_copies", augmentation["copies"])
    used = augmentation["copies"] if used is None else used
    return (f"{augmentation['copies']} stored augmented copies per clip (seed {augmentation['seed']}; "
            f"{', '.join(f'{k}={v:g}' for k, v in bounds.items())}); these results train on {used} per "
            "training clip. Copies are added inside each fit to the training folds only: test folds, "
            "out-of-fold predictions and scores use the original clips.")
