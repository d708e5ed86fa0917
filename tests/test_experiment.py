"""Experiment as a library: silent unless given a reporter; a run's plan is checked before any work."""

import json

import pytest

import estimators
from featurestore import load_dataset
from featurestore.errors import ParameterError
from pipelines.experiment import Experiment
from pipelines.plan import RunPlan, plan_run
from pipelines.reporter import Reporter

SMALL_AUDIO = {"audio": {"sr": 8000, "duration": 0.5}}


class Recorder(Reporter):
    """Records the name and arguments of every event."""

    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name in Reporter.__dict__ and not name.startswith("_"):
            return lambda *args, **kwargs: self.events.append((name, args))
        return super().__getattribute__(name)


@pytest.fixture
def experiment(urbansound_root, store, tmp_path):
    def make(**kwargs):
        dataset = load_dataset("urbansound8k", urbansound_root)
        return Experiment(dataset, store, settings=SMALL_AUDIO, output=str(tmp_path / "run"), **kwargs)

    return make


def test_cv_without_a_reporter_prints_nothing(experiment, capsys):
    folder = experiment().cv("softmax")
    assert capsys.readouterr() == ("", "")
    assert json.loads((folder / "run.json").read_text())["n_clips"] == 36  # it did run


def test_a_reporter_hears_each_step_once_in_order(experiment, tmp_path, capsys):
    recorder = Recorder()
    folder = experiment(reporter=recorder).cv("softmax", params={"C": 0.5}, refit=True)
    names = [name for name, _ in recorder.events]
    assert names == ["audio", "table", "refit_started", "refit_done", "saving", "saved", "done"]
    events = dict(recorder.events)
    assert events["audio"] == ("urbansound8k", {"sr": 8000, "duration": 0.5, "pad_mode": "zero", "normalize": False},
                               {"sr": 8000, "duration": 0.5})
    assert events["refit_started"] == ("softmax", 36)
    assert events["saving"] == (folder / "model.joblib",)
    assert events["saved"][1] == (folder / "model.joblib").stat().st_size
    run = json.loads((folder / "run.json").read_text())
    assert events["done"] == (folder, f"accuracy {run['mean_accuracy']:.3f} +/- {run['std_accuracy']:.3f}")
    assert capsys.readouterr() == ("", "")  # a reporter that prints nothing: nothing printed


@pytest.mark.parametrize("kwargs, message", [
    ({"search": "best"}, "search='best' must be 'nested' or 'flat'"),
    ({"search": "flat", "inner_splits": 2}, "inner_splits=2 applies to a nested search only"),
    ({"kind": "mel", "settings": {"mel": {"n_melz": 64}}}, "n_melz"),
])
def test_a_plan_is_checked_when_made(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        plan_run("softmax", **kwargs)


def test_a_plan_builds_its_pipeline_and_candidates_in_pipeline_names():
    plan = plan_run("softmax", grid={"C": [0.1, 1.0]}, segments=4)
    assert isinstance(plan, RunPlan) and plan.kind == estimators.get_spec("softmax").feature
    pipeline, grid = plan.build()
    assert grid == {"model__estimator__C": [0.1, 1.0]}  # inside the SegmentClassifier
    assert pipeline.get_params()["model__window"] == 4
    net, grid = plan_run("cnn", grid={"lr": [0.1]}).build({"random_state": 3, "max_epochs": 2})
    params = net.get_params()
    assert grid == {"model__lr": [0.1]} and (params["model__random_state"], params["model__max_epochs"]) == (3, 2)
    with pytest.raises(ParameterError, match="'Cc'"):
        plan_run("softmax", grid={"Cc": [1]}).build()


def test_a_plan_is_frozen():
    plan = plan_run("softmax")
    with pytest.raises(AttributeError):
        plan.kind = "mel"
