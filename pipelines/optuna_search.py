"""Optuna studies on a data set's folds: TPE, pruning of torch nets per epoch, SQLite storage and resuming.

Each trial suggests one candidate (lists as ``suggest_categorical``, distributions as
``suggest_float``/``suggest_int``; see :mod:`pipelines.spaces`), cross-validates it on the given
splits one fit after the other, and returns its mean ``scoring`` (maximised). Its per-fold scores
and fit time are kept as the trial's user attributes, so a stored study's table holds every trial,
also those of an earlier run.

Pruning (torch nets only: models that declare the run setting ``max_epochs``): the net gets a
:class:`PruningCallback`, a skorch callback that reports the validation accuracy of every epoch
(``valid_acc``, on the validation rows skorch holds out of the training part, never the test fold)
to ``trial.report`` and raises ``optuna.TrialPruned`` when ``trial.should_prune()``. Its step
counts the epochs of the trial so far, across its splits in order, so that step ``s`` of two trials
is the same epoch of the same split (with equal ``max_epochs``). Optuna's ``MedianPruner``
decides, after :data:`N_STARTUP_TRIALS` complete trials: a trial whose validation accuracy is below
the median of earlier trials at the same step is stopped.

A study stored in SQLite (``storage``) is resumed by running the same search again on the file:
Optuna loads the study of the same name and adds ``n_trials`` trials. The study records the scoring,
the space and the test folds of its splits; a run that differs in any is refused, since its trials
would not be comparable.
"""

import json
import logging
import time
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from skorch.callbacks import Callback

from featurestore.errors import ParameterError
from pipelines.evaluate import METRICS, _clip_arrays, fit_and_score
from pipelines.halving import epochs_key
from pipelines.search import DEFAULT_TRIALS, Selection, fold_columns, rank_rows
from pipelines.spaces import Distribution

#: Complete trials before the median pruner prunes (Optuna's default).
N_STARTUP_TRIALS = 5
#: The history column reported at each epoch.
MONITOR = "valid_acc"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ParameterError("--search optuna needs Optuna: pip install 'audio-featurestore[optuna]' "
                             "(or pip install optuna)") from None
    return optuna


class PruningCallback(Callback):
    """Report a net's per-epoch validation accuracy to an Optuna trial; stop the trial when it should be pruned.

    One instance serves all fits of one trial: its step counts their epochs, in order.

    Parameters
    ----------
    trial : optuna.trial.Trial
    monitor : str
        The history column reported (default ``"valid_acc"``, higher is better).
    """

    def __init__(self, trial, monitor=MONITOR):
        self.trial = trial
        self.monitor = monitor

    def initialize(self):
        # called at the start of each fit: the step goes on across the trial's fits
        if not hasattr(self, "step_"):
            self.step_ = 0
            self.warned_ = False
        return self

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        if self.monitor not in row:
            if not self.warned_:
                warnings.warn(f"{type(net).__name__} has no {self.monitor!r} in its history (no validation "
                              "split: valid_fraction=None?); its trials are not pruned", UserWarning)
                self.warned_ = True
            return
        self.trial.report(float(row[self.monitor]), self.step_)
        self.step_ += 1
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"{self.monitor}={row[self.monitor]:.3f} at step {self.step_ - 1}")


def _suggest(trial, space):
    """The trial's candidate: lists as categorical choices (JSON text for values that are not scalars)."""
    params = {}
    for key, value in space.items():
        if isinstance(value, Distribution):
            params[key] = value.suggest(trial, key)
        elif all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
            params[key] = trial.suggest_categorical(key, value)
        else:  # lists or tuples of values: Optuna's choices must be scalars
            params[key] = json.loads(trial.suggest_categorical(key, [json.dumps(v) for v in value]))
    return params


def _decode(space, params):
    """A stored trial's parameters as set on the pipeline (JSON-encoded choices decoded)."""
    out = {}
    for key, value in params.items():
        choices = space.get(key)
        encoded = isinstance(choices, list) and isinstance(value, str) and value not in choices
        out[key] = json.loads(value) if encoded else value
    return out


def _space_record(space):
    return json.loads(json.dumps({k: v.to_dict() if isinstance(v, Distribution) else v for k, v in space.items()},
                                 default=str))


@contextmanager
def _quiet(optuna, quiet):
    """Optuna's log line per trial off (a progress bar or silence instead), restored afterwards."""
    level = optuna.logging.get_verbosity()
    if quiet:
        optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _check_resumed(study, record, storage):
    for key, value in record.items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise ParameterError(f"study {study.study_name!r} in {storage} was run with {key}={stored!r}; this run "
                                 f"has {key}={value!r}: its trials are not comparable (start a new study)")


def optuna_select(pipeline, space, clips, splits, *, scoring, n_trials=None, timeout=None, seed=0, storage=None,
                  study_name="all-folds", progress=False):
    """Run (or resume) the Optuna study ``study_name`` of ``space`` on ``splits``; see the module docstring.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
    space : dict
        Lists and :class:`~pipelines.spaces.Distribution`\\ s, in pipeline keys.
    clips : pandas.DataFrame
    splits : list of (train, test, fold)
        Row indices into ``clips``.
    scoring : str
    n_trials : int, optional
        Trials to add (default 20; unlimited with a ``timeout``).
    timeout : float, optional
        Seconds: no trial starts after them.
    seed : int
        Seed of the TPE sampler.
    storage : str or pathlib.Path, optional
        SQLite file (created if absent; the study is resumed if it holds it). None: in memory.
    study_name : str

    Returns
    -------
    pipelines.search.Selection
        ``table``: one row per trial (all of the study's, resumed ones included) with ``trial``,
        ``state``, ``params``, ``mean_<metric>``, ``std_<metric>``, ``fold<k>_<metric>`` (complete
        folds), ``fit_time``, ``rank``; a pruned trial has no mean. ``index`` is the best trial's number.
    """
    optuna = _optuna()
    if n_trials is None and timeout is None:
        n_trials = DEFAULT_TRIALS
    X, y, groups = _clip_arrays(clips)
    callbacks_key = None
    if epochs_key(pipeline) is not None:
        callbacks_key = epochs_key(pipeline).replace("max_epochs", "callbacks")
    user_callbacks = list(pipeline.get_params()[callbacks_key] or []) if callbacks_key else []

    def objective(trial):
        params = _suggest(trial, space)
        fit_params = dict(params)
        if callbacks_key:
            fit_params[callbacks_key] = [*user_callbacks, ("optuna_pruning", PruningCallback(trial))]
        rows, start = [], time.perf_counter()
        try:
            for train, test, fold in splits:
                rows.append(fit_and_score(pipeline, fit_params, X, y, groups, train, test, fold)["row"])
        finally:  # a pruned trial keeps the folds it completed
            trial.set_user_attr("folds", [{k: row[k] for k in ("fold", *METRICS)} for row in rows])
            trial.set_user_attr("fit_time", time.perf_counter() - start)
        return float(np.mean([row[scoring] for row in rows]))

    url = None if storage is None else f"sqlite:///{storage}"
    with _quiet(optuna, quiet=True):
        study = optuna.create_study(study_name=study_name, storage=url, load_if_exists=True, direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=N_STARTUP_TRIALS))
        _check_resumed(study, {"scoring": scoring, "space": _space_record(space),
                               "folds": [int(fold) for _, _, fold in splits]}, storage)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, show_progress_bar=progress)
    return _selection(study, space, scoring, optuna)


def _selection(study, space, scoring, optuna):
    rows, inner = [], []
    for trial in study.trials:
        folds = trial.user_attrs.get("folds", [])
        complete = trial.state == optuna.trial.TrialState.COMPLETE
        row = {"trial": trial.number, "state": trial.state.name.lower(), "params": _decode(space, trial.params)}
        for metric in METRICS:
            values = [f[metric] for f in folds]
            row[f"mean_{metric}"] = float(np.mean(values)) if complete and values else np.nan
            row[f"std_{metric}"] = float(np.std(values)) if complete and values else np.nan
        row.update(fold_columns(folds))
        row["fit_time"] = float(trial.user_attrs.get("fit_time", np.nan))
        rows.append(row)
        inner += [{"candidate": trial.number, "state": row["state"], **f} for f in folds]
    table = rank_rows(pd.DataFrame(rows), scoring)
    try:
        best = study.best_trial
    except ValueError:  # no trial completed
        raise ParameterError(f"study {study.study_name!r}: no trial completed ({len(study.trials)} pruned or "
                             "failed, or the timeout came first): nothing to select") from None
    return Selection(params=_decode(space, best.params), index=best.number, score=float(best.value), table=table,
                     inner=pd.DataFrame(inner))
