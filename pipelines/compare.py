"""The ``report`` command: find the runs among some paths, compare them, write the comparison to a new folder."""

import json
from pathlib import Path

import pandas as pd

from pipelines import reports
from pipelines.reporter import Reporter
from pipelines.results import ResultsFolderError, check_output, new_folder, output_folder, timestamp


def find_runs(paths):
    """The results folders among ``paths``, as a shell glob (``results/*``) gives them.

    A results folder (one with ``run.json``) stands for itself; a folder of results folders (a demo's)
    stands for the runs in it; anything else is left out with a note.

    Returns
    -------
    runs : list of (pathlib.Path, int)
        Each folder, once, and how many trailing parts of its path name it at least (2 for a run
        inside a demo folder: ``demo-20260105-142501/svm``).
    notes : list of str
        One line per path left out, saying why.
    """
    runs, notes, seen = [], [], set()
    for path in map(Path, paths):
        if (path / "run.json").is_file():
            found = [(path, 1)]
        elif path.is_dir():
            found = [(run.parent, 2) for run in sorted(path.glob("*/run.json"))]
            if not found:
                notes.append(f"skipped {path}: a folder without run.json and without results folders in it")
        else:
            found = []
            notes.append(f"skipped {path}: {'not a folder' if path.exists() else 'does not exist'}")
        for folder, depth in found:
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                runs.append((folder, depth))
    return runs, notes


def run_labels(runs):
    """Labels telling the runs of :func:`find_runs` apart: the last parts of their paths, as few as can.

    >>> run_labels([(Path("results/demo-1/svm"), 2), (Path("results/cv-svm-demo-1"), 1)])
    ['demo-1/svm', 'cv-svm-demo-1']
    >>> run_labels([(Path("a/run"), 1), (Path("b/run"), 1), (Path("c/other"), 1)])
    ['a/run', 'b/run', 'other']
    """
    parts = [folder.resolve().parts for folder, _ in runs]
    depths = [depth for _, depth in runs]
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depths)]
        clashing = [i for i, label in enumerate(labels) if labels.count(label) > 1 and depths[i] < len(parts[i])]
        if not clashing:  # folders are distinct, so their full paths never clash
            return labels
        for i in clashing:
            depths[i] += 1


def read_runs(paths, reporter=None):
    """The ``run.json`` of every run of :func:`find_runs`, with its label as ``run``.

    An ensemble's run is followed by one record per member (:func:`member_records`), so that members
    and ensemble are compared side by side. The notes of :func:`find_runs` (paths left out) go to
    ``reporter.note`` (a :class:`~pipelines.reporter.Reporter`; silent by default).

    Returns
    -------
    list of dict
    """
    runs, notes = find_runs(paths)
    for note in notes:
        (reporter or Reporter()).note(note)
    if not runs:
        raise ResultsFolderError(f"no results folder among {', '.join(map(str, paths))}: a results folder holds "
                                 "run.json, a demo folder holds results folders")
    records = []
    for (folder, _), label in zip(runs, run_labels(runs)):
        try:
            record = {**json.loads((folder / "run.json").read_text()), "run": label}
        except json.JSONDecodeError as exc:
            raise ResultsFolderError(f"{folder / 'run.json'} is not valid JSON: {exc}") from None
        records += [record, *member_records(record)]
    return records


def member_records(run):
    """Records of an ensemble's members for :func:`pipelines.reports.comparison_table`, from its ``run.json``.

    Each is named ``<member> (in <ensemble>)`` and carries the member's mean and std scores in the
    ensemble's folds (``run["members"]``); a run without members gives none.

    >>> run = {"name": "soft-svm+cnn", "run": "ens", "dataset": "demo", "feature": "mfcc+mel",
    ...        "members": {"svm": {"mean_accuracy": 0.7}, "cnn": {"mean_accuracy": 0.6}, "ensemble": {}}}
    >>> [(r["name"], r["feature"], r["mean_accuracy"]) for r in member_records(run)]
    [('svm (in soft-svm+cnn)', 'mfcc', 0.7), ('cnn (in soft-svm+cnn)', 'mel', 0.6)]
    """
    members = [name for name in (run.get("members") or {}) if name != ENSEMBLE_ROW]
    kinds = str(run.get("feature") or "").split("+")  # an ensemble's feature is its members' kinds, in order
    kinds = kinds if len(kinds) == len(members) else [None] * len(members)
    return [{"name": f"{name} (in {run['name']})", "estimator": name, "feature": kind, "run": run.get("run"),
             "dataset": run.get("dataset"), **run["members"][name]} for name, kind in zip(members, kinds)]


def write_report(folder, table, title="Comparison of runs"):
    """Write ``comparison.csv``, ``comparison.md`` and a bar chart per data set into ``folder``.

    The chart is ``comparison.png`` for runs of one data set, else ``comparison-<data set>.png`` each.

    Returns
    -------
    list of str
        The names of the files written.
    """
    folder = Path(folder)
    table.to_csv(folder / "comparison.csv", index=False)
    (folder / "comparison.md").write_text(reports.comparison_markdown(table, title))
    written = ["comparison.csv", "comparison.md"]
    groups = reports.comparison_groups(table)
    for name, rows in groups:
        figure = "comparison.png" if len(groups) == 1 else f"comparison-{name or 'unknown'}.png"
        reports.plot_comparison(rows, folder / figure, title=f"{title} on {name}" if name else title)
        written.append(figure)
    return written


def report(paths, *, output=None, reporter=None):
    """Compare the runs among ``paths`` (see :func:`find_runs`) and write the comparison to a new folder.

    Parameters
    ----------
    paths : list of str
        Results folders, or folders of them, as a shell glob gives them.
    output : str, optional
        The folder to write, new or empty (default ``results/report-<time>``): a report never writes
        over another run's files.
    reporter : pipelines.reporter.Reporter, optional
        Hears of the paths left out, the comparison table and the files written (silent by default).

    Returns
    -------
    pandas.DataFrame
        :func:`pipelines.reports.comparison_table` of the runs.
    """
    if output:
        check_output(output)
    reporter = reporter or Reporter()
    table = reports.comparison_table(read_runs(paths, reporter))
    reporter.table(reports.format_comparison(table))
    folder = output_folder(output) if output else new_folder("results", f"report-{timestamp()}")
    reporter.compared(folder, write_report(folder, table), n_runs=len(table))
    return table


# --------------------------------------------------------------------------- an ensemble and its members
#: The ensemble's own row in :func:`member_scores`.
ENSEMBLE_ROW = "ensemble"


def member_scores(predictions, members):
    """Per test fold, each member's scores and the ensemble's, from one cross-validation's predictions.

    The members are those fitted inside each fold's ensemble (the ``member_<name>`` columns of
    :attr:`pipelines.evaluate.CVResult.predictions`), so they are scored in the same folds as the
    ensemble, on the same clips, without being trained again.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Out-of-fold predictions: ``fold``, ``label``, ``prediction`` and ``member_<name>`` per member.
    members : list of str

    Returns
    -------
    pandas.DataFrame
        One row per (model, fold), members first in their order, then :data:`ENSEMBLE_ROW`:
        ``model``, ``fold``, ``n_test``, then one column per metric of :data:`pipelines.evaluate.METRICS`.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"fold": [1, 1, 2, 2], "label": list("abab"), "prediction": list("abaa"),
    ...                   "member_svm": list("aaab")})
    >>> print(member_scores(p, ["svm"])[["model", "fold", "accuracy"]].to_string(index=False))
       model  fold  accuracy
         svm     1       0.5
         svm     2       1.0
    ensemble     1       1.0
    ensemble     2       0.5
    """
    from pipelines.evaluate import METRICS

    missing = [name for name in members if f"member_{name}" not in predictions]
    if missing:
        raise ValueError(f"the predictions hold no member_{missing[0]} column: not an ensemble's with that member")
    rows = []
    for name, column in [*((name, f"member_{name}") for name in members), (ENSEMBLE_ROW, "prediction")]:
        for fold, part in predictions.groupby("fold", sort=True):
            rows.append({"model": name, "fold": fold, "n_test": len(part),
                         **{metric: float(score(part["label"], part[column])) for metric, score in METRICS.items()}})
    return pd.DataFrame(rows)


def format_member_scores(scores):
    """A fixed-width text table of :func:`member_scores`: per model, mean +/- std of each metric, then
    the accuracy of each fold."""
    from pipelines.evaluate import METRICS

    folds = sorted(scores["fold"].unique())
    header = ["model", *METRICS, *(f"fold{f}" for f in folds)]
    rows = []
    for name, part in scores.groupby("model", sort=False):
        part = part.set_index("fold")
        rows.append([name, *(reports._format_score(part[m].mean(), part[m].std(ddof=0)) for m in METRICS),
                     *(f"{part.loc[f, 'accuracy']:.3f}" for f in folds)])
    return reports._fixed_width(header, rows, right_aligned=set(range(1, len(header))))
