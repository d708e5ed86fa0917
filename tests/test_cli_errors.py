"""Results folders, recorded runs and the command line's errors (issue 12): one line for bad input,
a traceback for a bug, every bad file of `predict` reported, quiet broken pipes."""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import pandas as pd
import pytest

from cli import main
from pipelines.results import ResultsFolderError, check_output, new_folder

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def cv_args(root, cache, *extra):
    return ["cv", "--estimator", "softmax", "--dataset", "urbansound8k", "--root", root, "--cache", cache,
            *SMALL, *extra]


@pytest.fixture
def trained(capsys, urbansound_root, tmp_path):
    """A cv results folder of softmax on the tiny UrbanSound8K layout, with its model (``--refit``)."""
    folder = tmp_path / "run"
    code, _, err = run(capsys, *cv_args(urbansound_root, tmp_path / "cache", "--output", folder, "--refit"))
    assert code == 0, err
    return folder


# --------------------------------------------------------------------------- results folders
def test_concurrent_runs_get_distinct_folders(tmp_path):
    n = 16
    barrier = threading.Barrier(n)

    def create(_):
        barrier.wait()  # all threads ask for the same name at once
        return new_folder(tmp_path / "results", "cv-svm-demo-20260101-120000")

    with ThreadPoolExecutor(n) as pool:
        folders = list(pool.map(create, range(n)))
    assert len(set(folders)) == n and all(f.is_dir() for f in folders)
    assert sorted(f.name for f in folders)[:2] == ["cv-svm-demo-20260101-120000", "cv-svm-demo-20260101-120000-10"]


def test_concurrent_processes_get_distinct_folders(tmp_path):
    code = ("import sys; from pipelines.results import new_folder; "
            "print(new_folder(sys.argv[1], 'grid-lstm-demo-20260101-120000'))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    printed = [p.communicate()[0].strip() for p in procs]
    assert len(set(printed)) == 4 and all(Path(p).is_dir() for p in printed)


def test_an_output_holding_files_is_refused_before_any_work(capsys, urbansound_root, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "run.json").write_text("{}")
    cache = tmp_path / "cache"
    code, _, err = run(capsys, *cv_args(urbansound_root, cache, "--output", taken))
    assert code == 2 and "--output" in one_line(err) and str(taken) in err and "not empty" in err
    assert (taken / "run.json").read_text() == "{}" and not any(cache.rglob("*.h5"))
    check_output(tmp_path / "new")  # a new folder, or an empty one, is fine
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")
    with pytest.raises(ResultsFolderError, match="not empty"):
        check_output(taken / "run.json")  # a file is not a folder either


# --------------------------------------------------------------------------- what a results folder records
def test_cv_params_are_recorded(capsys, urbansound_root, tmp_path):
    folder = tmp_path / "run"
    code, out, err = run(capsys, *cv_args(urbansound_root, tmp_path / "cache", "--output", folder,
                                          "--params", "C=0.5", "--refit"))
    assert code == 0, err
    assert json.loads((folder / "run.json").read_text())["params"] == {"model__C": 0.5}
    assert json.loads((folder / "best_params.json").read_text()) == {"model__C": 0.5}
    assert '"model__C": 0.5' in (folder / "summary.md").read_text()
    assert joblib.load(folder / "model.joblib")["model"].get_params()["model__C"] == 0.5
    assert "refitting softmax on all 36 clips" in out and "saved" in out


def test_skipped_clips_are_listed_in_the_results_folder(capsys, urbansound_root, tmp_path):
    wavs = sorted((urbansound_root / "audio" / "fold1").glob("*.wav"))
    wavs[0].unlink()                                    # missing: --skip-missing
    wavs[1].write_bytes(b"not audio at all" * 100)      # unreadable: --skip-bad
    folder = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipping 1 of 36"):
        code, _, err = run(capsys, *cv_args(urbansound_root, tmp_path / "cache", "--output", folder,
                                            "--skip-missing", "--skip-bad"))
    assert code == 0, err
    skipped = pd.read_csv(folder / "skipped.csv")
    assert sorted(Path(p).name for p in skipped["path"]) == sorted([wavs[0].name, wavs[1].name])
    assert skipped.set_index("clip_id")["reason"].str.contains("missing audio file").sum() == 1
    run_info = json.loads((folder / "run.json").read_text())
    assert run_info["n_skipped"] == 2 and run_info["n_clips"] == 34
    assert "34 clips; 2 clips were skipped" in (folder / "summary.md").read_text()


def test_no_skipped_clip_is_said_too(trained):
    assert pd.read_csv(trained / "skipped.csv").empty
    assert json.loads((trained / "run.json").read_text())["n_skipped"] == 0
    assert "none was skipped" in (trained / "summary.md").read_text()


# --------------------------------------------------------------------------- predict
def test_predict_reports_every_bad_file_and_goes_on(capsys, trained, urbansound_root, tmp_path):
    good = sorted((urbansound_root / "audio" / "fold2").glob("*.wav"))[:2]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....")
    missing = tmp_path / "missing.wav"
    code, out, err = run(capsys, "predict", "--model", trained / "model.joblib", good[0], broken, missing, good[1])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3 and str(broken) in lines[0] and str(missing) in lines[1]
    assert "2 of 4 files" in lines[2]
    assert str(good[0]) in out and str(good[1]) in out and str(broken) not in out


@pytest.mark.parametrize("make, why", [
    (lambda run: run / "predictions.csv", "is not a model.joblib written by grid, cv, ensemble or demo"),
    (lambda run: run / "summary.md", "is not a model.joblib written by grid, cv, ensemble or demo"),
    (lambda run: run, "is a folder, not a model.joblib .* \\(the model is its model.joblib\\)"),
    (lambda run: run / "nothing.joblib", "does not exist"),
])
def test_a_file_that_is_not_a_model_is_one_line(capsys, trained, make, why):
    import re

    path = make(trained)
    code, _, err = run(capsys, "predict", "--model", path, trained / "x.wav")
    assert code == 2 and re.fullmatch(f"error: {re.escape(str(path))} {why}", one_line(err))


def test_a_joblib_of_something_else_is_not_a_model(capsys, tmp_path):
    joblib.dump([1, 2, 3], tmp_path / "model.joblib")
    code, _, err = run(capsys, "predict", "--model", tmp_path / "model.joblib", tmp_path / "a.wav")
    assert code == 2 and "holds a list" in one_line(err)


# --------------------------------------------------------------------------- bad input, bugs, pipes
@pytest.mark.parametrize("folds, message", [
    ("x", "--folds 'x': expected comma-separated fold numbers"),
    ("1,,2", "--folds '1,,2'"),
    ("4", r"--folds: fold\(s\) \[4\] have no clips; the folds present are \[1, 2, 3\]"),
])
def test_bad_folds_are_one_line(capsys, urbansound_root, tmp_path, folds, message):
    import re

    code, _, err = run(capsys, *cv_args(urbansound_root, tmp_path / "cache", "--folds", folds))
    assert code == 2 and re.search(message, one_line(err))


def test_bad_names_of_this_run_are_one_line(capsys, urbansound_root, tmp_path):
    cache = tmp_path / "cache"
    code, _, err = run(capsys, *cv_args(urbansound_root, cache, "--params", "D=1"))
    assert code == 2 and "has no parameter 'D'" in one_line(err)
    code, _, err = run(capsys, *cv_args(urbansound_root, cache, "--set", "mel.n_mels=13"))
    assert code == 2 and "--set names feature kind 'mel'" in one_line(err)
    code, _, err = run(capsys, "ensemble", "--estimators", "softmax,svn", "--root", urbansound_root)
    assert code == 2 and "--estimator: unknown estimator 'svn'. Did you mean 'svm'" in one_line(err)
    assert not any(cache.rglob("*.h5"))


def test_a_bug_shows_its_traceback(capsys, urbansound_root, tmp_path, monkeypatch):
    import pipelines.experiment

    def broken(*args, **kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(pipelines.experiment, "run_search", broken)
    with pytest.raises(ValueError, match="a bug, not bad input"):
        main([str(a) for a in cv_args(urbansound_root, tmp_path / "cache")])


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "cli.py", "estimators"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader has gone before the first line is written, as `| head -0`
    _, err = proc.communicate()
    assert proc.returncode == 141 and err == b""
