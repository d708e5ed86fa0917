"""The plain-torch PiczakNet baseline of ``benchmarks/recipes.py`` runs, on tiny synthetic clips."""

import numpy as np
import pytest

from conftest import CLASSES, load_benchmark, write_clip  # pytest puts tests/ on the path (no __init__.py)


@pytest.fixture(scope="module")
def recipes():
    pytest.importorskip("torch")
    return load_benchmark("recipes")


def test_piczak_baseline_segments_trains_and_votes(recipes, tmp_path, one_torch_thread):
    paths, labels = [], []
    for k, label in enumerate(sorted(CLASSES)):
        for i in range(4):
            path = tmp_path / f"{label}{i}.wav"
            write_clip(path, label, seed=10 * k + i, sr=8000, seconds=0.3 if i == 0 else 0.6)
            paths.append(str(path))
            labels.append(label)
    images = recipes.piczak_features(paths, sr=8000, n_mels=20, n_fft=256, hop_length=64, frames=21)
    assert all(image.shape[:2] == (2, 20) and image.dtype == np.float32 for image in images)
    assert min(image.shape[-1] for image in images) >= 21  # the 0.3 s clips are padded to one segment
    segments, owner = recipes.piczak_segments(images, [0, 1], frames=21, hop=10)
    n_frames = images[0].shape[-1]
    assert segments.shape[1:] == (2, 20, 21) and (owner == 0).sum() == (n_frames - 21) // 10 + 1
    y = np.array(labels)
    train, test = np.array([1, 2, 3, 5, 6, 7, 9, 10, 11]), np.array([0, 4, 8])
    prediction = recipes.piczak_fold(images, y, train, test, n_mels=20, frames=21, hop_frames=10, n_filters=4,
                                     n_hidden=16, epochs=2, batch_size=8)
    assert prediction.shape == (3,) and set(prediction) <= set(CLASSES)
    again = recipes.piczak_fold(images, y, train, test, n_mels=20, frames=21, hop_frames=10, n_filters=4,
                                n_hidden=16, epochs=2, batch_size=8)
    assert list(prediction) == list(again)  # seeded
