"""Cross-validation and grid search on a data set's folds, keeping out-of-fold predictions.

scikit-learn's ``GridSearchCV`` works with these pipelines and splitters as they are (the README shows
it). This module runs the same protocol in one loop over (parameter set, fold) so that it can keep
what reports need and ``GridSearchCV`` drops: out-of-fold predictions for confusion matrices and
per-class scores, window-level scores of segment voting, and the training histories of torch nets.
"""

import inspect
import time
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

METRICS = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,  # class-balanced recall (DeepFourier study)
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
        Out-of-fold predictions: ``clip_id``, ``fold``, ``label``, ``prediction`` and one
        ``proba_<class>`` column per class when the model gives probabilities.
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
    for params in candidates:  # an unknown parameter fails here, before any training
        clone(pipeline).set_params(**params)
    splitter = splitter if splitter is not None else ClipSplitter(clips)
    X = clips["clip_id"].to_numpy(dtype=str)
    y = clips["label"].to_numpy()
    groups = clips["group"].to_numpy()
    splits = list(splitter.split(X, y))
    labels = _split_labels(splitter, X)
    jobs = [(c, delayed(fit_and_score)(pipeline, params, X, y, groups, train, test, label))
            for c, params in enumerate(candidates) for (train, test), label in zip(splits, labels)]
    owners = [c for c, _ in jobs]
    outputs = Parallel(n_jobs=n_jobs, return_as="generator")(job for _, job in jobs)
    collected = [[] for _ in candidates]
    bar = tqdm(total=len(jobs), desc=desc, unit="fit", disable=not progress)
    for owner, output in zip(owners, outputs):
        collected[owner].append(output)
        bar.update(1)
        bar.set_postfix_str(f"last fold acc={output['row']['accuracy']:.3f}")
    bar.close()
    return [CVResult(params=params,
                     folds=pd.DataFrame([o["row"] for o in outs]),
                     predictions=pd.concat([o["predictions"] for o in outs], ignore_index=True),
                     histories=[o["history"] for o in outs])
            for params, outs in zip(candidates, collected)]


def cross_validate(pipeline, clips, *, splitter=None, n_jobs=1, progress=True):
    """Cross-validate one configuration; see :func:`run_candidates`. Returns a :class:`CVResult`."""
    return run_candidates(pipeline, [{}], clips, splitter=splitter, n_jobs=n_jobs, progress=progress)[0]


def grid_search(pipeline, param_grid, clips, *, splitter=None, scoring="accuracy", n_jobs=1, refit=True,
                progress=True, desc="grid"):
    """Exhaustive search over ``param_grid`` with the data set's folds.

    Returns
    -------
    cv_results : pandas.DataFrame
        One row per parameter set: ``params``, ``mean_<metric>``, ``std_<metric>``,
        ``fold<k>_<metric>`` for every metric and fold, ``fit_time``, ``rank``.
    results : list of CVResult
    best_index : int
        Row of the best parameter set by ``scoring`` (mean over folds).
    best_model : Pipeline or None
        The pipeline refitted with the best parameters on all clips, when ``refit``.
    """
    if scoring not in METRICS:
        raise ValueError(f"scoring {scoring!r} must be one of {', '.join(METRICS)}")
    candidates = list(ParameterGrid(param_grid)) if param_grid else [{}]
    results = run_candidates(pipeline, candidates, clips, splitter=splitter, n_jobs=n_jobs, progress=progress,
                             desc=desc)
    rows = []
    for result in results:
        row = {"params": result.params, **result.summary()}
        for fold_row in result.folds.to_dict("records"):
            for metric in METRICS:
                row[f"fold{fold_row['fold']}_{metric}"] = fold_row[metric]
        rows.append(row)
    cv_results = pd.DataFrame(rows)
    cv_results["rank"] = cv_results[f"mean_{scoring}"].rank(ascending=False, method="min").astype(int)
    best_index = int(np.argmax(cv_results[f"mean_{scoring}"].to_numpy()))
    best_model = None
    if refit:
        best_model = clone(pipeline).set_params(**results[best_index].params)
        X = clips["clip_id"].to_numpy(dtype=str)
        best_model.fit(X, clips["label"].to_numpy(), **_fit_params(best_model, clips["group"].to_numpy()))
    return cv_results, results, best_index, best_model
