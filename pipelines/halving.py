"""Successive halving on a data set's folds: scikit-learn's ``HalvingGridSearchCV`` and ``HalvingRandomSearchCV``.

All candidates start with a small resource; each iteration keeps the best third (``factor=3``) and
gives them three times as much, until the last iteration, which uses the full resource
(``min_resources="exhaust"``). The resource is

* ``max_epochs`` of a torch net (a model that declares the run setting ``max_epochs``): its
  ``model__max_epochs`` (``model__estimator__max_epochs`` with segment voting), up to the net's own
  value (``--max-epochs``, else its default); it cannot also be a searched parameter;
* the number of clips for any other model (``resource="n_samples"``): scikit-learn draws that
  fraction of the clips of each side of each split (the test part too, as ``HalvingGridSearchCV``
  does), so early iterations train and score on fewer clips of the same folds.

scikit-learn's classes run as they are, on the clip ids ``X`` and on the given splits (the data
set's folds, or the inner splits of an outer training set): the folds are the data set's, only
subsampled. scikit-learn selects among the candidates of the last iteration; with
epochs as the resource the selection (its ``best_params_``) includes the epochs of that iteration,
which ``min_resources="exhaust"`` makes the largest ``min_resources * 3**k`` within ``max_epochs``
(18 of 20, say), so that the fits scored on the outer folds train as long as those selected.
"""

import numpy as np
import pandas as pd
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes the Halving classes importable)
from sklearn.metrics import make_scorer
from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV
from sklearn.pipeline import Pipeline

from featurestore.errors import ParameterError
from pipelines.build import model_of
from pipelines.evaluate import METRICS, _clip_arrays, _fit_params
from pipelines.search import Selection, rank_rows
from pipelines.spaces import has_distributions, scipy_space

#: Each iteration keeps 1/FACTOR of the candidates and gives them FACTOR times the resource (scikit-learn's default).
FACTOR = 3


def epochs_key(pipeline):
    """The pipeline key of the net's ``max_epochs`` (``model__max_epochs``), or None for a model without epochs.

    ``pipeline`` is a :func:`~pipelines.build.make_pipeline` pipeline or a bare estimator (key ``max_epochs``).

    A torch net declares ``max_epochs`` among its run settings (``run_params``); nothing is guessed
    from parameter names.
    """
    if not isinstance(pipeline, Pipeline):  # a bare estimator
        model, prefix = pipeline, ""
    else:
        model = model_of(pipeline)
        prefix = "model__estimator__" if pipeline.named_steps["model"] is not model else "model__"
    if "max_epochs" not in getattr(type(model), "run_params", ()):
        return None
    return prefix + "max_epochs"


def resource_of(pipeline, space):
    """``(resource, max_resources)`` of successive halving: the net's epochs, or training clips ("n_samples").

    Raises
    ------
    ParameterError
        When the space searches ``max_epochs`` of a net, the resource itself.
    """
    key = epochs_key(pipeline)
    if key is None:
        return "n_samples", "auto"
    if key in space:
        raise ParameterError(f"search space key {key!r}: with --search halving a net's max_epochs is the resource "
                             "(each iteration trains the survivors for more epochs), not a searched parameter; "
                             "set its maximum with --max-epochs")
    max_epochs = pipeline.get_params()[key]
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ParameterError(f"max_epochs={max_epochs!r}: successive halving on epochs needs a positive integer "
                             "(--max-epochs); with fewer epochs than 3 it is a single round")
    return key, max_epochs


def halving_select(pipeline, space, clips, rows, splits, *, scoring, n_iter=None, seed=0, n_jobs=1, progress=False):
    """Successive halving of ``space`` on ``splits`` of the clips ``rows``; see the module docstring.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
    space : dict
        Lists (``HalvingGridSearchCV``) or distributions too (``HalvingRandomSearchCV``), pipeline keys.
    clips : pandas.DataFrame
        The clip table.
    rows : np.ndarray of int
        Rows of ``clips`` searched on (all of them, or an outer training set).
    splits : list of (train, test, fold)
        Row indices into ``clips`` (within ``rows``), and each split's test fold.
    scoring : str
    n_iter : int, optional
        Candidates drawn at random (``HalvingRandomSearchCV``); default: every candidate of a grid of
        lists, or as many as the resource allows (``"exhaust"``) with distributions.
    seed : int
        Seeds the drawing of candidates and the subsampling of training clips.

    Returns
    -------
    pipelines.search.Selection
        ``table``: one row per (iteration, candidate) with ``iter``, ``n_resources``, ``params``,
        ``mean_<scoring>``, ``std_<scoring>``, ``fold<k>_<scoring>``, ``fit_time`` (summed over the
        splits), ``rank`` (the last iteration first). ``index`` is the selected row.
    """
    resource, max_resources = resource_of(pipeline, space)
    X, y, groups = _clip_arrays(clips)
    position = np.full(len(X), -1)
    position[rows] = np.arange(len(rows))
    cv = [(position[train], position[test]) for train, test, _ in splits]  # indices into X[rows]
    options = dict(factor=FACTOR, resource=resource, max_resources=max_resources, min_resources="exhaust",
                   cv=cv, scoring=make_scorer(METRICS[scoring]), refit=False, error_score="raise",
                   return_train_score=False,
                   random_state=seed, n_jobs=n_jobs, verbose=int(progress))
    if has_distributions(space) or n_iter is not None:
        search = HalvingRandomSearchCV(pipeline, scipy_space(space), n_candidates=n_iter or "exhaust", **options)
    else:
        search = HalvingGridSearchCV(pipeline, space or {}, **options)
    try:
        search.fit(X[rows], y[rows], **_fit_params(pipeline, groups[rows]))
    except ValueError as exc:
        if resource != "n_samples":
            raise
        # scikit-learn draws each round's clips without stratifying: a small round can leave a class
        # with too few training clips for a model that selects or calibrates by inner cross-validation.
        # Start again from a first round large enough for the rarest class (fewer rounds, or one).
        smallest = getattr(search, "min_resources_", "?")
        floor = _min_clips(y[rows], cv)
        if not isinstance(smallest, int) or floor <= smallest:
            raise ParameterError(f"successive halving on clips: a round of {smallest} of {len(rows)} clips was "
                                 f"too small for this model ({exc}); search fewer candidates (--n-iter), or use "
                                 "--search random or optuna") from exc
        search.set_params(min_resources=floor)
        search.fit(X[rows], y[rows], **_fit_params(pipeline, groups[rows]))
    return _selection(search, splits, scoring, resource)


#: On clips, a first round that failed is replaced by one expected to hold this many training clips of
#: the rarest class in every split (enough for a model's own inner cross-validation).
MIN_CLIPS_PER_CLASS = 6


def _min_clips(y, cv):
    """The smallest number of clips whose random draw leaves, in expectation, ``MIN_CLIPS_PER_CLASS``
    training clips of the rarest class in every split of ``cv`` (at most all of them)."""
    rarest = min(np.unique(y[train], return_counts=True)[1].min() for train, _ in cv)
    return int(min(len(y), np.ceil(MIN_CLIPS_PER_CLASS * len(y) / rarest)))


def _selection(search, splits, scoring, resource):
    results = search.cv_results_
    folds = [fold for _, _, fold in splits]
    table_rows, inner_rows = [], []
    for i, params in enumerate(results["params"]):
        params = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
        if resource != "n_samples":  # what these fits used: the row's epochs
            params = {**params, resource: int(results["n_resources"][i])}
        scores = [float(results[f"split{j}_test_score"][i]) for j in range(len(splits))]
        row = {"iter": int(results["iter"][i]), "n_resources": int(results["n_resources"][i]), "params": params,
               f"mean_{scoring}": float(results["mean_test_score"][i]),
               f"std_{scoring}": float(results["std_test_score"][i]),
               **{f"fold{fold}_{scoring}": score for fold, score in zip(folds, scores)},
               "fit_time": float(results["mean_fit_time"][i]) * len(splits)}
        table_rows.append(row)
        inner_rows += [{"candidate": i, "iter": row["iter"], "n_resources": row["n_resources"], "fold": fold,
                        scoring: score} for fold, score in zip(folds, scores)]
    table = pd.DataFrame(table_rows)
    last = table["iter"] == table["iter"].max()  # scikit-learn selects among the last iteration's candidates
    table = rank_rows(table, scoring, first=last)
    best = int(search.best_index_)
    best_params = {k: v.item() if isinstance(v, np.generic) else v for k, v in search.best_params_.items()}
    return Selection(params=best_params, index=best, score=float(search.best_score_), table=table,
                     inner=pd.DataFrame(inner_rows))
