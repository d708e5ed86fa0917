"""How a grid's candidates are generated and selected: grid, random, successive halving, Optuna.

Four methods generate candidates (``--search``), each run nested or flat (``--selection``):

``grid``
    Every candidate of ``ParameterGrid`` (:func:`~pipelines.evaluate.nested_grid_search`,
    :func:`~pipelines.evaluate.grid_search`: this path is the toolkit's grid search, unchanged).
``random``
    ``n_iter`` candidates drawn by scikit-learn's ``ParameterSampler`` from lists and ``scipy.stats``
    distributions (:mod:`pipelines.spaces`), seeded by ``seed``; then the same code as ``grid``,
    so every candidate is scored on every outer fold and the flat table comes for free.
``halving``
    scikit-learn's successive halving (:mod:`pipelines.halving`): ``HalvingGridSearchCV``, or
    ``HalvingRandomSearchCV`` when the space has distributions or ``n_iter`` is given. The resource
    is ``max_epochs`` for a torch net, the number of training clips for any other model.
``optuna``
    An Optuna study (TPE, seeded; :mod:`pipelines.optuna_search`) of ``n_trials`` trials or ``timeout``
    seconds, pruning torch nets on their per-epoch validation accuracy; stored in SQLite when given
    a ``storage`` path, and resumed from it.

Whatever the method, the splits are the data set's (:class:`~pipelines.splits.ClipSplitter`, with its
leakage guard), and the outcome has the same fields: the ``cv_results`` table, the :class:`CVResult`
headline, the saved model's parameters and, nested, a :class:`~pipelines.evaluate.NestedResult`
whose ``selected_params()`` give each outer fold's selection. Nested, the method runs inside each outer
training set on its inner splits only; the selection is fitted on that set and scored on the outer
test fold. For ``halving`` and ``optuna``, whose candidates differ from one run to the next, the saved
model's parameters come from one more run of the method on all clips with the outer splits (the
flat search: ``cv_results``, labelled optimistic), as in scikit-learn's nested cross-validation example.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterSampler

from featurestore.errors import ParameterError
from featurestore.features import check_int
from pipelines.evaluate import (METRICS, CVResult, NestedResult, _check_scoring, _clip_arrays, _cv_result,
                                _inner_tasks, _run_fits, _splits, grid_search, nested_grid_search)
from pipelines.spaces import Distribution, has_distributions, parse_space, scipy_space
from pipelines.splits import ClipSplitter

#: ``--search``: how candidates are generated.
METHODS = ("grid", "random", "halving", "optuna")
#: ``--selection``: where they are selected (nested: inside each outer training set).
SELECTIONS = ("nested", "flat")
#: ``n_iter`` of random search when none is given (scikit-learn's ``RandomizedSearchCV`` default).
DEFAULT_N_ITER = 10
#: Trials of an Optuna study when neither ``n_iter`` nor ``timeout`` is given.
DEFAULT_TRIALS = 20


@dataclass
class SearchOutcome:
    """What every search method gives a results folder.

    Attributes
    ----------
    cv_results : pandas.DataFrame
        The flat search's table (optimistic): ``params``, ``mean_<metric>``, ``std_<metric>``,
        ``fold<k>_<metric>``, ``fit_time``, ``rank``; halving adds ``iter`` and ``n_resources``,
        Optuna ``trial`` and ``state``.
    result : CVResult
        The headline: nested, the outer-fold scores of each fold's selection; flat, the best's.
    best_params : dict
        The saved model's parameters (the flat search's best), in the pipeline's names.
    nested : NestedResult or None
    """

    cv_results: pd.DataFrame
    result: CVResult
    best_params: dict
    nested: Optional[NestedResult]


@dataclass
class Selection:
    """One run of a method (halving, Optuna) on one set of splits.

    Attributes
    ----------
    params : dict
        The selected candidate.
    index : int
        Its row in ``table`` (halving) or its trial number (Optuna).
    score : float
        Its mean ``scoring`` over the splits.
    table : pandas.DataFrame
        One row per candidate (per iteration for halving, per trial for Optuna), as ``cv_results``.
    inner : pandas.DataFrame
        One row per (candidate, split): ``candidate``, ``fold``, the scores (and ``iter``,
        ``n_resources`` for halving; ``state`` for Optuna).
    """

    params: dict
    index: int
    score: float
    table: pd.DataFrame
    inner: pd.DataFrame


def check_search(method, selection, *, n_iter=None, timeout=None, inner_splits=None):
    """Raise :class:`ParameterError` for a method, selection or option that does not apply."""
    if method not in METHODS:
        raise ParameterError(f"search={method!r} must be one of {', '.join(METHODS)}")
    if selection not in SELECTIONS:
        raise ParameterError(f"selection={selection!r} must be 'nested' or 'flat'")
    if check_int("n_iter", n_iter, allow_none=True) is not None and method == "grid":
        raise ParameterError(f"n_iter={n_iter} applies to --search random, halving or optuna, not grid "
                             "(a grid tries every candidate)")
    if timeout is not None:
        if method != "optuna":
            raise ParameterError(f"timeout={timeout} applies to --search optuna only, not {method}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ParameterError(f"timeout={timeout!r} must be a positive number of seconds")
    if inner_splits is not None and selection != "nested":
        raise ParameterError(f"inner_splits={inner_splits} applies to a nested search only, not selection="
                             f"{selection!r}")


def check_space(method, space):
    """Raise :class:`ParameterError` for a parsed ``space`` that ``method`` cannot search."""
    if method == "grid" and has_distributions(space):
        name = next(k for g in (space if isinstance(space, list) else [space]) for k, v in g.items()
                    if isinstance(v, Distribution))
        raise ParameterError(f"search space key {name!r} is a distribution: --search grid takes lists of values; "
                             "use --search random, halving or optuna")
    if method in ("halving", "optuna") and isinstance(space, list):
        raise ParameterError(f"--search {method} takes one table of parameters, not a list of grids")


def sample_candidates(space, n_iter, seed):
    """``n_iter`` candidates of ``space`` drawn by ``ParameterSampler`` with ``random_state=seed``.

    Lists are drawn uniformly, distributions from ``scipy.stats``; a space of lists only is sampled
    without replacement (all of it when it has fewer than ``n_iter`` candidates).

    >>> from pipelines.spaces import parse_space
    >>> space = parse_space({"C": {"dist": "loguniform", "low": 0.01, "high": 100}, "kernel": ["rbf"]})
    >>> candidates = sample_candidates(space, 3, seed=0)
    >>> candidates == sample_candidates(space, 3, seed=0), [c["kernel"] for c in candidates]
    (True, ['rbf', 'rbf', 'rbf'])
    >>> all(0.01 <= c["C"] <= 100 for c in candidates)
    True
    """
    space = space if space else {}
    if not has_distributions(space):
        grids = space if isinstance(space, list) else [space]
        size = sum(int(np.prod([len(v) for v in grid.values()])) for grid in grids)
        n_iter = min(n_iter, size)  # ParameterSampler would warn, then give all of them
    sampled = ParameterSampler(scipy_space(space), n_iter=n_iter, random_state=seed)
    return [{key: _plain(value) for key, value in candidate.items()} for candidate in sampled]


def _plain(value):
    """numpy scalars as Python numbers: they go to JSON files and to estimators that check types."""
    return value.item() if isinstance(value, np.generic) else value


def _as_grid(candidates):
    """A ``ParameterGrid`` of exactly ``candidates``, in their order."""
    return [{key: [value] for key, value in candidate.items()} for candidate in candidates]


def run_search(pipeline, space, clips, *, method="grid", selection="nested", splitter=None, scoring="accuracy",
               inner_splits=None, n_iter=None, timeout=None, seed=0, storage=None, n_jobs=1, progress=True,
               desc="grid"):
    """Search ``space`` for ``pipeline``'s parameters with ``method``, nested or flat.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Starts with a :class:`pipelines.loader.FeatureLoader`; ``X`` are clip ids.
    space : dict or list of dict
        Checked by :func:`~pipelines.spaces.parse_space` (a raw table is parsed here), in the
        pipeline's names (``model__C``): lists and, except for ``grid``, :class:`Distribution`\\ s.
    clips : pandas.DataFrame
        The clip table.
    method : {"grid", "random", "halving", "optuna"}
    selection : {"nested", "flat"}
    splitter : ClipSplitter, optional
        Outer splits (default ``ClipSplitter(clips)``); nested, its :meth:`~ClipSplitter.inner` ones.
    scoring : str
        A key of :data:`~pipelines.evaluate.METRICS`: what selects.
    inner_splits : int, optional
        Nested: at most this many inner splits per outer split.
    n_iter : int, optional
        Candidates of ``random`` (default 10), of ``halving`` (random candidates; default: the grid),
        trials of each ``optuna`` study (default 20, or unlimited with a ``timeout``).
    timeout : float, optional
        ``optuna``: seconds per study.
    seed : int
        Seeds the sampling of ``random``, ``halving`` and Optuna's TPE sampler.
    storage : str or pathlib.Path, optional
        ``optuna``: SQLite file of the studies (created, or resumed when it holds them).
    n_jobs : int
        Parallel fits (``grid``, ``random``, ``halving``, and the outer fits of each selection).
    progress : bool
    desc : str
        Label of the progress bars.

    Returns
    -------
    SearchOutcome
    """
    check_search(method, selection, n_iter=n_iter, timeout=timeout, inner_splits=inner_splits)
    _check_scoring(scoring)
    space = parse_space(space) if space else {}
    splitter = splitter if splitter is not None else ClipSplitter(clips)
    check_space(method, space)
    if method in ("grid", "random"):
        grid = space if method == "grid" else _as_grid(sample_candidates(space, n_iter or DEFAULT_N_ITER, seed))
        return _grid_outcome(pipeline, grid, clips, splitter=splitter, scoring=scoring, selection=selection,
                             inner_splits=inner_splits, n_jobs=n_jobs, progress=progress, desc=desc)
    if method == "halving":
        from pipelines.halving import halving_select

        def select(rows, splits, name):
            return halving_select(pipeline, space, clips, rows, splits, scoring=scoring, n_iter=n_iter, seed=seed,
                                  n_jobs=n_jobs, progress=progress)
    else:
        from pipelines.optuna_search import optuna_select

        def select(rows, splits, name):
            return optuna_select(pipeline, space, clips, splits, scoring=scoring, n_trials=n_iter, timeout=timeout,
                                 seed=seed, storage=storage, study_name=name, progress=progress)
    return _selection_outcome(pipeline, select, clips, splitter=splitter, scoring=scoring, selection=selection,
                              inner_splits=inner_splits, n_jobs=n_jobs, progress=progress, desc=desc)


def _grid_outcome(pipeline, grid, clips, *, splitter, scoring, selection, inner_splits, n_jobs, progress, desc):
    """``grid`` and ``random``: every candidate on every split, as the toolkit's grid search does it."""
    if selection == "nested":
        nested = nested_grid_search(pipeline, grid, clips, splitter=splitter, scoring=scoring,
                                    inner_splits=inner_splits, n_jobs=n_jobs, refit=False, progress=progress,
                                    desc=f"{desc} (nested)")
        return SearchOutcome(nested.cv_results, nested.result, nested.flat[nested.best_index].params, nested)
    cv_results, results, best, _ = grid_search(pipeline, grid, clips, splitter=splitter, scoring=scoring,
                                               n_jobs=n_jobs, refit=False, progress=progress, desc=desc)
    return SearchOutcome(cv_results, results[best], results[best].params, None)


def _selection_outcome(pipeline, select, clips, *, splitter, scoring, selection, inner_splits, n_jobs, progress,
                       desc):
    """``halving`` and ``optuna``: ``select(rows, splits, study_name)`` on the outer splits (the flat search,
    whose best is the saved model's) and, nested, on the inner splits of each outer training set."""
    X = _clip_arrays(clips)[0]
    outer = _splits(splitter, X)
    inner = _inner_tasks(splitter, X, outer, inner_splits) if selection == "nested" else None
    everything = np.arange(len(X))
    flat = select(everything, outer, "all-folds")
    if inner is None:
        # the selected candidate cross-validated on the folds it was selected on: optimistic
        outputs = _run_fits(pipeline, [(flat.params, split) for split in outer], clips, n_jobs=n_jobs,
                            progress=progress, desc=f"{desc} (selected)")
        result = _cv_result(flat.params, outputs)
        return SearchOutcome(flat.table, result, flat.params, None)
    chosen = [select(train, inner[k], f"outer-fold-{fold}") for k, (train, _, fold) in enumerate(outer)]
    tasks = [(sel.params, split) for sel, split in zip(chosen, outer)]
    tasks += [(flat.params, split) for split in outer]  # the flat best on the outer folds: optimistic, for reference
    outputs = _run_fits(pipeline, tasks, clips, n_jobs=n_jobs, progress=progress, desc=f"{desc} (outer fits)")
    n = len(outer)
    rows = [{**out["row"], "candidate": sel.index, "params": sel.params, f"inner_{scoring}": sel.score}
            for out, sel in zip(outputs[:n], chosen)]
    result = CVResult(params=flat.params, folds=pd.DataFrame(rows),
                      predictions=pd.concat([o["predictions"] for o in outputs[:n]], ignore_index=True),
                      histories=[o["history"] for o in outputs[:n]])
    inner_table = pd.concat([sel.inner.assign(outer_fold=fold) for sel, (_, _, fold) in zip(chosen, outer)],
                            ignore_index=True)
    inner_table = inner_table[["outer_fold", *[c for c in inner_table.columns if c != "outer_fold"]]]
    nested = NestedResult(result=result, inner=inner_table, flat=[_cv_result(flat.params, outputs[n:])],
                          cv_results=flat.table, best_index=0, best_model=None, scoring=scoring)
    return SearchOutcome(flat.table, result, flat.params, nested)


def rank_rows(table, scoring, *, first=None):
    """``table`` with ``rank`` (1 = best ``mean_<scoring>``; equal means share a rank; no score: last).

    ``first`` (a boolean mask of the rows) ranks its rows above all others, e.g. the last iteration of halving.
    """
    score = table[f"mean_{scoring}"].astype(float).round(10)
    key = score if first is None else score + np.where(first, 10.0, 0.0)  # scores lie in [0, 1]
    table["rank"] = key.rank(ascending=False, method="min", na_option="bottom").astype(int)
    return table


def fold_columns(rows, metrics=METRICS):
    """``fold<k>_<metric>`` of each ``fold_rows`` entry: per-fold scores in the cv_results layout."""
    out = {}
    for row in rows:
        for metric in metrics:
            if metric in row:
                out[f"fold{row['fold']}_{metric}"] = row[metric]
    return out
