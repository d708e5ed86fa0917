"""Extraction and grid search on a Dask cluster (two worker processes on loopback) match the local run."""

import numpy as np
import pytest

pytest.importorskip("distributed")

from distributed import get_task_stream
from joblib import parallel_config

from cli import main
from featurestore import extract, load_dataset
from pipelines import ClipSplitter, grid_search, make_pipeline
from pipelines.cluster import ClusterError, check_reachable, connect, threads_per_fit
from pipelines.build import clips_in

AUDIO = {"sr": 8000, "duration": 0.5}
MFCC = {"n_mfcc": 13, "n_fft": 256, "hop_length": 128, "n_mels": 20}


@pytest.fixture(scope="module")
def client():
    client = connect("local", n_workers=2)
    yield client
    client.close()


def test_two_single_threaded_workers(client):
    assert sorted(client.nthreads().values()) == [1, 1]
    assert threads_per_fit(client) >= 1


def test_extraction_and_grid_search_match_the_local_run(client, urbansound_root, tmp_path):
    from featurestore import FeatureStore

    ds = load_dataset("urbansound8k", urbansound_root)
    local = extract(ds, {"mfcc": MFCC}, store=FeatureStore(tmp_path / "local"), audio=AUDIO, progress=False)["mfcc"]
    check_reachable(client, [tmp_path, urbansound_root])
    with get_task_stream(client) as tasks:
        remote = extract(ds, {"mfcc": MFCC}, store=FeatureStore(tmp_path / "remote"), audio=AUDIO, n_jobs=2,
                         batch_size=5, backend="dask", progress=False)["mfcc"]
    assert {t["worker"] for t in tasks.data} == set(client.nthreads())  # both workers computed batches
    assert remote.path != local.path and sorted(remote.clip_ids) == sorted(local.clip_ids)
    np.testing.assert_array_equal(remote.read(local.clip_ids), local.read())

    pipeline = make_pipeline("softmax", local)
    grid = {"model__C": [0.01, 1.0]}
    clips = clips_in(ds, local)
    scores = {}
    for name, backend in (("local", "loky"), ("dask", "dask")):
        with parallel_config(backend=backend), get_task_stream(client) as tasks:
            cv_results, _, _, _ = grid_search(pipeline, grid, clips, splitter=ClipSplitter(clips), n_jobs=2,
                                              refit=False, progress=False)
        scores[name] = cv_results.filter(like="_accuracy").to_numpy()
        assert bool(tasks.data) == (backend == "dask")
    np.testing.assert_allclose(scores["dask"], scores["local"])


def test_a_worker_that_cannot_read_the_store_fails_the_job(client, tmp_path):
    missing = tmp_path / "not-shared" / "cache"
    with pytest.raises(ClusterError, match=rf"worker tcp://127\.0\.0\.1:\d+ cannot open {missing} \(does not exist\)"):
        check_reachable(client, [tmp_path, missing])


def test_cli_on_a_local_cluster_and_a_bad_scheduler(capsys, urbansound_root, tmp_path):
    small = ["--dataset", "urbansound8k", "--root", str(urbansound_root), "--cache", str(tmp_path / "cache"),
             "--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]
    assert main(["grid", "--estimator", "softmax", "--param-grid", "C=0.1,1", "--scheduler", "local",
                 "--n-jobs", "2", "--output", str(tmp_path / "run"), *small]) == 0
    assert (tmp_path / "run" / "cv_results.csv").is_file()
    capsys.readouterr()
    assert main(["extract", "--features", "mel", "--scheduler", "tcp://127.0.0.1:1", *small]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'" in err and len(err.strip().splitlines()) == 1


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # as if not installed
    with pytest.raises(ClusterError, match=r'pip install "\.\[dask\]"'):
        connect("local")


def test_cluster_error_belongs_to_the_pipelines():
    import featurestore

    assert ClusterError.__module__ == "pipelines.cluster"
    assert not hasattr(featurestore, "ClusterError")  # the store knows nothing of clusters
