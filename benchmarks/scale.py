"""Past the size of memory (issue 13): a store of 100,000 one-second clips, trained from batch by batch.

Builds, directly through the store's writer, a synthetic store of ``--clips`` one-second 16 kHz clips:
a ``raw`` set (16,000 float32 samples a clip: 6.4 GB at 100,000 clips) and a ``mel`` set (64 bands x
32 frames, float32: 0.8 GB), then measures

(a) one training epoch of a raw-waveform net (``panns``: CNN14's architecture, narrow, random weights)
    and of a spectrogram net (``cnn``), each
      - in memory on a subset that fits (``--subset`` clips),
      - streamed from the store on the same subset (the throughput ratio to compare),
      - streamed from the store on every clip,
    each in a process of its own, whose peak resident memory (Linux's ``VmHWM``: see
    :func:`_peak_rss_mb`) is printed with its samples/s; streamed runs are forced
    (``streaming=True``) whatever the memory budget;
(b) the store's write throughput (the two sets above) and extraction throughput: the project's
    ``extract`` of ``--extract-clips`` WAV files into ``mel``, on 1 and 2 processes;
(c) ``cache list`` with ``--many-sets`` small sets beside the large ones;
(d) a CV fold on a Dask LocalCluster of 2 workers whose memory limit (``--worker-memory``) is below
    the raw set's size, training on ``--dask-clips`` of its clips and scoring the rest of them.

Run it under ``nice`` on a quiet machine; the store goes to ``--dir`` (default: a temporary folder,
removed at the end unless ``--keep``)::

    python benchmarks/scale.py                   # full size: ~8 GB of disk, about an hour on 2 cores
    python benchmarks/scale.py --clips 20000     # a quick run

Training data are random (the labels too): only speeds and memory mean anything here.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SR = 16000
MEL_SHAPE = (64, 32)  # 64 bands, 32 frames: one second at hop 512
N_CLASSES = 10
NETS = {
    "raw": ("panns", {"sample_rate": SR, "widths": (8, 16, 32, 64, 64, 64), "embedding_size": 64, "freeze": "none",
                      "fmax": 8000.0}),
    "mel": ("cnn", {}),
}
WRITE_BATCH = 2000


def clip_ids(n):
    return np.array([f"clip{i:06d}" for i in range(n)])


def labels(n):
    """Random labels of ``n`` clips (the same for every run)."""
    return np.random.default_rng(0).integers(0, N_CLASSES, n)


def set_path(root, kind):
    return Path(root) / "cache" / "features" / "synthetic-0000000000" / f"{kind}-{'0' * 12}.h5"


def build_set(root, kind, n_clips, shape, seed=0):
    """Write a synthetic feature set of ``n_clips`` rows through the store's writer; its path and seconds."""
    from featurestore.store import FeatureSetWriter

    path = set_path(root, kind)
    attrs = {"kind": kind, "params": {}, "audio": {"sr": SR, "duration": 1.0}, "dataset": "synthetic",
             "key": kind.ljust(40, "0"), "version": 1}
    rng = np.random.default_rng(seed)
    ids = clip_ids(n_clips)
    start = time.perf_counter()
    with FeatureSetWriter(path, attrs) as writer:
        for first in range(0, n_clips, WRITE_BATCH):
            n = min(WRITE_BATCH, n_clips - first)
            writer.write_batch(ids[first:first + n], rng.standard_normal((n, *shape), dtype=np.float32))
        writer.finalize(pd.DataFrame({"clip_id": ids}))
    return path, time.perf_counter() - start


def build_many_sets(root, n_sets):
    """``n_sets`` small sets (10 rows each) in the store, for ``cache list``."""
    from featurestore.store import FeatureSetWriter

    folder = Path(root) / "cache" / "features" / "small-0000000000"
    ids = clip_ids(10)
    for i in range(n_sets):
        attrs = {"kind": "mfcc", "params": {"n_mfcc": i}, "audio": {"sr": SR, "duration": 1.0}, "dataset": "small",
                 "key": f"{i:040d}", "version": 1}
        with FeatureSetWriter(folder / f"mfcc-{i:012d}.h5", attrs) as writer:
            writer.write_batch(ids, np.zeros((10, 20, 32), np.float32))
            writer.finalize(pd.DataFrame({"clip_id": ids}))


# --------------------------------------------------------------------------- measurements in a child process
def child_train(path, net, n_rows, streaming):
    """One epoch of ``net`` on the first ``n_rows`` rows of the set at ``path``; prints a JSON line."""
    import torch

    from pipelines import make_pipeline

    name, params = NETS[net]
    ids = clip_ids(n_rows)
    pipeline = make_pipeline(name, str(path), streaming=streaming, random_state=0, max_epochs=1, device="cpu",
                             valid_fraction=None, batch_size=32, n_threads=torch.get_num_threads(), **params)
    start = time.perf_counter()
    pipeline.fit(ids, labels(n_rows))
    total = time.perf_counter() - start
    epoch = float(pipeline.named_steps["model"].history[-1]["dur"])
    print(json.dumps({"net": name, "rows": n_rows, "streaming": streaming, "epoch_s": epoch, "fit_s": total,
                      "samples_per_s": n_rows / epoch, "peak_rss_mb": _peak_rss_mb()}))


def child_dask(path, n_rows, worker_memory):
    """A CV fold of the raw net on ``n_rows`` clips of the raw set on 2 memory-limited Dask workers."""
    from distributed import get_task_stream
    from joblib import parallel_config
    from sklearn.model_selection import cross_validate

    from pipelines import make_pipeline
    from pipelines.cluster import connect

    name, params = NETS["raw"]
    ids, y = clip_ids(n_rows), labels(n_rows)
    test = np.arange(n_rows) % 5 == 0
    pipeline = make_pipeline(name, str(path), random_state=0, max_epochs=1, device="cpu", valid_fraction=None,
                             batch_size=32, n_threads=1, **params)
    client = connect("local", n_workers=2, memory_limit=worker_memory)
    try:
        start = time.perf_counter()
        with parallel_config(backend="dask"), get_task_stream(client) as tasks:
            scores = cross_validate(pipeline, ids, y, cv=[(np.flatnonzero(~test), np.flatnonzero(test))], n_jobs=2)
        seconds = time.perf_counter() - start
        peaks = client.run(_peak_rss_mb)
        limits = client.run(lambda dask_worker: dask_worker.memory_manager.memory_limit)
    finally:
        client.close()
    print(json.dumps({"rows": n_rows, "seconds": seconds, "accuracy": float(scores["test_score"][0]),
                      "tasks": len(tasks.data), "worker_limit_mb": max(limits.values()) / 2**20,
                      "worker_peak_rss_mb": max(peaks.values())}))


def _peak_rss_mb():
    """This process's peak resident memory, in MB, from the kernel's accounting.

    Linux's ``VmHWM`` (of this program's memory since it started), else ``ru_maxrss``. ``ru_maxrss``
    alone is not enough for a child process on Linux: it keeps the peak of the process it was forked
    from (here the one that wrote the 6.4 GB store), whatever the child itself uses.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(*args, env=None):
    """Run this script's ``--child`` mode in a new process; its JSON line, parsed."""
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- extraction
def extraction(root, n_clips):
    """Clips/s of the project's ``extract`` of ``n_clips`` 1 s WAVs into ``mel``, with 1 and 2 processes."""
    import soundfile as sf

    from featurestore import FeatureStore, extract, load_dataset

    folder = Path(root) / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n_clips):
        sf.write(folder / f"c{i:05d}.wav", 0.1 * rng.standard_normal(SR), SR, subtype="PCM_16")
        rows.append({"path": f"audio/c{i:05d}.wav", "label": f"c{i % N_CLASSES}", "fold": i % 5 + 1})
    pd.DataFrame(rows).to_csv(Path(root) / "manifest.csv", index=False)
    ds = load_dataset("csv", Path(root) / "manifest.csv")
    speeds = {}
    for n_jobs in (1, 2):
        store = FeatureStore(Path(root) / f"extract-cache-{n_jobs}")
        start = time.perf_counter()
        extract(ds, {"mel": {"n_mels": 64, "n_fft": 1024, "hop_length": 512}}, store=store,
                audio={"sr": SR, "duration": 1.0}, n_jobs=n_jobs, progress=False)
        speeds[n_jobs] = n_clips / (time.perf_counter() - start)
    return speeds


def cache_list_seconds(root):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(REPO / "cli.py"), "cache", "list", "--cache", str(Path(root) / "cache")],
                         capture_output=True, text=True, check=True)
    return time.perf_counter() - start, len(out.stdout.splitlines())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=100_000, help="clips of the synthetic store (default 100000)")
    parser.add_argument("--subset", type=int, default=4000, help="clips of the in-memory comparison (default 4000)")
    parser.add_argument("--extract-clips", type=int, default=2000, help="WAV files extracted (default 2000)")
    parser.add_argument("--many-sets", type=int, default=500, help="small sets for `cache list` (default 500)")
    parser.add_argument("--dask-clips", type=int, default=10_000, help="clips of the Dask CV fold (default 10000)")
    parser.add_argument("--worker-memory", default="2GiB", help="memory limit of each Dask worker (default 2GiB)")
    parser.add_argument("--nets", default="raw,mel", help="nets to train: raw, mel (default both)")
    parser.add_argument("--dir", type=Path, help="where the store goes (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the store")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, *rest = args.child
        if mode == "train":
            return child_train(Path(rest[0]), rest[1], int(rest[2]), rest[3] == "True")
        return child_dask(Path(rest[0]), int(rest[1]), rest[2])

    root = Path(args.dir or tempfile.mkdtemp(prefix="scale-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"store in {root}; {os.cpu_count()} cores; {args.clips} clips of 1 s at {SR} Hz")
    try:
        paths = {}
        for kind, shape in (("raw", (SR,)), ("mel", MEL_SHAPE)):
            paths[kind], seconds = build_set(root, kind, args.clips, shape)
            size = paths[kind].stat().st_size
            print(f"(b) wrote the {kind} set: {size / 1e9:.2f} GB in {seconds:.1f} s = {size / 1e6 / seconds:.0f} MB/s, "
                  f"{args.clips / seconds:.0f} clips/s (batches, then the .h5 and its checksum)")
        speeds = extraction(root / "extract", args.extract_clips)
        print(f"(b) extraction of {args.extract_clips} 1 s WAVs into mel: {speeds[1]:.0f} clips/s on 1 process, "
              f"{speeds[2]:.0f} clips/s on 2")
        build_many_sets(root, args.many_sets)
        seconds, lines = cache_list_seconds(root)
        print(f"(c) cache list of {args.many_sets + 2} sets: {seconds:.2f} s ({lines} lines)")
        subset = min(args.subset, args.clips)
        for kind in args.nets.split(","):
            runs = [(subset, False), (subset, True), (args.clips, True)]
            results = [run_child("train", paths[kind], kind, n, streaming) for n, streaming in runs]
            for r in results:
                print(f"(a) {r['net']:6s} {r['rows']:7d} clips {'streamed ' if r['streaming'] else 'in memory'}: "
                      f"{r['samples_per_s']:6.0f} samples/s (epoch {r['epoch_s']:.0f} s, fit {r['fit_s']:.0f} s), "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB")
            ratio = results[1]["samples_per_s"] / results[0]["samples_per_s"]
            print(f"(a) {results[0]['net']}: streamed / in memory on {subset} clips: {ratio:.2f}")
        dask = run_child("dask", paths["raw"], min(args.dask_clips, args.clips), args.worker_memory)
        print(f"this process (the store's writer, extraction, cache list): peak RSS {_peak_rss_mb():.0f} MB")
        print(f"(d) Dask CV fold of panns on {dask['rows']} clips of the {paths['raw'].stat().st_size / 2**30:.1f} GiB "
              f"raw set, 2 workers limited to {dask['worker_limit_mb']:.0f} MiB: done in {dask['seconds']:.0f} s, "
              f"worker peak RSS {dask['worker_peak_rss_mb']:.0f} MB, accuracy {dask['accuracy']:.3f} (random labels: chance is 0.1)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
