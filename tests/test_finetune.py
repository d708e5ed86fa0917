"""Fine-tuning CNN14 (``panns``, PANNsClassifier) from a tiny checkpoint in the published layout."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

import estimators
from estimators.panns import PANNsClassifier
from featurestore.features import _cnn14

SETTINGS = {"sr": 8000, "sample_rate": 8000, "hop_length": 80, "fmax": 4000.0}
WIDTHS = (2, 4, 4, 8, 8, 8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("finetune") / "Cnn14_8k_tiny.pth"
    _cnn14.write_random_checkpoint(path, sr=8000, n_fft=256, hop_length=80, fmax=4000.0, widths=WIDTHS,
                                   embedding_size=8, n_classes=527, seed=4)
    return path


@pytest.fixture(scope="module")
def data():
    """12 waveforms of 0.5 s at 8 kHz, 3 classes of tones."""
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    y = np.repeat(["low", "mid", "high"], 4)
    f0 = np.repeat([200.0, 800.0, 2400.0], 4)[:, None]
    X = (0.5 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal((12, 4000))).astype(np.float32)
    return X, y


def fit(checkpoint, data, freeze, **params):
    settings = {"max_epochs": 2, "batch_size": 4, "lr": 1e-2, "random_state": 0, "n_threads": 1, **SETTINGS, **params}
    net = PANNsClassifier(checkpoint=str(checkpoint), freeze=freeze, **settings)
    return net.fit(*data)


def changed(net, state):
    """Names of the checkpoint's tensors that the fitted network no longer holds as they were."""
    mine = net.module_.base.state_dict()
    return {k for k, v in state.items() if k in mine and not torch.equal(mine[k], v)}


@pytest.fixture(scope="module")
def state(checkpoint):
    return torch.load(checkpoint, weights_only=True)["model"]


def test_freeze_all_trains_only_the_new_head(checkpoint, data, state):
    net = fit(checkpoint, data, "all")
    assert changed(net, state) == set()  # weights and batch-norm statistics as loaded
    assert net.module_.fc_transfer.out_features == 3 and not hasattr(net.module_.base, "fc_audioset")
    optimised = sum(p.numel() for g in net.optimizer_.param_groups for p in g["params"])
    assert optimised == 8 * 3 + 3  # the head's weight and bias only
    assert net.predict_proba(data[0]).shape == (12, 3)


def test_freeze_partial_trains_the_last_blocks_and_fc1(checkpoint, data, state):
    net = fit(checkpoint, data, "partial")
    touched = {k.split(".")[0] for k in changed(net, state)}
    assert touched == {"conv_block5", "conv_block6", "fc1"}


def test_freeze_none_trains_everything_but_the_fixed_front_end(checkpoint, data, state):
    net = fit(checkpoint, data, "none")
    touched = {k.split(".")[0] for k in changed(net, state)}
    assert touched == {"bn0", *(f"conv_block{i}" for i in range(1, 7)), "fc1"}
    assert not net.module_.base.logmel_extractor.melW.requires_grad


def test_the_network_starts_from_the_checkpoint(checkpoint, data, state):
    net = fit(checkpoint, data, "all", max_epochs=1)
    with torch.inference_mode():
        start = _cnn14.load_checkpoint(checkpoint, sr=8000, hop_length=80, fmin=50.0, fmax=4000.0)
        x = torch.from_numpy(data[0][:2])
        np.testing.assert_array_equal(net.module_.base.eval().embed(x).numpy(), start.embed(x).numpy())


def test_training_from_scratch_needs_freeze_none(data):
    net = PANNsClassifier(freeze="none", widths=WIDTHS, embedding_size=8, max_epochs=1, random_state=0,
                          n_threads=1, **SETTINGS).fit(*data)
    assert net.module_.base.fc1.out_features == 8
    with pytest.raises(ValueError, match="freeze='partial' keeps random weights fixed: give a checkpoint"):
        PANNsClassifier(widths=WIDTHS, embedding_size=8, max_epochs=1, **SETTINGS).fit(*data)


@pytest.mark.parametrize("params, match", [
    ({"freeze": "most"}, "freeze='most' must be one of 'all', 'partial', 'none'"),
    ({"sr": 16000}, "needs waveforms at sample_rate=8000 Hz, the checkpoint's; got sr=16000"),
    ({"widths": (4, 4, 4, 8, 8, 8)}, r"widths=\(4, 4, 4, 8, 8, 8\) differ from the checkpoint's"),
    ({"embedding_size": 2048}, "embedding_size=2048 differs from the checkpoint's 8"),
    ({"fmax": 3000.0}, "mel filterbank .* not the one of sample_rate=8000, fmin=50.0, fmax=3000.0"),
])
def test_bad_settings_are_errors_naming_them(checkpoint, data, params, match):
    with pytest.raises(ValueError, match=match):
        PANNsClassifier(checkpoint=str(checkpoint), max_epochs=1, **{**SETTINGS, **params}).fit(*data)


def test_it_is_a_registered_estimator_whose_freeze_a_grid_can_tune(checkpoint):
    spec = estimators.get_spec("panns")
    assert spec.input == "waveform" and spec.feature == "raw" and "freeze" in spec.param_grid
    net = estimators.build("panns", checkpoint=str(checkpoint), freeze="all")
    other = clone(net).set_params(freeze="none")
    assert net.freeze == "all" and other.freeze == "none" and other.checkpoint == str(checkpoint)
