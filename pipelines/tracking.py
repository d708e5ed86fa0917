"""Experiment tracking: a run logged to MLflow (``--track mlflow``) or to TensorBoard (``--track tensorboard``).

**MLflow.** Once a run's results folder is written, :meth:`Tracking.log` logs it through MLflow's own
client (:class:`mlflow.tracking.MlflowClient`) to the tracking store at ``uri``: a SQLite file by default
(``sqlite:///mlflow.db`` in the working folder, with artifacts under ``mlruns/``; MLflow 3 keeps its
``./mlruns`` file store in maintenance mode), ``file:./mlruns`` (with ``MLFLOW_ALLOW_FILE_STORE=true``),
or any tracking server (``http://HOST:5000``). One parent run per command holds the configuration as
params, the reported scores (mean and standard deviation, per-fold scores as the steps of
``fold_<metric>``), the per-epoch curves of nets (``fold<k>_<key>`` by epoch), and every file of the
results folder as artifacts: figures, tables, ``config.toml``, ``run.json`` and ``model.joblib``.
Under it, one child run per candidate of the search holds that candidate's parameters, its per-fold
and mean scores, and its nets' curves where the run kept them.

The curves come back from the fits with their folds' results: each fit runs in a joblib worker, where
:func:`pipelines.evaluate.fit_and_score` reads the fitted net's ``history_`` and returns it with the
fold's scores (:attr:`~pipelines.evaluate.CVResult.histories`); nothing is logged from a worker. The
run keeps the curves of what it reports (``cv``'s candidate, a flat grid's best) and, after a nested
search, of every candidate; the other candidates of a flat grid are logged without curves.

**TensorBoard.** :meth:`Tracking.prepare` gives every torch net of a pipeline skorch's
:class:`skorch.callbacks.TensorBoard` callback (as
:class:`~pipelines.fit_tensorboard.FitTensorBoard`, which opens its own
``SummaryWriter`` when a fit starts, in the worker that fits; :mod:`pipelines.fit_tensorboard`): each fit writes its event files to a
new folder under ``uri`` (default ``runs/``, TensorBoard's): ``tensorboard --logdir runs``.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

#: Trackers and the default ``uri`` of each.
TRACKERS = {"mlflow": "sqlite:///mlflow.db", "tensorboard": "runs"}

#: The extra that installs each tracker.
EXTRAS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}

#: MLflow's limits per ``log_batch`` call and on a param's value.
MAX_PARAMS, MAX_METRICS, MAX_PARAM_LENGTH = 100, 1000, 6000


class TrackingError(Exception):
    """A tracker that cannot be used: unknown, or its package is not installed."""


@dataclass(frozen=True)
class Tracking:
    """Where a run is logged besides its results folder.

    Parameters
    ----------
    kind : {"mlflow", "tensorboard"}
    uri : str, optional
        MLflow: the tracking URI (default ``sqlite:///mlflow.db``); TensorBoard: the folder of the
        event files (default ``runs``).
    experiment : str
        The MLflow experiment the runs go to (created when absent).
    """

    kind: str
    uri: str = None
    experiment: str = "audio-featurestore"

    def __post_init__(self):
        if self.kind not in TRACKERS:
            raise TrackingError(f"--track {self.kind!r} must be one of {', '.join(TRACKERS)}")
        module = "mlflow" if self.kind == "mlflow" else "tensorboard"
        try:
            __import__(module)
        except ImportError:
            raise TrackingError(f"--track {self.kind} needs the package {module}: "
                                f"pip install 'audio-featurestore[{EXTRAS[self.kind]}]'") from None

    @property
    def target(self):
        """``uri``, or the tracker's default."""
        return self.uri or TRACKERS[self.kind]

    def prepare(self, pipeline):
        """TensorBoard: add a :class:`FitTensorBoard` callback to the torch net of ``pipeline`` (a
        :func:`~pipelines.build.make_pipeline` pipeline); nothing for MLflow or another model."""
        if self.kind != "tensorboard":
            return pipeline
        from estimators._torch import TorchClassifier
        from pipelines.build import model_of
        from pipelines.fit_tensorboard import FitTensorBoard

        net = model_of(pipeline)
        if isinstance(net, TorchClassifier):
            logdir = Path(self.target) / f"{time.strftime('%Y%m%d-%H%M%S')}-{type(net).__name__}"
            callbacks = [c for c in (net.callbacks or []) if not (isinstance(c, tuple) and c[0] == "tensorboard")]
            net.set_params(callbacks=[*callbacks, ("tensorboard", FitTensorBoard(str(logdir)))])
        return pipeline

    def log(self, folder, run, result, cv_results, *, candidates=None):
        """MLflow: log the written run (see the module docstring); returns the parent run's id.

        Parameters
        ----------
        folder : path
            The results folder; its files become the parent run's artifacts.
        run : dict
            Its ``run.json``.
        result : pipelines.evaluate.CVResult
            The reported result.
        cv_results : pandas.DataFrame or None
            One row per candidate (None for an ensemble: one candidate, ``result``).
        candidates : list of CVResult, optional
            Every candidate's result in the order of ``cv_results`` (a nested search keeps them).
        """
        if self.kind != "mlflow":
            return None
        return log_mlflow(self.target, self.experiment, Path(folder), run, result, cv_results, candidates)


# --------------------------------------------------------------------------- MLflow
def log_mlflow(uri, experiment, folder, run, result, cv_results, candidates=None):
    """Log a results folder to the MLflow tracking store at ``uri``: one parent run, one child per candidate.

    Returns
    -------
    str
        The parent run's id.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    tags = {"results_folder": str(folder.resolve()), "command_line": run.get("command_line") or "",
            "estimator": run["estimator"], "dataset": run["dataset"]}
    if run.get("git"):
        tags["mlflow.source.git.commit"] = run["git"]["commit"]
    parent = client.create_run(experiment_id, run_name=folder.name, tags=tags).info.run_id
    try:
        params = {f"config.{k}": v for k, v in _flatten(run.get("config") or {}).items()}
        params.update({f"params.{k}": v for k, v in result.params.items()})
        metrics = [(key, run[key], 0) for key in run if key.startswith(("mean_", "std_"))]
        _log(client, parent, params, metrics + _fold_metrics(result) + _curves(result.histories))
        client.log_artifacts(parent, str(folder))
        for index, (params, metrics) in enumerate(_candidate_runs(result, cv_results, candidates)):
            child = client.create_run(experiment_id, run_name=f"{folder.name} candidate {index}",
                                      tags={"mlflow.parentRunId": parent, "candidate": str(index)}).info.run_id
            _log(client, child, params, metrics)
            client.set_terminated(child)
    except BaseException:
        client.set_terminated(parent, status="FAILED")
        raise
    client.set_terminated(parent)
    return parent


def _candidate_runs(result, cv_results, candidates):
    """``(params, metrics)`` of each candidate; metrics as ``(key, value, step)``."""
    if cv_results is None:
        return [(dict(result.params), _summary(result) + _fold_metrics(result) + _curves(result.histories))]
    out = []
    for index, row in enumerate(cv_results.to_dict("records")):
        known = candidates[index] if candidates is not None else None
        if known is None and row["params"] == result.params and "candidate" not in result.folds:
            known = result  # the reported candidate of a cv or flat grid: its curves came back
        metrics = [(key, value, 0) for key, value in row.items()
                   if key.startswith(("mean_", "std_")) or key in ("rank", "fit_time")]
        if known is not None:
            metrics += _fold_metrics(known) + _curves(known.histories)
        else:
            metrics += [(f"fold_{key.split('_', 1)[1]}", value, int(key[4:].split("_", 1)[0]))
                        for key, value in row.items() if key.startswith("fold") and key[4:5].isdigit()]
        out.append((dict(row["params"]), metrics))
    return out


def _summary(result):
    return [(key, value, 0) for key, value in result.summary().items()]


def _fold_metrics(result):
    """Per-fold scores as ``fold_<metric>`` at step ``fold``."""
    skip = {"fold", "candidate", "params", "n_train", "n_test", "n_train_copies"}
    return [(f"fold_{key}", value, int(row["fold"])) for row in result.folds.to_dict("records")
            for key, value in row.items() if key not in skip and isinstance(value, (int, float))]


def _curves(histories):
    """Per-epoch curves of nets: ``fold<k>_<key>`` at step ``epoch`` (folds numbered from 1 in order)."""
    return [(f"fold{k}_{key}", value, int(row["epoch"])) for k, history in enumerate(histories, 1)
            for row in history for key, value in row.items()
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)]


def _log(client, run_id, params, metrics):
    """``log_batch`` in chunks within MLflow's limits; non-finite metrics are left out."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(str(k), _param_value(v)) for k, v in params.items()]
    metrics = [Metric(key, float(value), now, int(step)) for key, value, step in metrics
               if value is not None and float(value) == float(value) and abs(float(value)) != float("inf")]
    for i in range(0, len(params), MAX_PARAMS):
        client.log_batch(run_id, params=params[i:i + MAX_PARAMS])
    for i in range(0, len(metrics), MAX_METRICS):
        client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS])


def _param_value(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_LENGTH]


def _flatten(table, prefix=""):
    """``{"settings": {"mel": {"n_mels": 64}}}`` -> ``{"settings.mel.n_mels": 64}``."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
