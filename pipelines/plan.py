"""The plan of one run, validated before any feature is extracted or any model trained, and its pipeline.

A :class:`RunPlan` says what a ``grid`` or ``cv`` run does: which estimator, on which feature kind with
which parameters, over which candidates (``cv`` is a search over one), with segment voting or not, and
how the candidates are searched. :func:`plan_run` builds one from what a user typed and checks every
part of it; :meth:`RunPlan.build` makes its pipeline and the candidates in the pipeline's names.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import estimators
from featurestore import features
from featurestore.errors import ParameterError
from featurestore.features import check_int
from pipelines.build import feature_params_for, make_pipeline, pipeline_params
from pipelines.search import check_search, check_space
from pipelines.spaces import parse_space

#: How a grid's candidates are searched (None: ``cv``'s one candidate, no selection).
SEARCHES = ("nested", "flat")


@dataclass(frozen=True)
class RunPlan:
    """One run of one estimator: its features, candidates and search.

    Parameters
    ----------
    estimator : str
        Registry name of the estimator.
    kind : str
        Feature kind.
    feature_params : dict
        Feature parameters (the estimator's defaults for its own kind, then ``--set`` overrides).
    grid : dict
        Candidates as a user writes them, ``{name: [values]}`` (``C``, ``augment_copies``, ``window``), or
        a search space with distributions (:func:`~pipelines.spaces.parse_space`).
    segments : int, optional
        Segment window (frames, or samples for waveforms); None classifies whole clips.
    vote : {"mean", "majority"}
        Segment vote.
    search : {"nested", "flat"} or None
        A grid's selection (nested: inside each outer training set); None for ``cv``'s one candidate.
    inner_splits : int, optional
        At most this many inner splits of a nested search.
    scoring : str
        The metric that selects.
    method : {"grid", "random", "halving", "optuna"}
        How a grid's candidates are generated (:func:`~pipelines.search.run_search`).
    n_iter : int, optional
        Candidates of random search and halving, trials of each Optuna study.
    timeout : float, optional
        Optuna: seconds per study.
    resume_study : str, optional
        Optuna: a ``study.db`` of an earlier run, copied into this run's results folder and continued.
    """

    estimator: str
    kind: str
    feature_params: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    segments: Optional[int] = None
    vote: str = "mean"
    search: Optional[str] = None
    inner_splits: Optional[int] = None
    scoring: str = "accuracy"
    method: str = "grid"
    n_iter: Optional[int] = None
    timeout: Optional[float] = None
    resume_study: Optional[str] = None

    def __post_init__(self):
        if self.search is not None and self.search not in SEARCHES:
            raise ParameterError(f"search={self.search!r} must be 'nested' or 'flat'")
        if check_int("inner_splits", self.inner_splits, allow_none=True) is not None and self.search != "nested":
            raise ParameterError(f"inner_splits={self.inner_splits} applies to a nested search only, "
                                 f"not search={self.search!r}")
        if self.search is None:
            if (self.method, self.n_iter, self.timeout, self.resume_study) != ("grid", None, None, None):
                raise ParameterError("method, n_iter, timeout and resume_study apply to a grid's search only")
            return
        check_search(self.method, self.search, n_iter=self.n_iter, timeout=self.timeout)
        check_space(self.method, self.grid)
        if self.resume_study is not None:
            if self.method != "optuna":
                raise ParameterError(f"resume_study={self.resume_study!r} applies to --search optuna only")
            if not Path(self.resume_study).is_file():
                raise ParameterError(f"resume_study={self.resume_study!r}: no such file (the study.db of an "
                                     "earlier optuna run)")

    def build(self, run_settings=None):
        """The plan's pipeline (no feature set yet) and its candidates in the pipeline's names.

        Parameters
        ----------
        run_settings : dict, optional
            ``random_state``, ``device``, ``precision``, ``max_epochs``, ``n_threads``: each reaches
            the estimators that declare it (:func:`~pipelines.build.make_pipeline`).

        Returns
        -------
        pipeline : ClipPipeline
        grid : dict
            ``{pipeline key: [values]}``, for :func:`~pipelines.evaluate.grid_search`.

        Raises
        ------
        ParameterError
            For a candidate name the estimator does not have (with a close match).
        """
        pipeline = make_pipeline(self.estimator, None, segment_window=self.segments, vote=self.vote,
                                 resample="sampler" in self.grid, run_settings=run_settings)
        return pipeline, user_params(pipeline, self.grid, self.estimator)


def plan_run(name, *, kind=None, settings=None, grid=None, segments=None, vote="mean", search=None,
             inner_splits=None, scoring="accuracy", method="grid", n_iter=None, timeout=None, resume_study=None):
    """A checked :class:`RunPlan` of estimator ``name``: an unknown feature parameter fails here.

    Parameters
    ----------
    name : str
        Registry name of the estimator.
    kind : str, optional
        Feature kind (default: the estimator's).
    settings : dict, optional
        ``{kind: {param: value}}`` overrides from ``--set``; only ``kind``'s are used.
    grid : dict, optional
        Candidates ``{name: [values]}`` (default: one candidate, the estimator's defaults).
    segments, vote, search, inner_splits, scoring, method, n_iter, timeout, resume_study
        As :class:`RunPlan`'s.

    Returns
    -------
    RunPlan
    """
    kind = kind or estimators.get_spec(name).feature
    kind, feature_params = feature_params_for(name, kind, (settings or {}).get(kind))
    features.resolve_params(kind, feature_params)  # unknown feature parameter: fail now
    grid = parse_space(dict(grid or {}))  # a bad distribution fails now, naming its key
    return RunPlan(estimator=name, kind=kind, feature_params=feature_params, grid=grid, segments=segments, vote=vote,
                   search=search, inner_splits=inner_splits, scoring=scoring, method=method, n_iter=n_iter,
                   timeout=timeout, resume_study=resume_study)


def user_params(pipeline, params, name):
    """:func:`~pipelines.build.pipeline_params` of the names a user typed; an unknown one is a
    :class:`ParameterError` (one line, not a traceback)."""
    try:
        return pipeline_params(pipeline, params, name)
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
