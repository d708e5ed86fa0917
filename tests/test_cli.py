"""The command line, run in-process on tiny data sets in the documented layouts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main, parse_param_grid, parse_settings

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_listing_commands(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and all(n in out for n in ("urbansound8k", "esc50", "folder", "csv", "demo"))
    assert out.count("{'duration': 4.0} at most (the duration is the one that holds 95 % of the files") == 2
    code, out, _ = run(capsys, "features")
    assert code == 0 and "n_mels" in out and "mrp" in out
    code, out, _ = run(capsys, "estimators")
    assert code == 0 and "lstm" in out and "input=sequence" in out and "svm" in out


def test_listing_estimators_does_not_import_torch():
    code = "import sys, cli; cli.main(['estimators']); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)


def test_parsers():
    assert parse_settings(["mel.n_mels=128", "audio.normalize=true", "stft.size=[32,32]"]) == {
        "mel": {"n_mels": 128}, "audio": {"normalize": True}, "stft": {"size": [32, 32]}}
    assert parse_param_grid(["C=0.1,1", '{"kernel": ["rbf"]}', "size=[32,32],[64,64]"]) == {
        "C": [0.1, 1], "kernel": ["rbf"], "size": [[32, 32], [64, 64]]}


def test_extract_twice_then_list_and_remove(capsys, urbansound_root, tmp_path):
    cache = tmp_path / "cache"
    args = ["extract", "--dataset", "urbansound8k", "--root", urbansound_root, "--features", "mel,mfcc",
            "--cache", cache, *SMALL]
    code, out, _ = run(capsys, *args)
    assert code == 0 and "mel: 36 clips x (2, 60, 8)" in out
    code, again, _ = run(capsys, *args)
    assert code == 0 and again == out
    code, out, _ = run(capsys, "cache", "list", "--cache", cache)
    assert code == 0 and out.count("complete") == 2
    path = next(cache.rglob("mel-*.h5"))
    assert run(capsys, "cache", "remove", path, "--cache", cache)[0] == 0 and not path.exists()


@pytest.mark.parametrize("argv, message", [
    (["extract", "--dataset", "urbansound8k", "--features", "mfc"], "Did you mean 'mfcc'"),
    (["extract", "--dataset", "urbansound8k", "--features", "mel", "--set", "mel.n_mel=3"], "Did you mean 'n_mels'"),
    (["cv", "--estimator", "lstn"], "Did you mean 'lstm'"),
    (["grid", "--estimator", "softmax", "--param-grid", "CC=1,2"], "Did you mean 'C'"),
    (["grid", "--estimator", "lstm", "--param-grid", "hiden_size=8"], "Did you mean 'hidden_size'"),
    (["cv", "--estimator", "softmax", "--folds", "7"], r"fold\(s\) \[7\] have no clips"),
    (["cv", "--estimator", "softmax", "--feature", "mell"], "Did you mean 'mel'"),
])
def test_bad_input_exits_2_with_one_line(capsys, urbansound_root, tmp_path, argv, message):
    import re

    cache = tmp_path / "cache"
    code, _, err = run(capsys, *argv, "--root", urbansound_root, "--dataset", "urbansound8k", "--cache", cache, *SMALL)
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1
    if argv[0] == "grid":  # a bad parameter fails before any extraction or training
        assert not any(cache.rglob("*.h5"))


def test_missing_root_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "cv", "--estimator", "svm", "--dataset", "esc50", "--root", tmp_path / "none")
    assert code == 2 and "does not exist" in err


def test_cv_report_and_predict(capsys, urbansound_root, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = run(capsys, "cv", "--estimator", "softmax", "--dataset", "urbansound8k", "--root", urbansound_root,
                       "--cache", tmp_path / "cache", "--output", out_dir, "--refit", *SMALL)
    assert code == 0 and "fold3" in out
    for name in ("run.json", "cv_results.csv", "best_params.json", "model.joblib", "confusion_matrix.png",
                 "predictions.csv", "summary.md"):
        assert (out_dir / name).is_file(), name
    run_info = json.loads((out_dir / "run.json").read_text())
    assert run_info["folds"] == [1, 2, 3] and run_info["mean_accuracy"] > 0.9
    code, out, _ = run(capsys, "report", out_dir, "--output", tmp_path / "report")
    assert code == 0 and "softmax" in out and (tmp_path / "report" / "comparison.png").is_file()
    wav = next((urbansound_root / "audio" / "fold1").glob("*.wav"))
    code, out, _ = run(capsys, "predict", "--model", out_dir / "model.joblib", wav)
    assert code == 0 and "all" in out
