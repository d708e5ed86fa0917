"""Cross-validation and grid search on a data set's folds, keeping out-of-fold predictions.

scikit-learn's ``GridSearchCV`` works with these pipelines and splitters as they are (the README shows
it). This module runs the same protocol in one loop over (parameter set, fold) so that it can keep
what reports need and ``GridSearchCV`` drops: out-of-fold predictions for confusion matrices and
per-class scores, window-level scores of segment voting, and the training histories of torch nets.

:func:`grid_search` is the flat search: its best mean is selected and scored on the same folds, so it
is optimistic. :func:`nested_grid_search` selects inside each outer training set and reports the
outer-fold scores of what was selected (nested cross-validation), in the same single joblib call.
"""

import inspect
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from pipelines.segments import SegmentClassifier
from pipelines.splits import ClipSplitter


def _balanced_accuracy(y_true, y_pred):
    """The mean recall over the classes in ``y_true`` (:func:`~sklearn.metrics.balanced_accuracy_score`).

    A test fold of a grouped split may lack a class that the model still predicts; scikit-learn
    then warns "y_pred contains classes not in y_true" once per fold and per metric. That is
    expected here, and the score is what this function documents, so the warning is not shown.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return balanced_accuracy_score(y_true, y_pred)


METRICS = {
    "accuracy": accuracy_score,
    "balanced_accuracy": _balanced_accuracy,  # class-balanced recall (DeepFourier study)
    "f1_macro": lambda y, p: f1_score(y, p, average="macro", zero_division=0),
}


@dataclass
class CVResult:
    """Scores of one configuration across folds.

    Attributes
    ----------
    params : dict
        The parameters set on the pipeline.
    folds : pandas.DataFrame
        One row per test fold: ``fold``, ``n_train``, ``n_test``, one column per metric,
        ``window_accuracy`` (segment voting only), ``fit_time`` (s), and ``n_train_copies`` (augmented
        copies of training clips added by a :class:`~pipelines.loader.ClipPipeline` with an augmented set).
        ``n_train``, ``n_test`` and the scores count source clips only.
    predictions : pandas.DataFrame
        Out-of-fold predictions: ``clip_id``, ``fold``, ``label``, ``prediction``, one
        ``proba_<class>`` column per class when the model gives probabilities, and for an ensemble
        (a model with ``named_estimators_``) ``member_<name>``: each member's own prediction, from the
        member fitted inside that fold's ensemble.
    histories : list of list of dict
        Per fold, the per-epoch training history of a torch net (empty lists for other models).
    """

    params: dict
    folds: pd.DataFrame
    predictions: pd.DataFrame
    histories: list = field(default_factory=list)

    def mean(self, metric):
        return float(self.folds[metric].mean())

    def std(self, metric):
        return float(self.folds[metric].std(ddof=0))

    def summary(self):
        """Mean and standard deviation of each metric over folds, and the total fit time."""
        out = {}
        for metric in [*METRICS, "window_accuracy"]:
            if metric in self.folds:
                out[f"mean_{metric}"] = self.mean(metric)
                out[f"std_{metric}"] = self.std(metric)
        out["fit_time"] = float(self.folds["fit_time"].sum())
        return out


def _fit_params(pipeline, groups):
    """``model__groups`` when the final step can use groups for its validation split."""
    if not isinstance(pipeline, Pipeline):
        return {}  # ensembles route no fit parameters to their members
    if getattr(pipeline.named_steps.get("sampler"), "kind", None) is not None:
        return {}  # resampled rows have no groups (pipelines.build.make_pipeline's sampler step)
    final = pipeline.steps[-1]
    if "groups" in inspect.signature(final[1].fit).parameters:
        return {f"{final[0]}__groups": groups}
    return {}


def _history(model):
    model = model.estimator_ if isinstance(model, SegmentClassifier) else model
    history = getattr(model, "history_", None) or getattr(model, "history", None)
    if history is None or not hasattr(history, "to_list"):
        return []
    keys = ("epoch", "train_loss", "valid_loss", "valid_acc", "dur")
    return [{k: row[k] for k in keys if k in row} for row in history.to_list()]


def fit_and_score(pipeline, params, X, y, groups, train, test, fold):
    """Fit a clone of ``pipeline`` with ``params`` on ``train`` and score it on ``test``.

    Returns
    -------
    dict
        ``fold``, metrics, ``fit_time``, ``predictions`` (DataFrame), ``history``.
    """
    model = clone(pipeline).set_params(**params)
    start = time.perf_counter()
    model.fit(X[train], y[train], **_fit_params(model, groups[train]))
    fit_time = time.perf_counter() - start
    prediction = model.predict(X[test])
    row = {"fold": fold, "n_train": len(train), "n_test": len(test), "fit_time": fit_time}
    loader = model.steps[0][1] if isinstance(model, Pipeline) else None
    if getattr(loader, "augmented_set", None) is not None:
        row["n_train_copies"] = int(getattr(model, "n_augmented_", 0))
    row.update({name: float(metric(y[test], prediction)) for name, metric in METRICS.items()})
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if isinstance(final, SegmentClassifier):
        row["window_accuracy"] = float(final.score_windows(model[:-1].transform(X[test]), y[test]))
    predictions = pd.DataFrame({"clip_id": X[test], "fold": fold, "label": y[test], "prediction": prediction})
    for name, member in getattr(model, "named_estimators_", {}).items():  # an ensemble's members, as fitted in it
        own = member.predict(X[test])
        if not np.array_equal(member.classes_, model.classes_):  # voting and stacking encode labels as 0..k-1
            own = np.asarray(model.classes_)[own]
        predictions[f"member_{name}"] = own
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(X[test])
        except AttributeError:  # e.g. hard voting: no probabilities
            proba = None
        if proba is not None:
            for j, cls in enumerate(model.classes_):
                predictions[f"proba_{cls}"] = proba[:, j]
    return {"row": row, "predictions": predictions, "history": _history(final)}


def _split_labels(splitter, X):
    folds = splitter.test_folds(X)
    return [f if f is not None else i + 1 for i, f in enumerate(folds)]


def _splits(splitter, X):
    """``(train, test, fold)`` of each split of ``X``: row indices and the test fold's number (1 to k for k-fold)."""
    return [(train, test, label) for (train, test), label in zip(splitter.split(X), _split_labels(splitter, X))]


def _clip_arrays(clips):
    """``X`` (clip ids), ``y`` and ``groups`` of the clip table."""
    return clips["clip_id"].to_numpy(dtype=str), clips["label"].to_numpy(), clips["group"].to_numpy()


def _check_candidates(pipeline, candidates):
    for params in candidates:  # an unknown parameter fails here, before any training
        clone(pipeline).set_params(**params)


def _run_fits(pipeline, tasks, clips, *, n_jobs, progress, desc):
    """:func:`fit_and_score` of every ``(params, (train, test, fold))`` task, in one joblib call.

    Returns the outputs in the order of ``tasks``.
    """
    X, y, groups = _clip_arrays(clips)
    jobs = (delayed(fit_and_score)(pipeline, params, X, y, groups, train, test, fold)
            for params, (train, test, fold) in tasks)
    outputs = []
    bar = tqdm(total=len(tasks), desc=desc, unit="fit", disable=not progress)
    for output in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        outputs.append(output)
        bar.update(1)
        bar.set_postfix_str(f"last fold acc={output['row']['accuracy']:.3f}")
    bar.close()
    return outputs


def _cv_result(params, outputs):
    """A :class:`CVResult` of the :func:`fit_and_score` outputs of one parameter set, one per fold."""
    return CVResult(params=params,
                    folds=pd.DataFrame([o["row"] for o in outputs]),
                    predictions=pd.concat([o["predictions"] for o in outputs], ignore_index=True),
                    histories=[o["history"] for o in outputs])


def run_candidates(pipeline, candidates, clips, *, splitter=None, n_jobs=1, progress=True, desc="cv"):
    """Cross-validate ``pipeline`` with each parameter dict in ``candidates``.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Starts with a :class:`pipelines.loader.FeatureLoader`; ``X`` are clip ids.
    candidates : list of dict
        Parameter sets (``set_params`` keys). All are validated before any training starts.
    clips : pandas.DataFrame
        The clip table (``Dataset.clips``, possibly restricted to the clips of the feature set).
    splitter : ClipSplitter, optional
        Defaults to ``ClipSplitter(clips)``.
    n_jobs : int
        Parallel (parameter set, fold) fits.

    Returns
    -------
    list of CVResult
        In the order of ``candidates``.
    """
    _check_candidates(pipeline, candidates)
    splitter = splitter if splitter is not None else ClipSplitter(clips)
    splits = _splits(splitter, _clip_arrays(clips)[0])
    outputs = _run_fits(pipeline, [(params, split) for params in candidates for split in splits], clips,
                        n_jobs=n_jobs, progress=progress, desc=desc)
    k = len(splits)
    return [_cv_result(params, outputs[c * k:(c + 1) * k]) for c, params in enumerate(candidates)]


def cross_validate(pipeline, clips, *, splitter=None, n_jobs=1, progress=True):
    """Cross-validate one configuration; see :func:`run_candidates`. Returns a :class:`CVResult`."""
    return run_candidates(pipeline, [{}], clips, splitter=splitter, n_jobs=n_jobs, progress=progress)[0]


def _check_scoring(scoring):
    if scoring not in METRICS:
        raise ValueError(f"scoring {scoring!r} must be one of {', '.join(METRICS)}")


def _candidates(param_grid):
    return list(ParameterGrid(param_grid)) if param_grid else [{}]


def _best(scores):
    """Index of the highest score; ties go to the first (in grid order). Scores are rounded to 10
    decimals first, so that equal per-fold scores averaged in another order still tie."""
    return int(np.argmax(np.round(np.asarray(scores, dtype=float), 10)))


def _search_table(results, scoring):
    """The ``cv_results`` table of :func:`grid_search`: one row per parameter set, with its rank."""
    rows = []
    for result in results:
        row = {"params": result.params, **result.summary()}
        for fold_row in result.folds.to_dict("records"):
            for metric in METRICS:
                row[f"fold{fold_row['fold']}_{metric}"] = fold_row[metric]
        rows.append(row)
    cv_results = pd.DataFrame(rows)
    cv_results["rank"] = cv_results[f"mean_{scoring}"].rank(ascending=False, method="min").astype(int)
    return cv_results


def _refit(pipeline, params, clips):
    """``pipeline`` with ``params``, fitted on every clip of ``clips``."""
    model = clone(pipeline).set_params(**params)
    X, y, groups = _clip_arrays(clips)
    return model.fit(X, y, **_fit_params(model, groups))


def grid_search(pipeline, param_grid, clips, *, splitter=None, scoring="accuracy", n_jobs=1, refit=True,
                progress=True, desc="grid"):
    """Exhaustive search over ``param_grid`` with the data set's folds (flat: optimistic).

    The best mean over the folds is selected on the same folds it is scored on, so it overstates
    the score a new data set would give; :func:`nested_grid_search` reports an honest one.

    Returns
    -------
    cv_results : pandas.DataFrame
        One row per parameter set: ``params``, ``mean_<metric>``, ``std_<metric>``,
        ``fold<k>_<metric>`` for every metric and fold, ``fit_time``, ``rank``.
    results : list of CVResult
    best_index : int
        Row of the best parameter set by ``scoring`` (mean over folds; ties: the first in grid order).
    best_model : Pipeline or None
        The pipeline refitted with the best parameters on all clips, when ``refit``.
    """
    _check_scoring(scoring)
    results = run_candidates(pipeline, _candidates(param_grid), clips, splitter=splitter, n_jobs=n_jobs,
                             progress=progress, desc=desc)
    cv_results = _search_table(results, scoring)
    best_index = _best(cv_results[f"mean_{scoring}"])
    best_model = _refit(pipeline, results[best_index].params, clips) if refit else None
    return cv_results, results, best_index, best_model


@dataclass
class NestedResult:
    """A nested grid search: parameters selected inside each outer training set, scored on its test fold.

    Attributes
    ----------
    result : CVResult
        The honest score. Per outer test fold, the row and out-of-fold predictions of the parameter set
        selected on that fold's inner splits; ``result.folds`` also has ``candidate`` (its index in
        ``flat``), ``params`` (the selected dict) and ``inner_<scoring>`` (its mean over the inner splits).
        ``result.params`` are the final model's (see ``best_index``), not necessarily any fold's.
    inner : pandas.DataFrame
        One row per (outer fold, candidate, inner split): ``outer_fold``, ``candidate``, then the
        columns of :attr:`CVResult.folds` (``fold`` is the inner test fold).
    flat : list of CVResult
        Each candidate on the outer splits: the flat search, optimistic as a score of the best.
    cv_results : pandas.DataFrame
        The flat search's table, as :func:`grid_search` returns it (optimistic).
    best_index : int
        The flat search's best candidate over all folds: the final model's parameters.
    best_model : Pipeline or None
        ``flat[best_index].params`` refitted on all clips.
    scoring : str
    """

    result: CVResult
    inner: pd.DataFrame
    flat: list
    cv_results: pd.DataFrame
    best_index: int
    best_model: object
    scoring: str

    def selected_params(self):
        """Per outer fold: ``{"fold", "params", "inner_<scoring>", "<scoring>"}`` (inner mean, outer score)."""
        key = f"inner_{self.scoring}"
        return [{"fold": int(row["fold"]), "params": row["params"], key: float(row[key]),
                 self.scoring: float(row[self.scoring])}
                for row in self.result.folds.to_dict("records")]


def _inner_tasks(splitter, X, outer, max_splits):
    """The inner ``(train, test, fold)`` splits of each outer split, as row indices into ``X``.

    The inner splitter sees the outer training rows only, so no outer test clip can reach an inner
    split, on either side.
    """
    inner = []
    for train, _, _ in outer:
        splits = _splits(splitter.inner(X[train], max_splits=max_splits), X[train])
        inner.append([(train[a], train[b], fold) for a, b, fold in splits])
    return inner


def nested_grid_search(pipeline, param_grid, clips, *, splitter=None, scoring="accuracy", inner_splits=None,
                       n_jobs=1, refit=True, progress=True, desc="nested grid"):
    """Nested cross-validation: select ``param_grid``'s best inside each outer training set.

    For each outer split of ``splitter``, every candidate is cross-validated on inner splits of the
    outer training clips only (:meth:`ClipSplitter.inner`: the remaining folds, or grouped k-fold
    without folds); the best mean of ``scoring`` is selected (ties: the first in grid order) and its
    fit on the whole outer training set is scored on the outer test fold. The mean of those outer
    scores is the nested score. The outer fit of each candidate is the flat search's fit, so the flat
    table comes at no extra cost; it is kept, labelled optimistic.

    As in scikit-learn's nested cross-validation example, the final model (the product) is the flat
    search's best over all folds, refitted on all clips: the nested score estimates how well that
    procedure does, not the score of those particular parameters.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        As in :func:`run_candidates`.
    param_grid : dict or list of dict
        A ``ParameterGrid`` of ``set_params`` keys; empty: the pipeline as it is.
    clips : pandas.DataFrame
        The clip table.
    splitter : ClipSplitter, optional
        Outer splits (default ``ClipSplitter(clips)``); its folds, ``n_splits`` and seed make the inner ones.
    scoring : str
        A key of :data:`METRICS`, the score that selects.
    inner_splits : int, optional
        Cap on the inner splits per outer split (default: all remaining folds, or ``n_splits`` without
        folds). Fewer inner splits make a noisier selection, and a cheaper one.
    n_jobs : int
        Parallel fits; every (candidate, outer, inner) fit runs in one joblib call.
    refit : bool
        Refit the final model on all clips.

    Returns
    -------
    NestedResult

    Notes
    -----
    With C candidates, K outer splits and I inner splits per outer split this is C * K * (I + 1) fits
    (and one refit), against C * K for the flat search: on ten predefined folds with all nine
    remaining folds inner, ten times the flat search; ``inner_splits=3`` makes it four times.
    """
    _check_scoring(scoring)
    candidates = _candidates(param_grid)
    _check_candidates(pipeline, candidates)
    splitter = splitter if splitter is not None else ClipSplitter(clips)
    X = _clip_arrays(clips)[0]
    outer = _splits(splitter, X)
    inner = _inner_tasks(splitter, X, outer, inner_splits)
    outer_tasks = [(params, split) for params in candidates for split in outer]
    inner_tasks = [(params, split) for k in range(len(outer)) for params in candidates for split in inner[k]]
    outputs = _run_fits(pipeline, outer_tasks + inner_tasks, clips, n_jobs=n_jobs, progress=progress, desc=desc)

    n_outer = len(outer)
    flat = [_cv_result(params, outputs[c * n_outer:(c + 1) * n_outer]) for c, params in enumerate(candidates)]
    inner_outputs = iter(outputs[len(outer_tasks):])  # in the order of inner_tasks
    inner_table = pd.DataFrame([{"outer_fold": outer[k][2], "candidate": c, **next(inner_outputs)["row"]}
                                for k in range(n_outer) for c in range(len(candidates)) for _ in inner[k]])
    cv_results = _search_table(flat, scoring)
    best_index = _best(cv_results[f"mean_{scoring}"])
    result = _select_per_fold(flat, inner_table, outer, scoring, final_params=flat[best_index].params)
    best_model = _refit(pipeline, flat[best_index].params, clips) if refit else None
    return NestedResult(result=result, inner=inner_table, flat=flat, cv_results=cv_results,
                        best_index=best_index, best_model=best_model, scoring=scoring)


def _select_per_fold(flat, inner_table, outer, scoring, *, final_params):
    """The nested :class:`CVResult`: per outer fold, the outer row of the candidate best on its inner splits."""
    rows, predictions, histories = [], [], []
    for k, (_, _, fold) in enumerate(outer):
        means = inner_table[inner_table["outer_fold"] == fold].groupby("candidate")[scoring].mean()
        best = int(means.index[_best(means.to_numpy())])  # groupby sorts candidates: grid order
        chosen = flat[best]
        rows.append({**chosen.folds.to_dict("records")[k], "candidate": best, "params": chosen.params,
                     f"inner_{scoring}": float(means[best])})
        predictions.append(chosen.predictions[chosen.predictions["fold"] == fold])
        histories.append(chosen.histories[k])
    return CVResult(params=final_params, folds=pd.DataFrame(rows),
                    predictions=pd.concat(predictions, ignore_index=True), histories=histories)
