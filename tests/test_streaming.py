"""Past the size of memory (issue 13): streamed reads, the memory budget, torch nets trained batch by batch
from the store, summaries of classical models computed batch by batch, and a clear error otherwise."""

import os
import sys
import tracemalloc
import types

import h5py
import numpy as np
import pandas as pd
import pytest

import featurestore.store as store_module
import featurestore.streaming as streaming
from featurestore import CorruptFeatureSetError, MemoryBudgetError, ParameterError, extract, load_dataset
from featurestore.store import FeatureSet, FeatureSetWriter
from featurestore.streaming import StoredRows, contiguous_runs, memory_budget, prefetch
from pipelines import make_pipeline
from pipelines.build import clips_in
from pipelines.loader import FeatureLoader

AUDIO = {"sr": 8000, "duration": 0.5}
MEL = {"n_mels": 20, "n_fft": 256, "hop_length": 128}
TINY = "1k"  # a memory budget below every set here: everything streams


@pytest.fixture
def mel(urbansound_root, store):
    """The urbansound fixture's clip table (36 clips, 3 classes, folds 1-3) and its stored mel set."""
    ds = load_dataset("urbansound8k", urbansound_root)
    fs = extract(ds, {"mel": MEL}, store=store, audio=AUDIO, progress=False)["mel"]
    return clips_in(ds, fs), fs


@pytest.fixture
def tiny_budget(monkeypatch):
    monkeypatch.setenv(streaming.ENV_VAR, TINY)


def forbid_fancy_indexing(monkeypatch):
    """Make h5py refuse any read of a data set but by a slice; returns the list of slices read."""
    reads = []
    real = h5py.Dataset.read_direct

    def read_direct(self, dest, source_sel=None, dest_sel=None):
        assert isinstance(source_sel, slice) or source_sel is None, f"not a contiguous read: {source_sel!r}"
        reads.append(source_sel)
        return real(self, dest, source_sel, dest_sel)

    def getitem(self, key):
        keys = key if isinstance(key, tuple) else (key,)
        assert all(isinstance(k, (slice, type(Ellipsis))) or k == () for k in keys), f"fancy indexing: {key!r}"
        return real_getitem(self, key)

    real_getitem = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "read_direct", read_direct)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)
    return reads


def synthetic_set(path, n_rows, row_shape, *, seed=0):
    """A raw-waveform-like feature set of ``n_rows`` random rows, written by the store's writer."""
    rng = np.random.default_rng(seed)
    ids = [f"clip{i:05d}" for i in range(n_rows)]
    attrs = {"kind": "raw", "params": {}, "audio": {"sr": 8000, "duration": row_shape[-1] / 8000},
             "dataset": "synthetic", "key": "0" * 40, "version": 1}
    with FeatureSetWriter(path, attrs) as writer:
        for start in range(0, n_rows, 100):
            writer.write_batch(ids[start:start + 100], rng.standard_normal((len(ids[start:start + 100]), *row_shape)))
        return writer.finalize(pd.DataFrame({"clip_id": ids}))


# --------------------------------------------------------------------------- streamed reads
def test_streamed_reads_match_the_loaded_set_in_the_callers_order(mel, tiny_budget, monkeypatch):
    clips, fs = mel
    whole = FeatureSet(fs.path, memory_budget="1G")
    assert not whole.streams and FeatureSet(fs.path).streams
    expected = whole.read()
    streamed = FeatureSet(fs.path)
    reads = forbid_fancy_indexing(monkeypatch)
    ids = clips["clip_id"].to_numpy()[[30, 2, 3, 4, 17, 2, 0]]  # any order, a repeat
    rows = whole.index_of(ids)
    np.testing.assert_array_equal(streamed.read(ids), expected[rows])
    assert reads == [slice(0, 1), slice(2, 5), slice(17, 18), slice(30, 31)]  # sorted contiguous runs
    np.testing.assert_array_equal(streamed.read_rows(5, 9), expected[5:9])
    batches = list(streamed.iter_batches(rows[::-1], batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), expected[rows[::-1]])
    assert streamed.loaded_bytes == 0 and streamed.read().shape == expected.shape
    assert streamed.loaded_bytes == 0  # never loaded whole, not even by read()


def test_read_ranges_and_rows_are_checked(mel):
    _, fs = mel
    with pytest.raises(ParameterError, match=r"rows 5:2 are not a range of the 36 rows"):
        fs.read_rows(5, 2)
    with pytest.raises(IndexError, match="row 36 is not a row of feature set"):
        fs.read_at([0, 36])
    with pytest.raises(ParameterError, match="batch_size=0"):
        next(fs.iter_batches(batch_size=0))
    assert list(contiguous_runs([4, 5, 6, 9, 2, 3])) == [(4, 7, 0), (9, 10, 3), (2, 4, 4)]


def test_a_streamed_read_finds_damage_once_per_file_version(mel, tiny_budget, monkeypatch):
    _, fs = mel
    checks = []
    real = store_module._checksum_rows
    monkeypatch.setattr(store_module, "_checksum_rows", lambda data: (checks.append(1), real(data))[1])
    streamed = FeatureSet(fs.path)
    streamed.read_rows(0, 2)
    streamed.read_rows(2, 4)
    FeatureSet(fs.path).read_rows(0, 1)
    assert len(checks) == 1  # the whole array was checked once, then trusted while the file is unchanged
    with h5py.File(fs.path) as f:
        offset, size = f["features"].id.get_offset(), f["features"].id.get_storage_size()
    with open(fs.path, "r+b") as f:
        f.seek(offset + size - 4096)
        f.write(bytes(4096))  # the last rows: not among those read
    stat = os.stat(fs.path)
    os.utime(fs.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as any write would
    with pytest.raises(CorruptFeatureSetError, match="'features' array does not match its checksum"):
        FeatureSet(fs.path).read_rows(0, 2)


# --------------------------------------------------------------------------- the memory budget
def test_memory_budget_setting_default_and_dask_worker(monkeypatch):
    monkeypatch.setenv(streaming.ENV_VAR, "512M")
    assert memory_budget() == 512 * 2**20 and memory_budget("2G") == 2 * 2**30 and memory_budget(1000) == 1000
    monkeypatch.setenv(streaming.ENV_VAR, "lots")
    with pytest.raises(ParameterError, match=r"FEATURESTORE_MEMORY_BUDGET='lots' must be a positive number"):
        memory_budget()
    monkeypatch.delenv(streaming.ENV_VAR)
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    monkeypatch.delitem(sys.modules, "distributed", raising=False)
    assert memory_budget() == int(physical * 0.25)
    worker = types.SimpleNamespace(memory_manager=types.SimpleNamespace(memory_limit=2 * 2**30))
    monkeypatch.setitem(sys.modules, "distributed", types.SimpleNamespace(get_worker=lambda: worker))
    assert memory_budget() == 2**29  # a quarter of the worker's limit, not of the machine's memory


def test_prefetch_keeps_order_and_raises_the_producers_error():
    assert list(prefetch(iter(range(7)), depth=2)) == list(range(7))

    def failing():
        yield 1
        raise OSError("disk gone")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(items)
    early = prefetch(iter(range(1000)), depth=1)
    assert next(early) == 0
    early.close()  # stops the thread


def test_loader_gives_stored_rows_past_the_budget(mel, monkeypatch):
    clips, fs = mel
    ids = clips["clip_id"].to_numpy()
    assert isinstance(FeatureLoader(str(fs.path), input="image").fit(ids).transform(ids), np.ndarray)
    monkeypatch.setenv(streaming.ENV_VAR, TINY)
    X = FeatureLoader(str(fs.path), input="sequence").fit(ids).transform(ids[:5])
    assert isinstance(X, StoredRows) and X.shape == (5, 32, 40)  # (T, C * F), as adapt_input gives
    whole = FeatureLoader(str(fs.path), input="sequence", streaming=False).fit(ids).transform(ids[:5])
    np.testing.assert_array_equal(X.read(), whole)
    np.testing.assert_array_equal(X[[4, 0]].read(), whole[[4, 0]])
    with pytest.raises(MemoryBudgetError, match=r"5 rows of mel-\w+\.h5 .* take 25\.0 KiB as float32, more than "
                                                r"the memory budget of 1\.0 KiB"):
        np.asarray(X)
    with pytest.raises(ValueError, match="streaming='yes' must be 'auto', True or False"):
        FeatureLoader(str(fs.path), streaming="yes").fit(ids)


# --------------------------------------------------------------------------- torch nets
def fit_predict(fs, clips, *, streaming, estimator="cnn", **params):
    ids, labels = clips["clip_id"].to_numpy(), clips["class"].to_numpy()
    test = clips["fold"].to_numpy() == 1
    settings = {"random_state": 0, "max_epochs": 2, "device": "cpu"}
    pipeline = make_pipeline(estimator, fs, streaming=streaming, run_settings=settings, **params)
    pipeline.fit(ids[~test], labels[~test])
    return pipeline, pipeline.predict_proba(ids[test])


def test_streamed_training_is_the_in_memory_fit_with_one_batch(mel, one_torch_thread):
    clips, fs = mel
    # one batch per epoch and no per-position randomness (dropout, masks, mixup): batch order cannot matter;
    # a validation split, which the recipe holds out only when asked, streamed too
    params = {"batch_size": 64, "dropout": 0.0, "batch_augment": None, "valid_fraction": 0.2}
    memory_net, memory = fit_predict(fs, clips, streaming=False, **params)
    streamed_net, streamed = fit_predict(fs, clips, streaming=True, **params)
    model = streamed_net.named_steps["model"]
    assert isinstance(streamed_net.named_steps["features"].transform(clips["clip_id"][:2]), StoredRows)
    np.testing.assert_allclose(model.input_mean_, memory_net.named_steps["model"].input_mean_, rtol=1e-5)
    np.testing.assert_allclose(model.history[:, "valid_loss"], memory_net.named_steps["model"].history[:, "valid_loss"],
                               rtol=1e-5)
    np.testing.assert_allclose(streamed, memory, atol=1e-5)  # float rounding of a batch's order only


def test_streamed_training_is_reproducible_from_the_seed(mel, one_torch_thread):
    clips, fs = mel
    # the recipe's masks and mixup, random crops and window-averaged prediction, several batches
    _, first = fit_predict(fs, clips, streaming=True, batch_size=8, crop=24)
    _, again = fit_predict(fs, clips, streaming=True, batch_size=8, crop=24)
    _, other = fit_predict(fs, clips, streaming=True, batch_size=8, crop=24, random_state=1)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_chunk_aware_shuffle(tmp_path, monkeypatch):
    import torch

    from estimators import _stream_data
    from estimators._stream_data import BatchStream, StreamDataset

    fs = synthetic_set(tmp_path / "raw.h5", 300, (256,))  # rows of 1 KiB
    monkeypatch.setattr(_stream_data, "CHUNK_BYTES", 10 * 1024)  # chunks of 10 stored rows
    monkeypatch.setattr(_stream_data, "BUFFER_BYTES", 40 * 1024)  # 4 chunks shuffled together
    positions = np.random.default_rng(0).permutation(300)[:250]  # a fold's rows, in any order
    dataset = StreamDataset(StoredRows(fs, positions), y=np.arange(250))
    stream = BatchStream(dataset, 16, shuffle=True)

    def epoch(seed):
        torch.manual_seed(seed)
        return [b[1].numpy() for b in stream]  # y is each row's position in the dataset

    first = epoch(0)
    order = np.concatenate(first)
    assert len(first) == len(stream) == 16 and sorted(order) == list(range(250))  # each row once
    np.testing.assert_array_equal(np.concatenate(epoch(0)), order)  # from torch's seed
    assert not np.array_equal(np.concatenate(epoch(1)), order)
    chunk = positions[order] // 10  # the stored rows are the positions given to StoredRows
    per_batch = [len(set(chunk[i:i + 16])) for i in range(0, 240, 16)]
    # a batch draws from one buffer of ~5 chunks and the leftovers of the one before: mixed (more than 3
    # chunks), yet local (16 rows drawn at random from the 30 chunks would span 12.4 of them on average)
    assert 3 < np.mean(per_batch) < 9
    Xb, yb = next(iter(BatchStream(dataset, 16)))  # prediction: rows in order
    np.testing.assert_array_equal(Xb.numpy(), fs.read_at(positions[:16]))


class TinyWaveNet:
    """A waveform net of a few weights (built lazily: torch is imported by the test only)."""

    def __new__(cls, input_shape, n_classes):
        from torch import nn

        return nn.Sequential(nn.Unflatten(1, (1, input_shape[0])), nn.Conv1d(1, 4, 64, stride=32),
                             nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, n_classes))


def test_streamed_training_memory_is_bounded(tmp_path, monkeypatch, one_torch_thread):
    """tracemalloc sees numpy's arrays (the features read) but not torch's tensors (the net's weights)."""
    from estimators import _stream_data
    from estimators._torch import TorchClassifier

    fs = synthetic_set(tmp_path / "raw.h5", 1600, (4096,))  # 25 MiB of float32 rows
    monkeypatch.setattr(_stream_data, "BUFFER_BYTES", 512 * 1024)
    ids, y = fs.clip_ids, np.arange(len(fs)) % 2

    def peak(streaming_):
        net = TorchClassifier(TinyWaveNet, max_epochs=1, random_state=0, device="cpu", batch_size=32,
                              valid_fraction=0.1)
        pipeline = make_pipeline(net, fs, input="waveform", streaming=streaming_)
        tracemalloc.start()
        try:
            pipeline.fit(ids, y)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(False) > fs.nbytes  # the in-memory fit holds the rows (and their standardised copy)
    monkeypatch.setenv(streaming.ENV_VAR, "4M")  # the set exceeds it: never loaded whole
    peak(True)  # the first streamed fit also counts what Python sets up once (caches, lazy imports)
    assert peak(True) < 8 * 2**20  # the buffer, its leftovers, the prefetched batches


# --------------------------------------------------------------------------- classical models
def test_classical_summaries_stream_and_the_matrix_is_refused(mel, monkeypatch):
    clips, fs = mel
    for estimator, features in (("softmax", "stats"), ("svm", "summary")):
        _, memory = fit_predict(fs, clips, streaming=False, estimator=estimator, features=features)
        _, streamed = fit_predict(fs, clips, streaming=True, estimator=estimator, features=features)
        np.testing.assert_array_equal(streamed, memory)  # the same numbers, batch by batch
    with pytest.raises(MemoryBudgetError, match=r"SoftmaxClassifier\(features='flatten'\) needs the whole matrix "
                                                r"in memory: 24 rows .* take 120\.0 KiB as float32, more than the "
                                                r"memory budget of 1\.0 KiB \(FEATURESTORE_MEMORY_BUDGET"):
        monkeypatch.setenv(streaming.ENV_VAR, TINY)
        fit_predict(fs, clips, streaming="auto", estimator="softmax", features="flatten")


def test_cli_cv_of_a_cnn_streams_past_the_budget(urbansound_root, tmp_path, capsys, monkeypatch):
    from cli import main

    monkeypatch.setenv(streaming.ENV_VAR, TINY)
    code = main(["cv", "--estimator", "cnn", "--dataset", "urbansound8k", "--root", str(urbansound_root),
                 "--cache", str(tmp_path / "cache"), "--set", "audio.sr=8000", "--set", "audio.duration=0.5",
                 "--set", "mel.n_mels=20", "--set", "mel.n_fft=256", "--set", "mel.hop_length=128",
                 "--max-epochs", "1", "--folds", "1", "--device", "cpu", "--output", str(tmp_path / "run"),
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "accuracy" in out and (tmp_path / "run" / "run.json").exists()


# --------------------------------------------------------------------------- Dask workers
def _worker_settings():
    from distributed import get_worker

    return get_worker().memory_manager.memory_limit, memory_budget()


def test_a_dask_worker_with_a_memory_limit_streams_its_fold(mel, monkeypatch, one_torch_thread):
    pytest.importorskip("distributed")
    from distributed import get_task_stream
    from joblib import parallel_config
    from sklearn.model_selection import cross_validate

    from pipelines.cluster import connect

    clips, fs = mel
    ids, labels = clips["clip_id"].to_numpy(), clips["class"].to_numpy()
    folds = [(np.flatnonzero(clips["fold"] != k), np.flatnonzero(clips["fold"] == k)) for k in (1, 2)]
    pipeline = make_pipeline("cnn", fs, run_settings={"random_state": 0, "max_epochs": 2, "device": "cpu"},
                             batch_size=8, streaming=True)
    local = cross_validate(pipeline, ids, labels, cv=folds)["test_score"]
    monkeypatch.delenv(streaming.ENV_VAR, raising=False)
    # 2 GiB: a worker that has imported torch, scikit-learn and the optional extras already holds
    # about 520 MiB, and Dask pauses a worker (for good: the fold then waits) at 80 % of its limit
    client = connect("local", n_workers=2, memory_limit="2GiB")
    try:
        limits = {client.submit(_worker_settings, pure=False, workers=[w]).result() for w in client.nthreads()}
        assert limits == {(2 * 2**30, 2**29)}  # a worker's budget: a quarter of its memory limit
        with parallel_config(backend="dask"), get_task_stream(client) as tasks:
            remote = cross_validate(pipeline, ids, labels, cv=folds, n_jobs=2)["test_score"]
    finally:
        client.close()
    assert tasks.data  # the folds ran on the workers
    np.testing.assert_allclose(remote, local)  # streamed in the workers as here, from the same seed


def test_a_streamed_batch_with_nan_is_an_error_at_prediction_too(tmp_path):
    from estimators._stream_data import StreamDataset

    fs = synthetic_set(tmp_path / "raw.h5", 20, (16,))
    dataset = StreamDataset(StoredRows(fs, np.arange(20)))
    assert dataset.batch([0, 1])[0].shape == (2, 16)  # finite rows pass
    with h5py.File(fs.path, "r") as f:
        values = f["features"][()]
    values[3, 5] = np.nan
    nan_set = synthetic_set_from(tmp_path / "nan.h5", values)
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 of the 2 rows of a batch read from .*nan\.h5"):
        StreamDataset(StoredRows(nan_set, np.arange(20))).batch([2, 3])


def synthetic_set_from(path, values):
    """A feature set holding ``values`` as they are (NaN included), written by the store's writer."""
    ids = [f"clip{i:05d}" for i in range(len(values))]
    attrs = {"kind": "raw", "params": {}, "audio": {"sr": 8000, "duration": values.shape[-1] / 8000},
             "dataset": "synthetic", "key": "0" * 40, "version": 1}
    with FeatureSetWriter(path, attrs) as writer:
        writer.write_batch(ids, values)
        return writer.finalize(pd.DataFrame({"clip_id": ids}))
