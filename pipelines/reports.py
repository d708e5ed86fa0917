"""Tables and figures from experiment results.

Pure functions of DataFrames, arrays and lists: nothing here reads the feature store or runs a model.
Text tables are fixed-width for a terminal or a markdown code block; figures are PNG files written
with matplotlib's object-oriented API (no pyplot state, no display needed). matplotlib is imported
by the plotting functions only, so that printing a table stays cheap.

Scores are fractions in [0, 1], printed with three decimals.
"""

import math
import numbers
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, precision_recall_fscore_support

__all__ = ["comparison_groups", "comparison_markdown", "comparison_table", "cv_table_frame", "format_comparison",
           "format_cv_table", "format_selection_table", "per_class_report", "plot_comparison", "plot_confusion_matrix",
           "plot_learning_curves", "summary_markdown"]

#: Optional per-run columns of :func:`comparison_table`: (column, keys tried in order).
_OPTIONAL_RUN_SCORES = {
    "clip_accuracy": ("clip_accuracy", "mean_clip_accuracy"),
    "window_accuracy": ("window_accuracy", "mean_window_accuracy"),
}

#: Headers of the score columns of :func:`format_comparison`.
_SCORE_HEADERS = {"accuracy": "accuracy", "balanced_accuracy": "balanced acc.",
                  "f1_macro": "macro F1", "clip_accuracy": "clip acc.", "window_accuracy": "window acc."}

#: Confusion matrices with more classes than this are drawn without numbers in the cells.
MAX_ANNOTATED_CLASSES = 20


# --------------------------------------------------------------------------- text helpers
def _format_value(value):
    if isinstance(value, (bool, np.bool_)) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    if isinstance(value, type) or callable(value):
        return getattr(value, "__name__", repr(value))   # a torch module class, a function
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_format_value(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return str(value)


def _format_score(value, std=None):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{value:.3f}"
    return f"{value:.3f} +/- {std:.3f}"


def _common_prefix(names):
    """The longest ``a__b__`` prefix shared by every parameter name (and shorter than each)."""
    split = [name.split("__")[:-1] for name in names]
    if not split:
        return ""
    prefix = []
    for parts in zip(*split):
        if len(set(parts)) > 1:
            break
        prefix.append(parts[0])
    return "".join(f"{p}__" for p in prefix)


def _format_params(params, prefix=""):
    if not params:
        return "(defaults)"
    return ", ".join(f"{k[len(prefix):]}={_format_value(v)}" for k, v in params.items())


def _fixed_width(header, rows, right_aligned=()):
    """Columns separated by two spaces, a dashed rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        out = [str(c).rjust(w) if i in right_aligned else str(c).ljust(w)
               for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


# --------------------------------------------------------------------------- cross-validation tables
def _from_sklearn(cv_results, metric):
    """Rename scikit-learn's ``cv_results_`` columns (``mean_test_<m>``, ``split<i>_test_<m>``)."""
    suffix = "score" if f"mean_test_{metric}" not in cv_results and metric == "score" else metric
    renames = {f"mean_test_{suffix}": f"mean_{metric}", f"std_test_{suffix}": f"std_{metric}"}
    for column in cv_results.columns:
        match = re.fullmatch(rf"split(\d+)_test_{re.escape(suffix)}", str(column))
        if match:
            renames[column] = f"fold{int(match.group(1)) + 1}_{metric}"
    return cv_results.rename(columns=renames)


def cv_table_frame(cv_results, metric="accuracy"):
    """One row per parameter set, best first: what :func:`format_cv_table` prints.

    Parameters
    ----------
    cv_results : pandas.DataFrame or dict
        One row per parameter set with ``params`` (dict), ``mean_<metric>``, ``std_<metric>``
        and per-fold scores ``fold<k>_<metric>`` (k = fold number). Other columns are ignored.
        scikit-learn's ``search.cv_results_`` (``mean_test_<metric>``, ``split<i>_test_<metric>``,
        folds numbered from 1 here) is accepted too.
    metric : str
        The score to tabulate, e.g. ``"accuracy"``, ``"balanced_accuracy"``, ``"f1_macro"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (1 = best mean; equal means share a rank), ``params`` (dict), ``mean``, ``std``
        and ``fold<k>`` for each fold in fold order; sorted by mean score (descending), then by
        standard deviation (ascending) among equal means. Parameter sets without a score come last.
    """
    cv_results = pd.DataFrame(cv_results)
    if f"mean_{metric}" not in cv_results:
        cv_results = _from_sklearn(cv_results, metric)
    missing = [c for c in ("params", f"mean_{metric}") if c not in cv_results]
    if missing:
        scores = sorted({c[5:] for c in map(str, cv_results.columns) if c.startswith("mean_")})
        raise ValueError(f"cv_results has no column {' or '.join(missing)} for metric={metric!r}; "
                         f"scores present: {', '.join(scores) or 'none'}")
    folds = {}
    for column in cv_results.columns:
        match = re.fullmatch(rf"fold(\d+)_{re.escape(metric)}", str(column))
        if match:
            folds[int(match.group(1))] = column
    mean = cv_results[f"mean_{metric}"].astype(float)
    std = cv_results.get(f"std_{metric}", pd.Series(np.nan, index=cv_results.index)).astype(float)
    rounded = mean.round(10)   # equal scores tie even if float sums differ in the last bit
    if "iter" in cv_results:  # successive halving: the last iteration's candidates (most resources) rank first
        rounded = rounded + 10.0 * (cv_results["iter"] == cv_results["iter"].max())
    table = pd.DataFrame({
        "rank": rounded.rank(ascending=False, method="min", na_option="bottom").astype(int),
        "params": cv_results["params"],
        "mean": mean,
        "std": std,
        **{f"fold{k}": cv_results[folds[k]].astype(float) for k in sorted(folds)},
    })
    order = np.lexsort((std.fillna(np.inf).to_numpy(), -rounded.fillna(-np.inf).to_numpy()))
    return table.iloc[order].reset_index(drop=True)


#: Labels of the two grid searches, printed above their tables and written into summaries.
FLAT_LABEL = "flat (optimistic: selected and scored on the same folds)"
NESTED_LABEL = "nested (selected on inner folds of each outer training set, scored on its test fold)"


def format_cv_table(cv_results, metric="accuracy", label=None):
    """A fixed-width text table of a search: rank, parameters, mean +/- std, per-fold scores.

    Parameters are printed without the ``step__`` prefix all of them share (named in the header).
    See :func:`cv_table_frame` for the input. A ``label`` (e.g. :data:`FLAT_LABEL`) is printed
    as a first line.

    >>> rows = pd.DataFrame({"params": [{"C": 1}, {"C": 10}], "mean_accuracy": [0.7, 0.8],
    ...                      "std_accuracy": [0.05, 0.02], "fold1_accuracy": [0.75, 0.82],
    ...                      "fold2_accuracy": [0.65, 0.78]})
    >>> print(format_cv_table(rows))
    rank  parameters  accuracy         fold1  fold2
    ----  ----------  ---------------  -----  -----
       1  C=10        0.800 +/- 0.020  0.820  0.780
       2  C=1         0.700 +/- 0.050  0.750  0.650
    """
    table = cv_table_frame(cv_results, metric)
    prefix = _common_prefix([k for params in table["params"] for k in params])
    folds = [c for c in table.columns if re.fullmatch(r"fold\d+", c)]
    header = ["rank", f"parameters ({prefix}...)" if prefix else "parameters", metric, *folds]
    rows = [[str(row["rank"]), _format_params(row["params"], prefix), _format_score(row["mean"], row["std"]),
             *(_format_score(row[f]) for f in folds)]
            for _, row in table.iterrows()]
    text = _fixed_width(header, rows, right_aligned={0, *range(3, len(header))})
    return f"{label}\n{text}" if label else text


def format_selection_table(selected, metric="accuracy"):
    """A fixed-width text table of a nested search: per outer fold, the selected parameters and scores.

    Parameters
    ----------
    selected : list of dict
        ``{"fold", "params", "inner_<metric>", "<metric>"}`` per outer fold
        (:meth:`pipelines.evaluate.NestedResult.selected_params`).
    metric : str

    Returns
    -------
    str
        :data:`NESTED_LABEL`, then one row per fold: ``fold``, parameters, the inner mean, the outer score.
    """
    prefix = _common_prefix([k for row in selected for k in row["params"]])
    header = ["fold", f"selected ({prefix}...)" if prefix else "selected", f"inner {metric}", f"outer {metric}"]
    rows = [[str(row["fold"]), _format_params(row["params"], prefix), _format_score(row[f"inner_{metric}"]),
             _format_score(row[metric])] for row in selected]
    return f"{NESTED_LABEL}\n" + _fixed_width(header, rows, right_aligned={0, 2, 3})


# --------------------------------------------------------------------------- comparison of runs
def comparison_table(runs):
    """One row per run (a model on a feature set), grouped by data set, best accuracy first in each.

    Parameters
    ----------
    runs : list of dict
        As written to a results folder's ``run.json``: ``name`` and/or ``estimator``; optionally
        ``run`` (a label telling runs apart, e.g. the results folder's name), ``feature``, ``dataset``,
        ``mean_accuracy``, ``std_accuracy``, ``mean_balanced_accuracy``, ``std_balanced_accuracy``,
        ``mean_f1_macro``, ``std_f1_macro``, ``fit_time`` (s), ``clip_accuracy``/``window_accuracy``
        (or ``mean_window_accuracy``). Missing keys give NaN.

    Returns
    -------
    pandas.DataFrame
        Columns ``run`` (when a run has one), ``model`` (``name``, else ``estimator``; a run with
        ``"nested": false`` is labelled ``(flat grid, optimistic)``), ``estimator``,
        ``feature``, ``dataset``, ``accuracy``, ``accuracy_std``, ``balanced_accuracy``,
        ``balanced_accuracy_std``, ``f1_macro``, ``f1_macro_std``, ``fit_time``, plus
        ``clip_accuracy`` and ``window_accuracy`` when a run has them. Sorted by data set (runs
        without one last), then by accuracy, descending (NaN last): scores of different data sets
        are never ranked against each other (runs without a data set are ranked with those of the
        one data set when there is only one).
    """
    rows = []
    for i, run in enumerate(runs):
        model = run.get("name") or run.get("estimator")
        if not model:
            raise ValueError(f"runs[{i}] has neither 'name' nor 'estimator': cannot label its row")
        row = {"run": run.get("run"), "model": str(model), "estimator": run.get("estimator", model),
               "feature": run.get("feature"), "dataset": run.get("dataset")}
        if run.get("nested") is False:  # a flat grid's best: say so wherever it is compared
            row["model"] += " (flat grid, optimistic)"
        for metric in ("accuracy", "balanced_accuracy", "f1_macro"):
            row[metric] = run.get(f"mean_{metric}", np.nan)
            row[f"{metric}_std"] = run.get(f"std_{metric}", np.nan)
        row["fit_time"] = run.get("fit_time", np.nan)
        for column, keys in _OPTIONAL_RUN_SCORES.items():
            row[column] = next((run[k] for k in keys if run.get(k) is not None), np.nan)
        rows.append(row)
    columns = ["run", "model", "estimator", "feature", "dataset", "accuracy", "accuracy_std", "balanced_accuracy",
               "balanced_accuracy_std", "f1_macro", "f1_macro_std", "fit_time", *_OPTIONAL_RUN_SCORES]
    df = pd.DataFrame(rows, columns=columns)
    df = df.drop(columns=[c for c in ["run", *_OPTIONAL_RUN_SCORES] if df[c].isna().all()])
    numeric = [c for c in df.columns if c not in _TEXT_COLUMNS]
    df[numeric] = df[numeric].astype(float)
    df = df.sort_values("accuracy", ascending=False, kind="stable", na_position="last")
    if df["dataset"].nunique() > 1:  # a stable sort by data set keeps the accuracy order within each
        df = df.sort_values("dataset", kind="stable", na_position="last")
    return df.reset_index(drop=True)


#: Columns of :func:`comparison_table` that hold text.
_TEXT_COLUMNS = ("run", "model", "estimator", "feature", "dataset")


def comparison_groups(df):
    """``(data set, rows)`` pairs of :func:`comparison_table`, in its order; ``None`` for runs without one.

    One pair when the runs come from one data set (or none is recorded), then holding every row.
    """
    if df["dataset"].nunique() <= 1:
        return [(next(iter(df["dataset"].dropna()), None), df)]
    known = df["dataset"].notna()
    groups = [(name, df[known & (df["dataset"] == name)]) for name in dict.fromkeys(df.loc[known, "dataset"])]
    if not known.all():
        groups.append((None, df[~known]))
    return [(name, rows.reset_index(drop=True)) for name, rows in groups]


def format_comparison(df):
    """A fixed-width text table of :func:`comparison_table`: rank, run, model, feature, mean +/- std scores.

    Runs on different data sets are ranked separately, in one table per data set under its name.
    """
    groups = comparison_groups(df)
    if len(groups) == 1:
        return _comparison_text(df)
    return "\n\n".join(f"data set {_group_name(name)}:\n{_comparison_text(rows)}" for name, rows in groups)


def _group_name(name):
    return "(not recorded)" if name is None else name


def _comparison_text(df):
    text_columns = [c for c in ("run", "model", "feature") if c in df]
    scores = [c for c in _SCORE_HEADERS if c in df]
    header = ["#", *text_columns, *(_SCORE_HEADERS[c] for c in scores), "fit time (s)"]
    rows = []
    for i, row in enumerate(df.to_dict("records"), start=1):
        cells = [str(i), *("-" if pd.isna(row[c]) else str(row[c]) for c in text_columns)]
        cells += [_format_score(row[c], row.get(f"{c}_std")) for c in scores]
        cells.append("-" if pd.isna(row["fit_time"]) else f"{row['fit_time']:.1f}")
        rows.append(cells)
    first_score = 1 + len(text_columns)
    return _fixed_width(header, rows, right_aligned={0, *range(first_score, len(header))})


def comparison_markdown(df, title="Comparison of runs"):
    """A markdown document of :func:`comparison_table`: one ranked table per data set.

    Returns
    -------
    str
    """
    sections = {}
    for name, rows in comparison_groups(df):
        scores = [c for c in _SCORE_HEADERS if c in rows]
        table = pd.DataFrame({"#": range(1, len(rows) + 1)})
        for column in ("run", "model", "feature"):
            if column in rows:
                table[column] = rows[column].fillna("-").astype(str)
        for column in scores:
            std = rows[f"{column}_std"] if f"{column}_std" in rows else pd.Series(np.nan, index=rows.index)
            table[_SCORE_HEADERS[column]] = [_format_score(v, d) for v, d in zip(rows[column], std)]
        table["fit time (s)"] = ["-" if pd.isna(t) else f"{t:.1f}" for t in rows["fit_time"]]
        sections[f"Data set {_group_name(name)}"] = table
    return summary_markdown(title, sections)


# --------------------------------------------------------------------------- per-class scores
def per_class_report(y_true, y_pred, labels=None):
    """Precision, recall, F1 and support of every class.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n_clips,)]
    labels : sequence, optional
        Classes and their order (default: the sorted labels of ``y_true`` and ``y_pred``).
        A class never predicted has precision 0 (no warning).

    Returns
    -------
    pandas.DataFrame
        Index ``class``; columns ``precision``, ``recall``, ``f1`` (float) and ``support`` (int).
    """
    if labels is None:
        labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                        index=pd.Index(list(labels), name="class"))


# --------------------------------------------------------------------------- figures
def _new_figure(width, height):
    from matplotlib.figure import Figure   # not pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path, dpi=120):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def plot_confusion_matrix(y_true, y_pred, labels, path, title=None, normalize=True):
    """Save a confusion matrix as a PNG; rows are true classes, columns predictions.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n_clips,)]
    labels : sequence or None
        Classes and their order (None: sorted labels of ``y_true`` and ``y_pred``).
    path : str or Path
        The PNG file to write (parent folders are created).
    title : str, optional
    normalize : bool
        True: each row divided by its number of clips (the diagonal is per-class recall);
        False: counts. Cells carry numbers up to ``MAX_ANNOTATED_CLASSES`` classes.

    Returns
    -------
    Path
        ``path``.
    """
    if labels is None:
        labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    n = len(labels)
    size = min(max(4.5, 0.55 * n + 2.5), 16)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize="true" if normalize else None, ax=ax, cmap="Blues",
        colorbar=True, include_values=n <= MAX_ANNOTATED_CLASSES, values_format=".2f" if normalize else "d",
        display_labels=[str(label) for label in labels], im_kw={"vmin": 0, "vmax": 1} if normalize else None,
    )
    if display.text_ is not None:
        for text in display.text_.ravel():
            text.set_fontsize(8 if n > 10 else 9)
    ax.tick_params(axis="x", labelrotation=45 if n > 4 else 0)
    ax.tick_params(labelsize=9 if n <= MAX_ANNOTATED_CLASSES else 7)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right" if n > 4 else "center")
        label.set_rotation_mode("anchor")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    suffix = " (rows normalised: recall)" if normalize else ""
    ax.set_title(f"{title}{suffix}" if title else f"Confusion matrix{suffix}", fontsize=10)
    return _save(fig, path)


def _as_fold_histories(histories):
    if isinstance(histories, Mapping):
        return [(str(k), list(v or [])) for k, v in histories.items()]
    histories = list(histories)
    if histories and isinstance(histories[0], Mapping):   # a single history
        return [("1", histories)]
    return [(str(i), list(h or [])) for i, h in enumerate(histories, start=1)]


def plot_learning_curves(histories, path, title=None):
    """Save training curves of a net, one colour per cross-validation fold, as a PNG.

    Parameters
    ----------
    histories : list of list of dict
        One history per fold (or a single history), each a list of per-epoch dicts as in skorch's
        ``net.history``: ``epoch`` and ``train_loss``, optionally ``valid_loss`` and ``valid_acc``.
        Empty histories (e.g. of folds of a model that is not a net) are skipped. A dict
        ``{fold: history}`` names the folds.
    path : str or Path
    title : str, optional

    Returns
    -------
    Path
        ``path``. Left: train loss (solid) and valid loss (dashed, a dot at its minimum);
        right, when any epoch has ``valid_acc``: validation accuracy.
    """
    folds = [(name, h) for name, h in _as_fold_histories(histories) if h]
    if not folds:
        raise ValueError("histories holds no epochs to plot")
    has_acc = any("valid_acc" in epoch for _, h in folds for epoch in h)
    fig = _new_figure(11 if has_acc else 6.5, 4.2)
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(folds))]

    def series(history, key):
        points = [(epoch.get("epoch", i), epoch[key]) for i, epoch in enumerate(history, start=1)
                  if epoch.get(key) is not None]
        return tuple(map(np.asarray, zip(*points))) if points else (np.array([]), np.array([]))

    for (name, history), color in zip(folds, colors):
        x, loss = series(history, "train_loss")
        axes[0].plot(x, loss, color=color, label=f"fold {name}")
        x, valid = series(history, "valid_loss")
        if len(valid):
            axes[0].plot(x, valid, color=color, linestyle="--")
            best = int(np.argmin(valid))
            axes[0].plot(x[best], valid[best], "o", color=color, markersize=4)
        if has_acc:
            x, acc = series(history, "valid_acc")
            axes[1].plot(x, acc, color=color, marker="." if len(acc) < 30 else None)

    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.3", label="train")]
    if any("valid_loss" in epoch for _, h in folds for epoch in h):
        handles.append(Line2D([], [], color="0.3", linestyle="--", label="valid (o: lowest)"))
    handles += [Line2D([], [], color=c, linewidth=4, label=f"fold {name}")
                for (name, _), c in zip(folds, colors)]
    axes[0].legend(handles=handles, fontsize=8, ncol=2 if len(folds) > 4 else 1)
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    if has_acc:
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
        axes[1].set_ylim(bottom=max(0.0, axes[1].get_ylim()[0]), top=min(1.02, axes[1].get_ylim()[1] + 0.02))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_comparison(df, path, title=None):
    """Save a horizontal bar chart of :func:`comparison_table`: accuracy and balanced accuracy.

    Bars carry their mean score and an error bar of one standard deviation across folds; the best
    model is at the top.

    Returns
    -------
    Path
        ``path``.
    """
    if len(df) == 0:
        raise ValueError("df has no runs to plot")
    labels = [m if pd.isna(f) else f"{m} ({f})" for m, f in zip(df["model"], df["feature"])]
    if "run" in df:  # two runs of one model are told apart by their results folders
        labels = [label if pd.isna(run) else f"{label}\n{run}" for label, run in zip(labels, df["run"])]
    n = len(df)
    y = np.arange(n)
    height = 0.38
    fig = _new_figure(7.5, 1.2 + (0.8 if "run" in df else 0.55) * n)  # run labels take a second line
    ax = fig.add_subplot()
    bars = [("accuracy", "C0", -height / 2), ("balanced_accuracy", "C1", height / 2)]
    for column, color, offset in bars:
        if column not in df or df[column].isna().all():
            continue
        values = df[column].to_numpy(dtype=float)
        std = df.get(f"{column}_std", pd.Series(np.nan, index=df.index)).to_numpy(dtype=float)
        ax.barh(y + offset, np.nan_to_num(values), height=height, color=color,
                xerr=np.where(np.isnan(std), 0, std), error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "0.25"},
                label=column.replace("_", " "))
        for yi, value, s in zip(y + offset, values, np.nan_to_num(std)):
            if not np.isnan(value):
                ax.text(min(value + s, 1.0) + 0.01, yi, f"{value:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()   # best (first row) at the top
    ax.set_xlim(0, 1.12)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("score (mean over folds, error bar: 1 std)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- markdown
def _markdown_table(df):
    def cell(value):
        if isinstance(value, (float, np.floating)) and (value == 0 or 1e-3 <= abs(value) < 1e6):
            text = f"{value:.3f}"
        else:
            text = value if isinstance(value, str) else _format_value(value)
        return text.replace("|", "\\|").replace("\n", " ")

    frame = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(cell(str(c)) for c in frame.columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def summary_markdown(title, sections):
    """A short markdown document: a title, then one ``##`` section per entry.

    Parameters
    ----------
    title : str
    sections : dict of str to (str or pandas.DataFrame)
        Section heading -> body. A string is inserted as it is (wrap a fixed-width table in a
        fenced code block; link a figure with ``![confusion matrix](confusion_matrix.png)``);
        a DataFrame becomes a markdown table.

    Returns
    -------
    str
        Ends with a newline.

    >>> print(summary_markdown("SVM on demo", {"Result": "accuracy 0.900 +/- 0.050"}), end="")
    # SVM on demo
    <BLANKLINE>
    ## Result
    <BLANKLINE>
    accuracy 0.900 +/- 0.050
    """
    parts = [f"# {title}"]
    for heading, body in sections.items():
        text = _markdown_table(body) if isinstance(body, pd.DataFrame) else str(body).strip("\n")
        parts.append(f"## {heading}\n\n{text}")
    return "\n\n".join(parts) + "\n"
