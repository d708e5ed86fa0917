"""Tracking (issue 14): ``--track mlflow`` read back with MLflow's own client; ``--track tensorboard``
event files read back with TensorBoard's reader."""

import json

import pytest

from cli import main

SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # MLflow's SQLAlchemy use
def test_mlflow_store_holds_the_runs_metrics_and_artifacts(capsys, urbansound_root, tmp_path, one_torch_thread,
                                                            monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps its artifacts in ./mlruns

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = tmp_path / "run"
    run_cli(capsys, "grid", "--estimator", "cnn", "--dataset", "urbansound8k", "--root", urbansound_root,
            "--cache", tmp_path / "cache", *SMALL, "--param-grid", "lr=0.01,0.1", "--search", "flat",
            "--max-epochs", "3", "--folds", "1,2", "--track", "mlflow", "--track-uri", uri, "--output", folder)
    record = json.loads((folder / "run.json").read_text())

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("audio-featurestore")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2  # one child per candidate
    assert parent.info.status == "FINISHED" and parent.info.run_name == "run"

    assert parent.data.params["config.estimator"] == "cnn"
    assert parent.data.params["config.settings.audio.sr"] == "8000"
    assert parent.data.metrics["mean_accuracy"] == pytest.approx(record["mean_accuracy"], abs=1e-12)
    folds = client.get_metric_history(parent.info.run_id, "fold_accuracy")
    assert sorted(m.step for m in folds) == [1, 2]
    assert sorted(m.value for m in folds) == pytest.approx(
        sorted(pd_read(folder / "folds.csv")["accuracy"]), abs=1e-12)
    curve = client.get_metric_history(parent.info.run_id, "fold1_train_loss")
    assert [m.step for m in sorted(curve, key=lambda m: m.step)] == list(range(1, len(curve) + 1))
    assert 1 <= len(curve) <= 3  # one point per epoch (early stopping may end sooner)

    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"model.joblib", "confusion_matrix.png", "learning_curves.png", "config.toml", "run.json"} <= artifacts
    assert (tmp_path / "mlruns").is_dir()

    lrs = sorted(float(c.data.params["model__lr"]) for c in children)
    assert lrs == [0.01, 0.1]
    for child in children:
        history = client.get_metric_history(child.info.run_id, "fold_accuracy")
        assert sorted(m.step for m in history) == [1, 2]
        assert 0 <= child.data.metrics["mean_accuracy"] <= 1
    best = max(children, key=lambda c: c.data.metrics["mean_accuracy"])
    assert best.data.metrics["mean_accuracy"] == pytest.approx(record["mean_accuracy"], abs=1e-12)


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


def test_tensorboard_event_files_hold_each_fits_curves(capsys, urbansound_root, tmp_path, one_torch_thread):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "runs"
    run_cli(capsys, "cv", "--estimator", "cnn", "--dataset", "urbansound8k", "--root", urbansound_root,
            "--cache", tmp_path / "cache", *SMALL, "--max-epochs", "2", "--folds", "1", "--params", "patience=5",
            "--params", "valid_fraction=0.2",
            "--refit", "--track", "tensorboard", "--track-uri", logdir, "--output", tmp_path / "run")
    fits = sorted(p.parent for p in logdir.rglob("events.out.tfevents.*"))
    assert len(fits) == 2  # the fold's fit and the refit on all clips
    for fit in fits:
        events = EventAccumulator(str(fit))
        events.Reload()
        assert [e.step for e in events.Scalars("Loss/train_loss")] == [1, 2]
        assert "Loss/valid_loss" in events.Tags()["scalars"]


def test_an_unknown_tracker_or_a_lone_uri_is_refused(capsys, tmp_path):
    code = main(["cv", "--estimator", "svm", "--track-uri", str(tmp_path / "x"), "--no-progress"])
    assert code == 2 and "--track-uri needs --track" in capsys.readouterr().err
    from pipelines.tracking import Tracking, TrackingError

    with pytest.raises(TrackingError, match="--track 'wandb' must be one of mlflow, tensorboard"):
        Tracking("wandb")
