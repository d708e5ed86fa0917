"""Search methods beyond the grid: random search, successive halving; search spaces; ``grid --search/--selection``."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import main, parse_param_grid
from featurestore.errors import ParameterError
from pipelines.evaluate import nested_grid_search
from pipelines.halving import halving_select
from pipelines.search import run_search, sample_candidates
from pipelines.spaces import Distribution, parse_space
from test_nested import NoiseSpy, clip_table, read_log


# --------------------------------------------------------------------------- search spaces
def test_a_space_maps_lists_scalars_and_distributions():
    space = parse_space({"C": {"dist": "loguniform", "low": 0.01, "high": 100}, "kernel": ["linear", "rbf"],
                         "n": {"dist": "randint", "low": 2, "high": 5}, "gamma": "scale",
                         "w": {"dist": "uniform", "low": -1, "high": 1}})
    assert space["kernel"] == ["linear", "rbf"] and space["gamma"] == ["scale"]
    assert space["C"].scipy().support() == pytest.approx((0.01, 100))
    assert space["w"].scipy().support() == pytest.approx((-1, 1))
    draws = space["n"].scipy().rvs(size=200, random_state=0)
    assert set(draws) == {2, 3, 4}  # high is exclusive, as in scipy.stats.randint


@pytest.mark.parametrize("space, message", [
    ({"C": {"dist": "lognormal", "low": 1, "high": 2}}, r"key 'C': dist='lognormal' must be one of uniform"),
    ({"C": {"dist": "loguniform", "low": 0, "high": 2}}, r"key 'C': loguniform needs low > 0"),
    ({"C": {"dist": "uniform", "low": 3, "high": 2}}, r"key 'C': uniform needs low < high"),
    ({"lr": {"dist": "uniform", "low": 0.1}}, r"key 'lr': uniform needs the keys dist, low, high; missing: high"),
    ({"lr": {"dist": "uniform", "low": 0.1, "high": 1, "step": 2}}, r"key 'lr': .* not step"),
    ({"n": {"dist": "randint", "low": 1.5, "high": 4}}, r"key 'n': low=1.5 must be an integer"),
    ({"n": {"low": 1, "high": 4}}, r"key 'n': a table needs 'dist'"),
    ({"kernel": []}, r"key 'kernel': an empty list"),
    ({"C": {"dist": "uniform", "low": "a", "high": 1}}, r"key 'C': low='a' must be a number"),
])
def test_a_bad_space_names_its_key(space, message):
    with pytest.raises(ParameterError, match=message):
        parse_space(space)


def test_spaces_are_read_from_json_and_toml_files(tmp_path):
    (tmp_path / "space.toml").write_text('kernel = ["linear", "rbf"]\nC = {dist = "loguniform", low = 0.01, '
                                         'high = 100}\n')
    (tmp_path / "space.json").write_text(json.dumps({"C": {"dist": "loguniform", "low": 0.01, "high": 100},
                                                     "kernel": ["linear", "rbf"]}))
    from_toml = parse_param_grid([str(tmp_path / "space.toml")])
    assert from_toml == parse_param_grid([str(tmp_path / "space.json")])
    assert from_toml == {"kernel": ["linear", "rbf"], "C": {"dist": "loguniform", "low": 0.01, "high": 100}}
    assert parse_space(from_toml)["C"] == Distribution("loguniform", 0.01, 100, key="C")
    (tmp_path / "bad.toml").write_text("C = {dist = \n")
    with pytest.raises(ParameterError, match="bad.toml"):
        parse_param_grid([str(tmp_path / "bad.toml")])


# --------------------------------------------------------------------------- random search
SPACE = {"seed": {"dist": "randint", "low": 0, "high": 1000}}


def test_random_search_is_reproducible_from_the_seed():
    clips = clip_table()
    runs = [run_search(NoiseSpy(), SPACE, clips, method="random", n_iter=5, seed=seed, progress=False)
            for seed in (7, 7, 8)]
    seeds = [[p["seed"] for p in run.cv_results["params"]] for run in runs]
    assert seeds[0] == seeds[1] != seeds[2] and len(set(seeds[0])) == 5
    assert all(0 <= s < 1000 and isinstance(s, int) for s in seeds[0])
    pd.testing.assert_frame_equal(runs[0].cv_results.drop(columns="fit_time"),
                                  runs[1].cv_results.drop(columns="fit_time"))
    assert runs[0].nested.selected_params() == runs[1].nested.selected_params()


def test_random_search_scores_its_candidates_as_the_grid_does():
    """The sampled candidates, given to the grid search as a grid, give the same tables: one code path."""
    clips = clip_table()
    run = run_search(NoiseSpy(), SPACE, clips, method="random", n_iter=4, seed=1, progress=False)
    candidates = sample_candidates(parse_space(SPACE), 4, seed=1)
    assert list(run.cv_results["params"]) == candidates
    grid = nested_grid_search(NoiseSpy(), [{k: [v]} for c in candidates for k, v in c.items()], clips, refit=False,
                              progress=False)
    pd.testing.assert_frame_equal(run.cv_results.drop(columns="fit_time"), grid.cv_results.drop(columns="fit_time"))
    assert run.nested.selected_params() == grid.selected_params()
    # lists only: drawn without replacement, never more than the grid holds
    assert sorted(c["seed"] for c in sample_candidates(parse_space({"seed": [1, 2, 3]}), 10, seed=0)) == [1, 2, 3]


def test_grid_through_run_search_is_the_grid_search():
    clips = clip_table()
    run = run_search(NoiseSpy(), {"seed": [0, 1, 2]}, clips, method="grid", progress=False)
    grid = nested_grid_search(NoiseSpy(), {"seed": [0, 1, 2]}, clips, refit=False, progress=False)
    pd.testing.assert_frame_equal(run.cv_results.drop(columns="fit_time"), grid.cv_results.drop(columns="fit_time"))
    pd.testing.assert_frame_equal(run.result.folds.drop(columns="fit_time"), grid.result.folds.drop(columns="fit_time"))
    with pytest.raises(ParameterError, match="key 'seed' is a distribution: --search grid takes lists"):
        run_search(NoiseSpy(), SPACE, clips, method="grid", progress=False)
    with pytest.raises(ParameterError, match="n_iter=3 applies to --search random, halving or optuna"):
        run_search(NoiseSpy(), {"seed": [0]}, clips, method="grid", n_iter=3, progress=False)
    with pytest.raises(ParameterError, match="timeout=5 applies to --search optuna only"):
        run_search(NoiseSpy(), SPACE, clips, method="random", timeout=5, progress=False)


# --------------------------------------------------------------------------- successive halving
class EpochSpy(NoiseSpy):
    """A :class:`NoiseSpy` with epochs, declared as torch nets declare them: ``run_params``."""

    run_params = ("max_epochs",)

    def __init__(self, *, seed=0, tag="", log=None, max_epochs=9):
        super().__init__(seed=seed, tag=tag, log=log)
        self.max_epochs = max_epochs

    def fit(self, X, y):
        self.tag = f"epochs={self.max_epochs}"
        return super().fit(X, y)

    def predict(self, X):
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps({"epochs": self.max_epochs, "n_train": len(self.fit_ids_)}) + "\n")
        return super().predict(X)


def test_halving_spends_epochs_on_a_net_and_clips_on_other_models(tmp_path):
    clips = clip_table()
    X = clips["clip_id"].to_numpy()
    splits = [(np.flatnonzero(clips["fold"] != k), np.flatnonzero(clips["fold"] == k), k) for k in (1, 2, 3, 4)]
    rows = np.arange(len(clips))
    grid = {"seed": list(range(9))}
    log = tmp_path / "epochs.jsonl"
    net = halving_select(EpochSpy(log=str(log)), grid, clips, rows, splits, scoring="accuracy")
    # 9 candidates, factor 3: 1, 3 then 9 epochs (the net's max_epochs); 9, 3, 1 candidates
    assert list(net.table.groupby("iter")["n_resources"].first()) == [1, 3, 9]
    assert list(net.table.groupby("iter").size()) == [9, 3, 1]
    assert [p["max_epochs"] for p in net.table["params"]] == [1] * 9 + [3] * 3 + [9]
    fits = [f for f in read_log(log) if "epochs" in f]  # NoiseSpy logs its own lines too
    assert sorted({f["epochs"] for f in fits}) == [1, 3, 9] and {f["n_train"] for f in fits} == {36}
    assert len(fits) == (9 + 3 + 1) * 4
    last = net.table[net.table["iter"] == 2]
    # the selection is scikit-learn's best_params_: the last iteration's best, with its epochs
    assert net.params == last["params"].iloc[0] == {"seed": net.params["seed"], "max_epochs": 9}
    assert last["rank"].iloc[0] == 1
    assert set(net.table[f"fold1_accuracy"].dropna().index) == set(range(13))

    log = tmp_path / "clips.jsonl"
    classical = halving_select(NoiseSpy(log=str(log)), grid, clips, rows, splits, scoring="accuracy")
    resources = list(classical.table.groupby("iter")["n_resources"].first())
    assert resources[-1] <= len(X) and resources == sorted(resources) and len(resources) > 1
    records = read_log(log)
    # scikit-learn draws the iteration's fraction of both sides of each split, within the data set's folds
    assert sorted({len(r["train"]) for r in records}) == [int(r / len(X) * 36) for r in resources]
    assert sorted({len(r["test"]) for r in records}) == [int(r / len(X) * 12) for r in resources]
    fold_of = dict(zip(clips["clip_id"], clips["fold"]))
    for r in records:
        [test_fold] = {fold_of[c] for c in r["test"]}
        assert test_fold not in {fold_of[c] for c in r["train"]}
    with pytest.raises(ParameterError, match="max_epochs is the resource"):
        halving_select(EpochSpy(), {"max_epochs": [2, 4]}, clips, rows, splits, scoring="accuracy")


# --------------------------------------------------------------------------- leakage guard, every method
@pytest.mark.parametrize("method", ["random", "halving", "optuna"])
def test_no_outer_test_clip_reaches_an_inner_fit(tmp_path, method):
    """Every fit of a nested search is either on the outer splits (the flat search, or an outer fit of a
    selection) or an inner one that misses one outer test fold entirely; the inner ones are as many as
    the inner table's rows, and each outer fold has its own."""
    if method == "optuna":
        pytest.importorskip("optuna")
    clips = clip_table()
    log = tmp_path / "fits.jsonl"
    run = run_search(NoiseSpy(log=str(log)), {"seed": list(range(9))}, clips, method=method, n_iter=4, seed=0,
                     progress=False)
    fold_of = dict(zip(clips["clip_id"], clips["fold"]))
    group_of = dict(zip(clips["clip_id"], clips["group"]))
    inner_by_outer, outer_level = {1: 0, 2: 0, 3: 0, 4: 0}, 0
    for record in read_log(log):
        train, test = set(record["train"]), set(record["test"])
        assert not {group_of[c] for c in train} & {group_of[c] for c in test}
        assert len({fold_of[c] for c in test}) == 1  # one fold is tested (halving: part of it, early on)
        assert len(test) == 12 or method == "halving"
        folds = {fold_of[c] for c in train | test}
        if folds == {1, 2, 3, 4}:
            outer_level += 1
        else:
            [missing] = {1, 2, 3, 4} - folds
            inner_by_outer[missing] += 1
    inner = run.nested.inner
    assert inner_by_outer == {k: int((inner["outer_fold"] == k).sum()) for k in (1, 2, 3, 4)}
    assert min(inner_by_outer.values()) > 0 and not (inner["fold"] == inner["outer_fold"]).any()
    # outer level: each candidate of the flat search on the 4 folds (grid and random: those are the outer
    # fits too); halving and Optuna add the outer fits of each fold's selection and of the flat best
    assert outer_level == len(run.cv_results) * 4 + (0 if method == "random" else 8)
    assert list(run.result.folds["fold"]) == [1, 2, 3, 4]
    assert sorted(run.result.predictions["clip_id"]) == sorted(clips["clip_id"])


# --------------------------------------------------------------------------- the command line
SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def _grid(urbansound_root, tmp_path, *args):
    return ["grid", "--estimator", "softmax", "--dataset", "urbansound8k", "--root", str(urbansound_root),
            "--cache", str(tmp_path / "cache"), *SMALL, *args]


@pytest.mark.parametrize("method, extra", [("random", ["--n-iter", "3"]), ("halving", [])])
def test_cli_search_methods_write_the_usual_results_folder(capsys, urbansound_root, tmp_path, method, extra):
    space = '{"C": {"dist": "loguniform", "low": 0.001, "high": 10}}' if method == "random" else "C=0.001,0.1,1,10"
    out_dir = tmp_path / method
    assert main(_grid(urbansound_root, tmp_path, "--search", method, "--param-grid", space, *extra,
                      "--output", str(out_dir))) == 0
    out = capsys.readouterr().out
    assert f"{method}, nested accuracy" in out and "nested (selected on inner folds" in out
    run = json.loads((out_dir / "run.json").read_text())
    assert run["search"] == method and run["nested"] is True
    assert [s["fold"] for s in run["selected_params"]] == [1, 2, 3]
    assert run["mean_accuracy"] == pytest.approx(np.mean([s["accuracy"] for s in run["selected_params"]]), abs=1e-12)
    for name in ("cv_results.csv", "folds.csv", "predictions.csv", "per_class.csv", "model.joblib", "summary.md"):
        assert (out_dir / name).is_file(), name
    table = pd.read_csv(out_dir / "cv_results.csv")
    if method == "random":
        assert len(table) == 3 and all(0.001 <= json.loads(p)["model__C"] <= 10 for p in table["params"])
    else:  # 4 candidates in the first iteration (36 clips allow only one: scikit-learn's minimum is 18)
        assert {"iter", "n_resources"} <= set(table) and (table["iter"] == 0).sum() == 4
    summary = (out_dir / "summary.md").read_text()
    assert ("Random search, nested" if method == "random" else "Successive halving search, nested") in summary
    # the report reads it as any grid's folder
    assert main(["report", str(out_dir), "--output", str(tmp_path / f"report-{method}")]) == 0


def test_cli_deprecated_search_aliases_warn_and_mean_grid_selection(capsys, urbansound_root, tmp_path):
    assert main(_grid(urbansound_root, tmp_path, "--param-grid", "C=1", "--search", "flat", "--output",
                      str(tmp_path / "flat"))) == 0
    captured = capsys.readouterr()
    assert "--search flat is deprecated; it means --search grid --selection flat" in captured.err
    run = json.loads((tmp_path / "flat" / "run.json").read_text())
    assert run["nested"] is False and run["search"] == "grid"
    assert main(_grid(urbansound_root, tmp_path, "--search", "nested", "--selection", "flat")) == 2
    assert "contradicts --selection flat" in capsys.readouterr().err
    with pytest.warns(FutureWarning, match="search='flat' is deprecated"):
        from featurestore import FeatureStore, load_dataset
        from pipelines.experiment import Experiment

        experiment = Experiment(load_dataset("urbansound8k", urbansound_root), FeatureStore(tmp_path / "cache"),
                                settings={"audio": {"sr": 8000, "duration": 0.5}}, output=str(tmp_path / "api"))
        experiment.grid("softmax", param_grid={"C": [1]}, search="flat")
    assert json.loads((tmp_path / "api" / "run.json").read_text())["nested"] is False


def test_cli_bad_search_options_exit_2_before_extraction(capsys, urbansound_root, tmp_path):
    cases = [
        (["--param-grid", '{"C": {"dist": "loguniform", "low": -1, "high": 1}}', "--search", "random"],
         "key 'C': loguniform needs low > 0"),
        (["--param-grid", '{"C": {"dist": "loguniform", "low": 1, "high": 2}}'], "key 'C' is a distribution"),
        (["--search", "halving", "--timeout", "10"], "timeout=10.0 applies to --search optuna only"),
        (["--n-iter", "3"], "n_iter=3 applies to --search random, halving or optuna"),
        (["--search", "optuna", "--resume-study", str(tmp_path / "none.db")], "no such file"),
        (["--param-grid", str(tmp_path / "missing.toml")], "no such file"),
    ]
    for args, message in cases:
        assert main(_grid(urbansound_root, tmp_path, *args)) == 2, args
        assert message in capsys.readouterr().err, args
    assert not any(Path(tmp_path / "cache").rglob("*.h5"))


class NeedsThreePerClass(NoiseSpy):
    """A NoiseSpy that, like a model selecting by its own inner cross-validation, refuses fewer than three
    training clips of a class."""

    def fit(self, X, y):
        if np.unique(y, return_counts=True)[1].min() < 3 or len(np.unique(y)) < 2:
            raise ValueError("too few training clips of a class")
        return super().fit(X, y)


def test_halving_on_clips_starts_again_with_a_round_large_enough_for_the_rarest_class():
    clips = clip_table()  # 48 clips, 2 classes: 18 training clips of each class per split
    splits = [(np.flatnonzero(clips["fold"] != k), np.flatnonzero(clips["fold"] == k), k) for k in (1, 2, 3, 4)]
    found = halving_select(NeedsThreePerClass(), {"seed": list(range(9))}, clips, np.arange(len(clips)), splits,
                           scoring="accuracy")
    # "exhaust" would start from 48 / 9 = 5 clips; the retry starts from ceil(6 * 48 / 18) = 16
    assert found.table.groupby("iter")["n_resources"].first().iloc[0] == 16
