"""Optuna search: pruning of torch nets through a skorch callback, SQLite studies resumed, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from cli import main  # noqa: E402
from featurestore.errors import ParameterError  # noqa: E402
from pipelines.optuna_search import N_STARTUP_TRIALS, optuna_select  # noqa: E402
from pipelines.evaluate import _splits  # noqa: E402
from pipelines.search import run_search  # noqa: E402
from pipelines.spaces import parse_space  # noqa: E402
from pipelines.splits import ClipSplitter  # noqa: E402
from test_nested import NoiseSpy, clip_table  # noqa: E402


def blob_clips(per_class=20, seed=0):
    """Clips of three well separated 2-D Gaussian blobs, in three folds; ``X`` of a clip is its point."""
    rng = np.random.default_rng(seed)
    centres = {"a": (0.0, 0.0), "b": (4.0, 0.0), "c": (0.0, 4.0)}
    rows, points = [], {}
    for label, centre in centres.items():
        for i in range(per_class):
            clip_id = f"{label}{i:02d}"
            points[clip_id] = rng.normal(centre, 0.5).astype(np.float32)
            rows.append({"clip_id": clip_id, "label": label, "fold": i % 3 + 1, "group": clip_id})
    return pd.DataFrame(rows), points


def lookup(X, points):
    return np.stack([points[clip_id] for clip_id in X])


def blob_net(points, max_epochs=3):
    import torch

    from estimators._torch import TorchClassifier

    class Linear(torch.nn.Module):
        def __init__(self, input_shape, n_classes):
            super().__init__()
            self.fc = torch.nn.Linear(input_shape[-1], n_classes)

        def forward(self, x):
            return self.fc(x)

    net = TorchClassifier(Linear, max_epochs=max_epochs, batch_size=8, lr=0.05, random_state=0, n_threads=1)
    return Pipeline([("features", FunctionTransformer(lookup, kw_args={"points": points})), ("model", net)])


def test_a_diverging_trial_is_pruned_on_its_epoch_scores(tmp_path, one_torch_thread):
    clips, points = blob_clips(40)
    splits = _splits(ClipSplitter(clips), clips["clip_id"].to_numpy())
    storage = tmp_path / "study.db"
    study = optuna.create_study(study_name="all-folds", storage=f"sqlite:///{storage}", direction="maximize")
    for _ in range(N_STARTUP_TRIALS):
        study.enqueue_trial({"model__lr": 0.05})
    study.enqueue_trial({"model__lr": 1e-7})  # hopeless: its nets do not learn in the epochs given
    space = parse_space({"model__lr": {"dist": "loguniform", "low": 1e-8, "high": 1.0}})
    selection = optuna_select(blob_net(points), space, clips, splits, scoring="accuracy",
                              n_trials=N_STARTUP_TRIALS + 1, storage=storage)
    trials = optuna.load_study(study_name="all-folds", storage=f"sqlite:///{storage}").trials
    states = [t.state for t in trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * N_STARTUP_TRIALS + [optuna.trial.TrialState.PRUNED]
    good, bad = trials[0], trials[-1]
    # the good trials report every epoch of every fold (3 folds x 3 epochs); the bad one stops at once
    assert sorted(good.intermediate_values) == list(range(9)) and good.intermediate_values[8] == 1.0
    assert list(bad.intermediate_values) == [0] and bad.intermediate_values[0] < good.intermediate_values[0]
    assert bad.user_attrs["folds"] == []  # pruned inside its first fit
    table = selection.table
    assert list(table["state"]) == ["complete"] * N_STARTUP_TRIALS + ["pruned"]
    assert np.isnan(table["mean_accuracy"].iloc[-1]) and table["rank"].iloc[-1] == N_STARTUP_TRIALS + 1
    assert selection.params == {"model__lr": 0.05} and selection.score > 0.9


def _grid(urbansound_root, tmp_path, *args):
    return ["grid", "--estimator", "softmax", "--dataset", "urbansound8k", "--root", str(urbansound_root),
            "--cache", str(tmp_path / "cache"), "--set", "audio.sr=8000", "--set", "audio.duration=0.5",
            "--no-progress", "--search", "optuna", "--param-grid",
            '{"C": {"dist": "loguniform", "low": 0.001, "high": 10}}', *args]


def _counts(path):
    storage = f"sqlite:///{path}"
    return {s.study_name: len(optuna.load_study(study_name=s.study_name, storage=storage).trials)
            for s in optuna.get_all_study_summaries(storage)}


def test_cli_optuna_stores_its_studies_and_resumes_them(capsys, urbansound_root, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(_grid(urbansound_root, tmp_path, "--trials", "3", "--output", str(first))) == 0
    out = capsys.readouterr().out
    assert "optuna, nested accuracy" in out
    studies = {"all-folds", "outer-fold-1", "outer-fold-2", "outer-fold-3"}
    assert _counts(first / "study.db") == dict.fromkeys(studies, 3)
    run = json.loads((first / "run.json").read_text())
    assert run["search"] == "optuna" and run["nested"] is True and len(run["selected_params"]) == 3
    table = pd.read_csv(first / "cv_results.csv")
    assert list(table["trial"]) == [0, 1, 2] and set(table["state"]) == {"complete"}
    assert "Optuna search, nested" in (first / "summary.md").read_text()

    assert main(_grid(urbansound_root, tmp_path, "--trials", "2", "--resume-study", str(first / "study.db"),
                      "--output", str(second))) == 0
    capsys.readouterr()
    assert _counts(second / "study.db") == dict.fromkeys(studies, 5)  # the trial count grows
    assert _counts(first / "study.db") == dict.fromkeys(studies, 3)  # the earlier run's folder is left as written
    table = pd.read_csv(second / "cv_results.csv")
    assert list(table["trial"]) == [0, 1, 2, 3, 4]
    # the first three trials are the stored ones: same parameters, same scores
    old = pd.read_csv(first / "cv_results.csv")
    pd.testing.assert_frame_equal(table.iloc[:3][["params", "mean_accuracy"]], old[["params", "mean_accuracy"]])

    code = main(_grid(urbansound_root, tmp_path, "--trials", "1", "--resume-study", str(first / "study.db"),
                      "--scoring", "f1_macro", "--output", str(tmp_path / "third")))
    assert code == 2 and "was run with scoring='accuracy'; this run has scoring='f1_macro'" in capsys.readouterr().err


def test_optuna_is_reproducible_from_the_seed_and_honours_n_trials():
    clips = clip_table()
    space = {"seed": {"dist": "randint", "low": 0, "high": 1000}}
    runs = [run_search(NoiseSpy(), space, clips, method="optuna", selection="flat", n_iter=6, seed=s, progress=False)
            for s in (3, 3, 4)]
    params = [list(r.cv_results["params"]) for r in runs]
    assert params[0] == params[1] != params[2] and len(params[0]) == 6
    best = runs[0].cv_results.sort_values("rank").iloc[0]
    assert runs[0].best_params == best["params"]
    assert runs[0].result.mean("accuracy") == pytest.approx(best["mean_accuracy"], abs=1e-12)  # flat: optimistic
    with pytest.raises(ParameterError, match="not a list of grids"):
        run_search(NoiseSpy(), [{"seed": [1]}, {"seed": [2]}], clips, method="optuna", progress=False)
