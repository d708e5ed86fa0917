"""What a newcomer meets (issue 10): `report` on what a shell glob gives, data sets named after their
root, the audio settings of a run recorded, and a --help with examples for every command."""

import argparse
import json
import os
import re

import pandas as pd
import pytest

from cli import DEFAULT_N_JOBS, PrintReporter, build_parser, main
from pipelines.build import CALIBRATIONS
from pipelines.compare import find_runs, run_labels
from pipelines.experiment import DEMO_MODELS
from pipelines.reporter import Reporter

SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def manifest(urbansound_root):
    """A CSV manifest, ``birds.csv``, of the UrbanSound8K layout's clips (3 classes, 3 folds)."""
    table = pd.read_csv(urbansound_root / "metadata" / "UrbanSound8K.csv")
    rows = pd.DataFrame({"path": [f"audio/fold{f}/{n}" for f, n in zip(table["fold"], table["slice_file_name"])],
                         "label": table["class"], "fold": table["fold"], "group": table["fsID"]})
    path = urbansound_root / "birds.csv"
    rows.to_csv(path, index=False)
    return path


def cv(capsys, root, cache, *extra, estimator="softmax", dataset="urbansound8k"):
    code, out, err = run(capsys, "cv", "--estimator", estimator, "--dataset", dataset, "--root", root,
                         "--cache", cache, *SMALL, *extra)
    assert code == 0, err
    return out


# --------------------------------------------------------------------------- data set names and audio
def test_a_csv_data_set_is_named_after_its_manifest(capsys, manifest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default results/ folder goes here
    out = cv(capsys, manifest, tmp_path / "cache", dataset="csv")
    (folder,) = (tmp_path / "results").iterdir()
    assert folder.name.startswith("cv-softmax-birds-")
    info = json.loads((folder / "run.json").read_text())
    assert info["dataset"] == "birds" and info["layout"] == "csv"
    assert "# softmax on birds" in (folder / "summary.md").read_text()
    assert out.count("audio of birds: sr=8000 Hz (--set), duration=0.5 s (--set), pad_mode=zero") == 1


def test_the_audio_settings_are_recorded(capsys, urbansound_root, tmp_path):
    cv(capsys, urbansound_root, tmp_path / "cache", "--output", tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["audio"] == {"sr": 8000, "duration": 0.5, "pad_mode": "zero", "normalize": False}
    assert info["dataset"] == info["layout"] == "urbansound8k"   # a published data set keeps its name
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "## Audio\n\nsr=8000 Hz, duration=0.5 s, pad_mode=zero, normalize=False" in summary


def test_a_bad_audio_setting_fails_before_extraction(capsys, urbansound_root, tmp_path):
    code, out, err = run(capsys, "cv", "--estimator", "softmax", "--dataset", "urbansound8k", "--root",
                         urbansound_root, "--cache", tmp_path / "cache", "--set", "audio.rate=8000", "--no-progress")
    assert code == 2 and "audio parameter 'rate'. Valid: duration, normalize, pad_mode, sr" in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.h5"))


# --------------------------------------------------------------------------- report
@pytest.fixture
def results(capsys, urbansound_root, tmp_path, monkeypatch):
    """results/ as a user has it: a demo-like folder of two runs (with the demo's own comparison
    files), a cv run, and a stray file."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    demo = tmp_path / "results" / "demo-20260105-142501"
    cv(capsys, urbansound_root, cache, "--output", demo / "softmax")
    cv(capsys, urbansound_root, cache, "--output", demo / "svm", estimator="svm")
    (demo / "comparison.csv").write_text("the demo's own\n")
    cv(capsys, urbansound_root, cache, "--output", tmp_path / "results" / "cv-softmax-urbansound8k-1",
       "--params", "C=0.01")
    (tmp_path / "results" / "notes.txt").write_text("not a run\n")
    return tmp_path / "results"


def test_report_takes_what_a_shell_glob_gives(capsys, results):
    paths = sorted(str(p) for p in results.iterdir())  # results/*
    code, out, err = run(capsys, "report", *paths)
    assert code == 0
    assert err.strip() == f"skipped {results / 'notes.txt'}: not a folder"
    for label in ("demo-20260105-142501/softmax", "demo-20260105-142501/svm", "cv-softmax-urbansound8k-1"):
        assert label in out
    (folder,) = [p for p in results.iterdir() if p.name.startswith("report-")]
    assert (results / "demo-20260105-142501" / "comparison.csv").read_text() == "the demo's own\n"
    table = pd.read_csv(folder / "comparison.csv")
    assert sorted(table["run"]) == ["cv-softmax-urbansound8k-1", "demo-20260105-142501/softmax",
                                    "demo-20260105-142501/svm"]
    assert table["accuracy"].is_monotonic_decreasing
    markdown = (folder / "comparison.md").read_text()
    assert "## Data set urbansound8k" in markdown and "| demo-20260105-142501/svm |" in markdown
    assert (folder / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_report_ranks_each_data_set_apart(capsys, results, manifest):
    cv(capsys, manifest, results.parent / "cache", "--output", results / "birds-run", dataset="csv")
    code, out, _ = run(capsys, "report", *results.iterdir(), "--output", results.parent / "report")
    assert code == 0
    assert out.index("data set birds:") < out.index("data set urbansound8k:")
    birds = out[out.index("data set birds:"):out.index("data set urbansound8k:")]
    assert "birds-run" in birds and "softmax" in birds and "svm" not in birds
    written = sorted(p.name for p in (results.parent / "report").iterdir())
    assert written == ["comparison-birds.png", "comparison-urbansound8k.png", "comparison.csv", "comparison.md"]


def test_report_never_writes_into_a_folder_with_files(capsys, results):
    demo = results / "demo-20260105-142501"
    code, _, err = run(capsys, "report", demo, "--output", demo)
    assert code == 2 and "--output" in err and "not empty" in err
    assert (demo / "comparison.csv").read_text() == "the demo's own\n"


def test_report_of_nothing_is_one_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "report", tmp_path / "empty", tmp_path / "absent")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3 and "does not exist" in lines[1]
    assert lines[2].startswith("error: no results folder among")


def test_run_labels_tell_runs_apart(tmp_path):
    for path in ("a/run", "b/run", "demo-1/svm"):
        (tmp_path / path).mkdir(parents=True)
        (tmp_path / path / "run.json").write_text("{}")
    runs, notes = find_runs([tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "demo-1",
                             tmp_path / "demo-1" / "svm"])
    assert notes == [] and len(runs) == 3  # demo-1/svm once, though named twice
    assert run_labels(runs) == ["a/run", "b/run", "demo-1/svm"]


# --------------------------------------------------------------------------- --help
def subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action.choices


# the cache command's parser belongs to the store's integrity work, which gives it its examples
@pytest.mark.parametrize("name", sorted(set(subcommands()[1]) - {"cache"}))
def test_every_command_has_examples(name):
    parser = subcommands()[1][name]
    assert f"cli.py {name}" in parser.format_help().split("examples:")[1]


def test_ensemble_offers_the_calibrations_the_experiment_takes():
    (action,) = [a for a in subcommands()[1]["ensemble"]._actions if a.dest == "calibrate"]
    assert tuple(action.choices) == CALIBRATIONS and action.default == CALIBRATIONS[0] == "validation"


def test_help_says_what_the_demo_does_and_one_n_jobs_default():
    parser, commands = subcommands()
    description = commands["demo"].description
    assert "default ensemble" in description and f"({', '.join(name for name, _, _ in DEMO_MODELS)})" in description
    defaults = {name: p.get_default("n_jobs") for name, p in commands.items() if p.get_default("n_jobs") is not None}
    assert set(defaults) >= {"demo", "extract", "grid", "cv", "ensemble"}
    assert set(defaults.values()) == {DEFAULT_N_JOBS}
    grid = commands["grid"].format_help()
    assert "parameter names" in grid and "hidden_size" in grid and "max_epochs (20)" in grid


def test_grid_help_example_runs(capsys, urbansound_root, tmp_path):
    """The grid example with parameter names, on tiny data."""
    line = next(x for x in subcommands()[1]["grid"].epilog.splitlines() if "--param-grid 'C=" in x)
    argv = line.split()[1:]
    assert argv[:3] == ["grid", "--estimator", "svm"]
    # flat: a nested search's inner training folds hold 4 clips a class, too few for the svm's calibration
    code, out, err = run(capsys, *[a.strip("'") for a in argv], "--dataset", "urbansound8k", "--root",
                         urbansound_root, "--cache", tmp_path / "cache", "--output", tmp_path / "grid", *SMALL,
                         "--search", "flat")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "grid" / "cv_results.csv")) == 6  # 3 C x 2 kernels
    assert os.path.isfile(tmp_path / "grid" / "model.joblib")


# --------------------------------------------------------------------------- what the command line prints
def test_print_reporter_prints_every_event():
    events = {name for name in vars(Reporter) if not name.startswith("_")}
    assert events and events <= {name for name in vars(PrintReporter) if not name.startswith("_")}


def test_cv_prints_the_same_lines(capsys, urbansound_root, tmp_path):
    """The lines cv printed when Experiment printed itself, now printed by cli.PrintReporter alone."""
    folder = tmp_path / "run"
    out = cv(capsys, urbansound_root, tmp_path / "cache", "--output", folder, "--params", "C=0.5", "--refit")
    run_info = json.loads((folder / "run.json").read_text())
    lines = out.splitlines()
    assert lines[0] == ("audio of urbansound8k: sr=8000 Hz (--set), duration=0.5 s (--set), pad_mode=zero, "
                        "normalize=False")
    assert lines[1].startswith("rank  parameters (model__...)  accuracy")  # the cv table
    expected = [
        "refitting softmax on all 36 clips ...",
        r"refitted softmax in \d+\.\d s",
        f"saving the model to {re.escape(str(folder / 'model.joblib'))} ...",
        r"saved \d+\.\d MB in \d+\.\d s",
        re.escape(f"accuracy {run_info['mean_accuracy']:.3f} +/- {run_info['std_accuracy']:.3f}; results in {folder}"),
    ]
    tail = lines[-len(expected):]
    assert all(re.fullmatch(pattern, line) for pattern, line in zip(expected, tail)), tail
