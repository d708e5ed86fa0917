"""The TDNN: x-vector's frame layers (a context of 15 frames), statistics pooling, any clip length."""

import numpy as np
import pytest
import torch
from torch import nn

import estimators
from estimators.tdnn import FRAME_LAYERS, TDNN


def test_frame_layers_are_x_vectors_dilated_convolutions():
    module = TDNN((50, 120), 10)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.dilation[0]) for c in convs] == [
        (120, 128, 5, 1), (128, 128, 3, 2), (128, 128, 3, 3), (128, 256, 1, 1)]
    assert module.bn0.num_features == 120  # every input coefficient normalised on its own
    assert module.head[1].in_features == 2 * 256  # the mean and the standard deviation of each channel
    with pytest.raises(ValueError, match=r"channels=\(8, 8\) must give 4 widths"):
        TDNN((50, 120), 10, channels=(8, 8))
    with pytest.raises(ValueError, match=r"TDNN: clips of 1 frame\(s\) are too short"):
        module(torch.zeros(2, 1, 120))


def test_each_frame_output_sees_15_frames_of_context():
    module = TDNN((60, 6), 3, channels=(4, 4, 4, 4)).eval()
    x = torch.randn(1, 60, 6)
    moved = x.clone()
    moved[0, 30] += 5.0
    with torch.no_grad():
        changed = (module.frames(module.bn0(x.transpose(1, 2))) != module.frames(module.bn0(moved.transpose(1, 2))))
    frames = np.flatnonzero(changed[0].any(dim=0).numpy())
    context = sum(d * (k // 2) for k, d in FRAME_LAYERS)
    assert context == 7 and frames.min() == 30 - context and frames.max() == 30 + context


def test_tdnn_learns_and_predicts_clips_of_any_length():
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(3), 10)
    X = rng.standard_normal((30, 40, 6)).astype(np.float32)
    X[:, :, 0] += 2.0 * codes[:, None]  # a class-dependent first coefficient
    y = np.array(["a", "b", "c"])[codes]
    net = estimators.build("tdnn", channels=(8, 8, 8, 8), embedding_size=8, max_epochs=15, lr=1e-2,
                           batch_size=8, random_state=0, n_threads=1).fit(X, y)
    assert net.score(X, y) > 0.8
    assert net.predict_proba(X[:, :23]).shape == (30, 3)


def test_defaults_train_as_the_recurrent_nets_do():
    tdnn, lstm = estimators.build("tdnn"), estimators.build("lstm")
    shared = ("optimizer", "max_epochs", "lr_schedule", "warmup_epochs", "label_smoothing", "valid_fraction",
              "batch_augment", "lr", "batch_size")
    assert {k: getattr(tdnn, k) for k in shared} == {k: getattr(lstm, k) for k in shared}
    assert (tdnn.channels, tdnn.embedding_size, tdnn.dropout) == ((128, 128, 128, 256), 128, 0.0)
