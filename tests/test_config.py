"""Config files (issue 14): ``--config run.toml``, command-line precedence, errors naming the key and
the file, and a run repeated from the ``config.toml`` its results folder wrote."""

import json

import pandas as pd
import pytest

from cli import build_parser, main, read_config, run_record
from pipelines.config import ConfigError, dumps, load_config

SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def parsed(argv):
    """``(args, record)`` of ``cli.py ARGV`` with its ``--config`` applied, as ``main`` does."""
    argv = [str(a) for a in argv]
    args = build_parser(config=read_config(argv)).parse_args(argv)
    return args, run_record(args, argv)


def test_the_command_line_overrides_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('estimator = "svm"\nseed = 1\nfolds = [1, 2]\nmax_epochs = 3\n'
                    '[params]\nC = 0.1\nkernel = "linear"\n'
                    '[settings.mfcc]\nn_mfcc = 13\nn_mels = 40\n[settings.audio]\nsr = 8000\n')
    args, record = parsed(["cv", "--config", path, "--seed", "2", "--params", "C=10", "--set", "mfcc.n_mfcc=20"])
    config = record.config
    assert args.estimator == "svm" and args.seed == 2 and args.max_epochs == 3 and args.folds == "1,2"
    assert config["params"] == {"C": 10, "kernel": "linear"}  # C from the command line, kernel from the file
    assert config["settings"] == {"mfcc": {"n_mfcc": 20, "n_mels": 40}, "audio": {"sr": 8000}}
    assert config["seed"] == 2 and config["folds"] == [1, 2] and config["command"] == "cv"
    # without the overrides, the file's values
    _, record = parsed(["cv", "--config", path])
    assert record.config["params"] == {"C": 0.1, "kernel": "linear"} and record.config["seed"] == 1


def test_a_grid_in_a_file_keeps_its_lists_and_none(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('command = "grid"\nestimator = "svm"\nsearch = "flat"\n'
                    '[param_grid]\nC = [0.1, 10]\nsampler = ["none", "over"]\n')
    args, record = parsed(["grid", "--config", path, "--param-grid", "C=1,100"])
    assert args.search == "flat"
    assert record.config["param_grid"] == {"C": [1, 100], "sampler": [None, "over"]}
    assert 'sampler = [\n    "none",\n    "over",\n]' in dumps(record.config)  # None written back as "none"


def test_unknown_keys_name_the_key_and_the_file(capsys, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('estimator = "svm"\nmax_epoch = 3\n')
    code, _, err = run(capsys, "cv", "--config", path)
    assert code == 2 and "unknown key 'max_epoch'" in err and str(path) in err and "max_epochs" in err
    path.write_text('estimator = "svm"\n[param_grid]\nC = [1, 10]\n')  # a grid's key, read by cv
    code, _, err = run(capsys, "cv", "--config", path)
    assert code == 2 and "unknown key 'param_grid'" in err and str(path) in err


@pytest.mark.parametrize("text, message", [
    ('estimator = "svm"\nseed = "one"', "seed = 'one' must be of type int"),
    ('estimator = "svm"\nskip_bad = 1', "skip_bad = 1 must be true or false"),
    ('estimator = "svm"\nvote = "median"', "vote = 'median' must be one of mean, majority"),
    ('estimator = "svm"\nfolds = 1', "folds = 1 must be an array"),
    ('estimator = "svm"\n[settings]\nn_mfcc = 13', "must be a table of tables"),
    ('command = "grid"\nestimator = "svm"', "command = 'grid', but it is read by `cv`"),
    ('estimator = "svm', "not valid TOML"),
])
def test_bad_values_name_the_key_and_the_file(capsys, tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text)
    code, _, err = run(capsys, "cv", "--config", path)
    assert code == 2 and message in err and str(path) in err


def test_a_missing_file_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "cv", "--config", tmp_path / "absent.toml")
    assert code == 2 and err.strip() == f"error: --config {tmp_path / 'absent.toml'}: no such file"
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_a_run_repeated_from_its_config_gives_the_same_scores(capsys, urbansound_root, tmp_path):
    first = tmp_path / "first"
    code, _, err = run(capsys, "grid", "--estimator", "svm", "--dataset", "urbansound8k", "--root", urbansound_root,
                       "--cache", tmp_path / "cache", *SMALL, "--param-grid", "C=0.01,10", "--search", "flat",
                       "--set", "mfcc.n_mfcc=13", "--seed", "3", "--output", first)
    assert code == 0, err
    config = load_config(first / "config.toml")
    assert config["command"] == "grid" and config["estimator"] == "svm" and config["seed"] == 3
    assert config["settings"]["mfcc"]["n_mfcc"] == 13 and config["settings"]["audio"]["sr"] == 8000
    assert config["folds"] == [1, 2, 3] and config["param_grid"] == {"C": [0.01, 10]} and "output" not in config
    assert config["root"] == str(urbansound_root) and config["feature"] == "mfcc"

    again = tmp_path / "again"
    code, _, err = run(capsys, "grid", "--config", first / "config.toml", "--output", again)
    assert code == 0, err
    columns = ["params", "mean_accuracy", "mean_balanced_accuracy", "mean_f1_macro", "rank"]
    pd.testing.assert_frame_equal(pd.read_csv(first / "cv_results.csv")[columns],
                                  pd.read_csv(again / "cv_results.csv")[columns])
    pd.testing.assert_frame_equal(pd.read_csv(first / "predictions.csv"), pd.read_csv(again / "predictions.csv"))
    assert load_config(again / "config.toml") == config  # the repeat resolves to the same configuration
    assert json.loads((again / "run.json").read_text())["feature_sets"][0]["key"] == \
        json.loads((first / "run.json").read_text())["feature_sets"][0]["key"]
