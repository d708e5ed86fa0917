"""Shared fixtures: tiny real audio files in the documented data set layouts, made per test."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

FSDD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fsdd" / "recordings"
CLASSES = {"low": 220.0, "mid": 660.0, "high": 1760.0}


def tone(freq, *, seconds=0.5, sr=16000, seed=0, channels=1):
    """A noisy tone with a random phase and gain: float32 (n,) or (n, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = freq * rng.uniform(0.9, 1.1)
    y = rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    y = y + 0.02 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def write_clip(path, label, seed, *, sr=16000, seconds=0.5, channels=1, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(CLASSES[label], seconds=seconds, sr=sr, seed=seed, channels=channels), sr, subtype=subtype)


def load_benchmark(name):
    """The script ``benchmarks/<name>.py`` imported as a module (``benchmarks/`` is not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def urbansound_root(tmp_path):
    """UrbanSound8K layout: 3 classes x 3 folds x 2 recordings x 2 slices (36 clips)."""
    root = tmp_path / "UrbanSound8K"
    rows, seed = [], 0
    for class_id, label in enumerate(CLASSES):
        for fold in (1, 2, 3):
            for recording in range(2):
                fs_id = 1000 * (class_id + 1) + 10 * fold + recording
                for slice_ in range(2):
                    name = f"{fs_id}-{class_id}-0-{slice_}.wav"
                    write_clip(root / "audio" / f"fold{fold}" / name, label, seed, sr=22050, channels=2)
                    rows.append({"slice_file_name": name, "fsID": fs_id, "start": slice_ * 0.5,
                                 "end": slice_ * 0.5 + 0.5, "salience": 1, "fold": fold,
                                 "classID": class_id, "class": label})
                    seed += 1
    (root / "metadata").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
    return root


@pytest.fixture
def esc50_root(tmp_path):
    """ESC-50 layout: 3 categories (2 in ESC-10) x 5 folds x 2 takes (30 clips)."""
    root = tmp_path / "ESC-50"
    rows, seed = [], 0
    for target, label in enumerate(CLASSES):
        for fold in range(1, 6):
            src = f"{target}{fold}0"
            for take in "AB":
                name = f"{fold}-{src}-{take}-{target}.wav"
                write_clip(root / "audio" / name, label, seed)
                rows.append({"filename": name, "fold": fold, "target": target, "category": label,
                             "esc10": label != "mid", "src_file": src, "take": take})
                seed += 1
    (root / "meta").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "meta" / "esc50.csv", index=False)
    return root


@pytest.fixture
def folder_root(tmp_path):
    """A folder per class, 4 FLAC/WAV files each, names ``<n>_<speaker>_<i>``."""
    root = tmp_path / "classes"
    seed = 0
    for label in CLASSES:
        for i in range(4):
            ext = "flac" if i % 2 else "wav"
            write_clip(root / label / f"{i}_{'ab'[i % 2]}spk_{i}.{ext}", label, seed)
            seed += 1
    return root


@pytest.fixture
def store(tmp_path):
    from featurestore import FeatureStore

    return FeatureStore(tmp_path / "cache")


@pytest.fixture
def one_torch_thread():
    """torch on one thread during a test (small nets run faster so, and tests stay repeatable)."""
    import torch  # here, not at the top: most tests never import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
