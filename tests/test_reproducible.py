"""A feature is a function of the clip and the parameters alone, bit for bit.

Every registered kind, with its default parameters, must give the same bits for a clip whatever the
batch around it, whatever the threads computing it, and whatever the BLAS and SIMD kernels the CPU
offers (emulated here by forcing OpenBLAS's oldest kernels and turning numpy's SIMD dispatch off in
a child process). Resumed and distributed extractions are checked in test_store.py and
test_cluster.py.
"""

import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from featurestore import features

SR = 8000
N_CLIPS = 64
REPO = Path(__file__).resolve().parents[1]
# Kinds computable from their parameters alone; those that read a checkpoint (FILE_PARAMS) are
# checked in tests/test_embeddings.py, with checkpoints that the tests write.
KINDS = [kind for kind in features.available() if not features.file_params(kind)]


@pytest.fixture(scope="module")
def clips():
    """64 clips of 0.25 s at 8 kHz, float32 (64, 2000): noisy chirps from -100 dB to 0 dB, a few silent."""
    rng = np.random.default_rng(12)
    t = np.arange(SR // 4) / SR
    f0 = rng.uniform(100, 3000, N_CLIPS)[:, None]
    level = 10.0 ** rng.uniform(-5, 0, N_CLIPS)[:, None]
    y = level * (np.sin(2 * np.pi * (f0 + 2000 * t) * t) + 0.1 * rng.standard_normal((N_CLIPS, len(t))))
    y[::20] = 0.0
    return y.astype(np.float32)


def _in_batches(kind, clips, batch_size):
    params = features.resolve_params(kind)
    parts = [
        features.compute(kind, clips[i : i + batch_size], sr=SR, **params)
        for i in range(0, len(clips), batch_size)
    ]
    return np.concatenate(parts)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_bit_identical_across_batch_sizes(kind, clips):
    whole = _in_batches(kind, clips, N_CLIPS)
    assert whole.dtype == np.float32 and len(whole) == N_CLIPS
    for batch_size in (1, 3):
        np.testing.assert_array_equal(_in_batches(kind, clips, batch_size), whole)


def test_threads_and_a_shared_memo_do_not_change_the_bits(clips):
    kinds = KINDS
    alone = {kind: _in_batches(kind, clips, 8) for kind in kinds}

    def all_kinds(batch):  # as extraction computes a batch: every kind, sharing one memo
        memo = features.Memo()
        return {kind: features.compute(kind, batch, sr=SR, memo=memo) for kind in kinds}

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(all_kinds, np.split(clips, 8)))
    for kind in kinds:
        np.testing.assert_array_equal(np.concatenate([r[kind] for r in results]), alone[kind])


_CHILD = """
import json, sys
import numpy as np
from featurestore import features
clips = np.load(sys.argv[1])
out = {kind: features.compute(kind, clips, sr=%d) for kind in features.available() if not features.file_params(kind)}
np.savez(sys.argv[2], **out)
import threadpoolctl
print(json.dumps([i.get("architecture") for i in threadpoolctl.threadpool_info()]))
""" % SR


def _simd_found():
    return np.show_config(mode="dicts")["SIMD Extensions"]["found"]


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS core names are x86's")
@pytest.mark.skipif(
    not any(i.get("internal_api") == "openblas" for i in threadpoolctl.threadpool_info()),
    reason="needs numpy/scipy on OpenBLAS (OPENBLAS_CORETYPE)",
)
def test_other_cpu_kernels_give_the_same_bits(clips, tmp_path):
    """Force OpenBLAS's Prescott kernels, one thread, and numpy without its SIMD extensions.

    Before features were computed clip by clip without BLAS, these kernels changed mel and mfcc
    (BLAS products, savgol's least squares), stft (numpy's AVX-512 float32 log10) and mrp.
    """
    np.save(tmp_path / "clips.npy", clips)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_CORETYPE": "Prescott",
        "OPENBLAS_NUM_THREADS": "1",
        "NPY_DISABLE_CPU_FEATURES": " ".join(_simd_found()),
    }
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "clips.npy"), str(tmp_path / "out.npz")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == 0, child.stderr
    architectures = json.loads(child.stdout.strip().splitlines()[-1])
    assert "Prescott" in architectures or "Katmai" in architectures  # the kernels really changed
    other = np.load(tmp_path / "out.npz")
    assert sorted(other.files) == sorted(KINDS)
    for kind in KINDS:
        np.testing.assert_array_equal(other[kind], features.compute(kind, clips, sr=SR), err_msg=kind)
