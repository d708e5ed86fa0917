"""Complete run records (issue 14): ``run.json`` holds how a run was made, not only its scores."""

import json
import platform
import re

import pandas as pd
import pytest
import sklearn

from cli import main
from featurestore import load_dataset
from featurestore.store import FeatureSet
from pipelines.records import cpu_time, git_commit, library_versions

SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


@pytest.mark.filterwarnings("ignore:data set 'urbansound8k'. skipping 1 of 36 rows")
def test_run_json_holds_every_field(capsys, urbansound_root, tmp_path):
    missing = next((urbansound_root / "audio" / "fold3").glob("*.wav"))
    missing.unlink()  # a clip of the metadata without audio: skipped and recorded
    argv = ["cv", "--estimator", "svm", "--dataset", "urbansound8k", "--root", str(urbansound_root),
            "--cache", str(tmp_path / "cache"), *SMALL, "--skip-missing", "--seed", "5", "--params", "C=10",
            "--output", str(tmp_path / "run")]
    assert main(argv) == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "run" / "run.json").read_text())

    assert run["command_line"].startswith("cli.py cv --estimator svm --dataset urbansound8k")
    assert run["command_line"].endswith(f"--output {tmp_path / 'run'}")
    assert run["seed"] == 5 and run["config"]["seed"] == 5 and run["config"]["params"] == {"C": 10}
    assert run["config"]["skip_missing"] is True and run["config"]["command"] == "cv"
    assert run["git"] is None or (re.fullmatch("[0-9a-f]{40}", run["git"]["commit"])
                                  and isinstance(run["git"]["dirty"], bool))
    assert run["python"]["version"] == platform.python_version()
    assert run["libraries"]["scikit-learn"] == sklearn.__version__ and run["libraries"]["numpy"]
    assert run["host"]["name"] == platform.node() and run["host"]["cpu_count"] >= 1

    dataset = load_dataset("urbansound8k", urbansound_root, skip_missing=True)
    assert run["dataset_identity"]["identity"] == dataset.identity
    assert run["dataset_identity"]["n_clips"] == 35 and run["dataset_identity"]["root"] == str(urbansound_root)
    (used,) = run["feature_sets"]
    fs = FeatureSet(used["path"])
    assert used["key"] == fs.attrs["key"] and used["kind"] == "mfcc" and used["params"] == fs.params

    (skipped,) = run["skipped"]
    assert skipped["path"] == str(missing) and "missing" in skipped["reason"]
    assert pd.read_csv(tmp_path / "run" / "skipped.csv")["path"].tolist() == [str(missing)]
    assert run["n_skipped"] == 1 and run["n_clips"] == 35
    assert run["wall_time"] > 0 and run["cpu_time"]["total"] >= run["cpu_time"]["process"] > 0


def test_an_installed_copy_has_no_commit(tmp_path):
    assert git_commit(tmp_path) is None  # not a checkout


def test_absent_libraries_are_null():
    versions = library_versions(("scikit-learn", "no-such-distribution-here"))
    assert versions == {"scikit-learn": sklearn.__version__, "no-such-distribution-here": None}


def test_cpu_time_counts_this_process():
    import os

    # The kernel counts CPU time in clock ticks (often 10 ms) and may give a short computation none
    # of them (a 300,000-square sum got 0 in a CI run); so compute until the process's own clock
    # has moved by 50 ms, for a few seconds at most.
    def own_seconds(times):
        return times.user + times.system

    start = os.times()
    for _ in range(1000):
        if own_seconds(os.times()) - own_seconds(start) >= 0.05:
            break
        sum(i * i for i in range(100_000))
    spent = cpu_time(start)
    # cpu_time subtracts user and system time separately, so its sum may differ from the loop's in
    # the last bit (a CI run saw 0.04999999999998295): compare with a tolerance of 1 ns.
    assert spent["process"] >= 0.05 - 1e-9
    assert spent["total"] == spent["process"] + spent["workers"]
