"""Learnable front ends (estimators/_frontend.py, estimators/deepfourier.py).

The learnable mel starts at the store's ``mel`` feature; freezing schedules (``freeze_front_end``,
the IceBreaker phases) leave frozen weights bit-identical while gradients still flow through them;
spectrogram forcing brings a front end closer to its normalised mel targets. Tiny seeded
synthetic clips, one torch thread.
"""

import pickle
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, EarlyStopping

import estimators
from estimators import _frontend
from estimators._frontend import FrontEndClassifier, mel_targets, normalised, target_statistics
from estimators._phases import FreezeSchedule, PhasedEarlyStopping
from estimators._torch import TorchClassifier
from estimators.deepfourier import LearnableMel
from estimators.mstnet import MSTNet
from featurestore import features
from featurestore.audio import load_clip

FSDD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fsdd" / "recordings"

#: Largest difference in dB allowed between LearnableMel at initialisation and the store's mel.
#: Measured: at most 1.5e-3 dB on the tones (with and without silence) of the cases below over 3
#: seeds, 6e-4 dB on 300 FSDD recordings at 8 and 22.05 kHz (float32 convolution against the
#: store's float32 FFT; the largest differences are in bins near the 80 dB floor).
TOL_DB = 0.01
FRONT_END_NETS = ("deepfourier", "mstnet", "heurinet")
LABELS = np.array(["high", "low", "mid"])
FREQS = {"low": 300.0, "mid": 900.0, "high": 2400.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tones(n_samples, *, n_per_class=6, sr=8000, seed=0, silence=False):
    """Noisy tones of 3 classes (by frequency), random gain and phase: X float32, y str.

    With ``silence``, every other clip is zero before a random onset and after a random offset.
    """
    rng = np.random.default_rng(seed)
    y = np.repeat(list(FREQS), n_per_class)
    t = np.arange(n_samples) / sr
    X = np.empty((len(y), n_samples), dtype=np.float32)
    for i, label in enumerate(y):
        f = FREQS[label] * rng.uniform(0.9, 1.1)
        clip = rng.uniform(0.05, 0.9) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        clip += rng.uniform(1e-4, 0.05) * rng.standard_normal(n_samples)
        if silence and i % 2:
            clip[: rng.integers(1, n_samples // 3)] = 0
            clip[n_samples - rng.integers(1, n_samples // 4):] = 0
        X[i] = clip
    return X, y


def tiny(name, **params):
    """Registry net ``name`` with its SPEC's test parameters (and ``params``), seeded."""
    spec = estimators.get_spec(name)
    return spec.build(**{"random_state": 0, **spec.test_params, **params})


def data(name, **kwargs):
    return tones(estimators.get_spec(name).test_shape[0], **kwargs)


class Snapshots(Callback):
    """Parameters at the start of the fit (after forcing and phase 0) and after each epoch;
    which parameters received a gradient in each epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states_ = [self._state(net)]
        self.with_grad_ = []

    def on_epoch_begin(self, net, **kwargs):
        self.with_grad_.append(set())

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.with_grad_[-1].update(name for name, p in named_parameters
                                   if p.grad is not None and p.grad.abs().sum() > 0)

    def on_epoch_end(self, net, **kwargs):
        self.states_.append(self._state(net))

    @staticmethod
    def _state(net):
        return {name: p.detach().clone() for name, p in net.module_.named_parameters()}


def changed(before, after, names):
    """Names among ``names`` whose values differ between two snapshots."""
    return {name for name in names if not torch.equal(before[name], after[name])}


def fit_recorded(name, X, y, **params):
    record = Snapshots()
    net = tiny(name, valid_fraction=None, callbacks=[("snapshots", record)], **params).fit(X, y)
    return net, record


# --------------------------------------------------------------------------- the learnable mel
MEL_CASES = {
    "defaults at 22.05 kHz": dict(sr=22050, n_samples=16000),
    "8 kHz, 256-point frames, fmin and fmax": dict(sr=8000, n_samples=3000, n_fft=256,
                                                    hop_length=128, n_mels=16, fmin=100.0,
                                                    fmax=3500.0),
    "odd hop, 40 bands": dict(sr=16000, n_samples=7001, n_fft=512, hop_length=200, n_mels=40),
}


def store_mel(X, sr, **mel):
    return features.get("mel").compute(X, sr=sr, delta=False, **mel)[:, 0]


def learnable_mel(X, sr, **mel):
    with torch.no_grad():
        return LearnableMel(sr=sr, **mel)(torch.as_tensor(X)).numpy()


@pytest.mark.parametrize("silence", [False, True], ids=["tones", "silence-padded"])
@pytest.mark.parametrize("case", MEL_CASES)
def test_learnable_mel_is_the_store_mel_at_init(case, silence):
    params = dict(MEL_CASES[case])
    sr, n_samples = params.pop("sr"), params.pop("n_samples")
    X, _ = tones(n_samples, n_per_class=2, sr=sr, silence=silence)
    X[0] = 0  # an all-silent clip: -100 dB everywhere
    expected = store_mel(X, sr, **params)
    got = learnable_mel(X, sr, **params)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_DB)
    assert (got[0] == -100).all()


def test_learnable_mel_matches_fsdd_recordings():
    if not FSDD.is_dir():
        pytest.skip(f"the Free Spoken Digit Dataset is not at {FSDD}")
    paths = sorted(FSDD.glob("*.wav"))[::150]  # 20 recordings, all digits and speakers
    X = np.stack([load_clip(path, sr=22050, duration=1.0) for path in paths])  # zero-padded
    np.testing.assert_allclose(learnable_mel(X, 22050), store_mel(X, 22050), rtol=0, atol=TOL_DB)


def test_learnable_mel_power_1_is_librosa_amplitude_to_db_of_magnitude_mel():
    import librosa

    X, _ = tones(4000, n_per_class=1, sr=8000)
    S = librosa.feature.melspectrogram(y=X, sr=8000, n_fft=256, hop_length=128, n_mels=16,
                                       power=1.0)
    expected = librosa.amplitude_to_db(S, ref=1.0, amin=1e-5, top_db=None)
    expected = np.maximum(expected, expected.max(axis=(1, 2), keepdims=True) - 80)
    got = learnable_mel(X, 8000, n_fft=256, hop_length=128, n_mels=16, power=1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_DB)


def test_learnable_mel_layers_are_trainable_and_differentiable():
    mel = LearnableMel(sr=8000, n_fft=256, hop_length=128, n_mels=16)
    assert {name for name, p in mel.named_parameters() if p.requires_grad} == {
        "fourier.weight", "filterbank.weight"}
    X, _ = tones(2000, n_per_class=1)
    X[0, :500] = 0  # silent frames: no NaN gradient from the log or the floor
    for power in (1, 2):
        mel = LearnableMel(sr=8000, n_fft=256, hop_length=128, n_mels=16, power=power)
        mel(torch.as_tensor(X)).mean().backward()
        for p in mel.parameters():
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_deepfourier_scales_its_front_end_like_the_forcing_targets():
    X, y = data("deepfourier")
    net = tiny("deepfourier", sr=8000, valid_fraction=None, freeze_front_end=True).fit(X, y)
    M = mel_targets(X, sr=8000, n_frames=21, n_mels=16, n_fft=256, hop_length=128)
    stats = target_statistics(M)
    scaler = net.module_.front_end.scaler
    assert float(scaler.shift) == pytest.approx(stats[0], abs=1e-3)
    assert float(scaler.scale) == pytest.approx(stats[1], abs=1e-3)
    with torch.no_grad():
        out = net.module_.front_end(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(out, normalised(M, stats), rtol=0, atol=TOL_DB / stats[1])
    assert net.get_params()["standardize"] is False and net.input_mean_ is None


# ------------------------------------------------------------------------- defaults unchanged
def test_default_front_end_classifier_is_torch_classifier():
    X, y = data("mstnet")
    params = {**estimators.get_spec("mstnet").test_params, "random_state": 0, "clip_grad_norm": 3.0}
    ours = estimators.build("mstnet", **params).fit(X, y)
    knobs = type(ours).module_params  # a plain TorchClassifier takes them as module__*
    plain = TorchClassifier(MSTNet, **{f"module__{k}" if k in knobs else k: v for k, v in params.items()}).fit(X, y)
    assert isinstance(ours, FrontEndClassifier)
    np.testing.assert_array_equal(ours.predict_proba(X), plain.predict_proba(X))
    assert ours.history[:, "valid_loss"] == plain.history[:, "valid_loss"]


# ------------------------------------------------------------------------- freezing schedules
@pytest.mark.parametrize("name", FRONT_END_NETS)
def test_icebreaker_phases_freeze_the_backbone_then_all_but_its_first_conv(name):
    X, y = data(name)
    net, record = fit_recorded(name, X, y, icebreaker=[0, 2, 2, 1], max_epochs=50)
    assert len(net.history) == 5  # p1 + p2 + p3; max_epochs is not used
    assert net.history[:, "phase"] == [1, 1, 2, 2, 3]
    groups = net.parameter_groups()
    front, first, rest = (set(groups[key]) for key in
                          ("front_end", "backbone_first_conv", "backbone_rest"))
    assert front and first and rest
    backbone = type(net.module_).backbone_name
    assert all(n.startswith(f"{backbone}.") for n in first | rest)
    start, s = record.states_[0], record.states_
    # phase 1: the backbone is bit-identical, the front end moves
    assert changed(start, s[2], first | rest) == set()
    assert changed(start, s[2], front) == front
    # phase 2: the backbone's first convolution moves too, the rest of the backbone does not
    assert changed(s[2], s[4], first) == first
    assert changed(start, s[4], rest) == set()
    # phase 3: everything moves
    assert changed(s[4], s[5], rest) == rest
    # gradients reach the front end through the frozen backbone; none are computed for it
    assert front <= record.with_grad_[0] and not (first | rest) & record.with_grad_[0]
    assert record.with_grad_[2] & (first | rest) == first
    assert all(p.requires_grad for p in net.module_.parameters())  # restored after the fit


@pytest.mark.parametrize("name", FRONT_END_NETS)
def test_frozen_front_end_keeps_its_weights(name):
    X, y = data(name)
    net, record = fit_recorded(name, X, y, freeze_front_end=True, max_epochs=2)
    groups = net.parameter_groups()
    front = set(groups["front_end"])
    rest = {n for n, _ in net.module_.named_parameters()} - front
    assert changed(record.states_[0], record.states_[-1], front) == set()
    assert changed(record.states_[0], record.states_[-1], rest) == rest
    assert net.history[:, "frozen"] == [["front_end"], ["front_end"]]


def test_front_end_trains_after_n_frozen_epochs():
    X, y = data("deepfourier")
    net, record = fit_recorded("deepfourier", X, y, freeze_front_end=2, max_epochs=4)
    front = set(net.parameter_groups()["front_end"])
    s = record.states_
    assert changed(s[0], s[2], front) == set()
    assert changed(s[2], s[3], front) == front
    assert net.history[:, "frozen"] == [["front_end"], ["front_end"], [], []]
    # partial_fit continues the schedule: the front end stays trainable
    net.partial_fit(X, y)
    assert net.history[-1, "frozen"] == []


def test_freeze_front_end_false_and_0_train_from_the_first_epoch():
    X, y = data("deepfourier")
    for value in (False, 0):
        net, record = fit_recorded("deepfourier", X, y, freeze_front_end=value, max_epochs=1)
        front = set(net.parameter_groups()["front_end"])
        assert changed(record.states_[0], record.states_[1], front) == front


def test_early_stopping_waits_for_the_last_phase():
    # random labels and a large learning rate: the validation loss soon stops improving
    X, _ = data("mstnet", n_per_class=8)
    y = np.random.default_rng(1).permutation(np.repeat(LABELS, 8))
    net = tiny("mstnet", icebreaker=[0, 3, 3, 20], patience=1, lr=0.05, valid_fraction=0.25).fit(X, y)
    assert 7 <= len(net.history) < 26  # stopped in phase 3, not before
    assert net.history[-1, "phase"] == 3
    plain = tiny("mstnet", max_epochs=26, patience=1, lr=0.05, valid_fraction=0.25).fit(X, y)
    assert len(plain.history) < 7  # without the IceBreaker it stops in what would be phase 1


def test_icebreaker_sets_the_lr_schedule_horizon():
    X, y = data("mstnet")
    net = tiny("mstnet", icebreaker=[0, 1, 1, 2], lr_schedule="cosine", valid_fraction=None,
               max_epochs=100)
    net.fit(X, y)
    np.testing.assert_allclose(net.history[:, "event_lr"],
                               1e-3 * (1 + np.cos(np.pi * np.arange(4) / 4)) / 2, rtol=1e-6)


class RecordParams(Callback):
    """The net's parameters at the start of each epoch."""

    def on_train_begin(self, net, **kwargs):
        self.params_ = []

    def on_epoch_begin(self, net, **kwargs):
        self.params_.append(net.get_params(deep=False))


def test_phases_are_callbacks_and_no_parameter_changes_during_the_fit():
    X, y = data("mstnet")
    record = RecordParams()
    net = tiny("mstnet", icebreaker=[1, 1, 1, 2], forcing_epochs=1, lr_schedule="cosine",
               max_epochs=100, callbacks=[("record", record)])
    before = net.get_params(deep=False)
    net.fit(X, y)
    assert len(net.history) == 4  # p1 + p2 + p3, with max_epochs=100 as set
    assert len(record.params_) == 4 and all(params == before for params in record.params_)
    assert net.get_params(deep=False) == before
    callbacks = dict(net.callbacks_)
    schedule = callbacks["freeze_schedule"]
    assert isinstance(schedule, FreezeSchedule) and isinstance(callbacks["early_stopping"], PhasedEarlyStopping)
    assert [schedule.phase(epoch) for epoch in (1, 2, 3, 4)] == [
        (("backbone_first_conv", "backbone_rest"), 1), (("backbone_rest",), 2), ((), 3), ((), 3)]
    assert callbacks["early_stopping"].start == 3
    plain = dict(tiny("mstnet").initialize_callbacks().callbacks_)
    assert "freeze_schedule" not in plain and type(plain["early_stopping"]) is EarlyStopping


# ---------------------------------------------------------------------- forcing and phase 0
class RecordingRegressor(_frontend.NeuralNetRegressor):
    """skorch's regressor, remembering its optimizer (spectrogram forcing's)."""

    fitted = []

    def fit(self, X, y, **fit_params):
        RecordingRegressor.fitted.append(self)
        return super().fit(X, y, **fit_params)


def forcing_mse(net, X):
    """MSE between the front end's output and the normalised mel targets, on ``X``."""
    front_end = net.module_.front_end
    with torch.no_grad():
        out = front_end(torch.as_tensor(X)).numpy()
    M = mel_targets(X, sr=net.sr, n_frames=out.shape[2], **front_end.mel_params())
    return float(np.mean((out - normalised(M, net.target_stats_)) ** 2))


@pytest.mark.parametrize("name", ["mstnet", "heurinet"])
def test_spectrogram_forcing_brings_the_front_end_to_the_normalised_mel(name):
    X, y = data(name, n_per_class=4)
    common = dict(valid_fraction=None, freeze_front_end=True, max_epochs=1, sr=8000)
    RecordingRegressor.fitted = []
    with mock.patch.object(_frontend, "NeuralNetRegressor", RecordingRegressor):
        before = tiny(name, forcing_epochs=1, forcing_lr=1e-12, **common).fit(X, y)
        after = tiny(name, forcing_epochs=30, **common).fit(X, y)
    optimizer = RecordingRegressor.fitted[-1].optimizer_
    assert type(optimizer) is torch.optim.Adam and optimizer.param_groups[0]["lr"] == 3e-4
    assert before.target_stats_ == after.target_stats_
    mse_before, mse_after = forcing_mse(before, X), forcing_mse(after, X)
    assert mse_after < 0.7 * mse_before
    losses = after.forcing_history_[:, "train_loss"]
    assert len(losses) == 30 and losses[-1] < losses[0]


def test_icebreaker_phase_0_trains_the_backbone_alone():
    X, y = data("mstnet")
    net, record = fit_recorded("mstnet", X, y, icebreaker=[3, 1, 0, 0])
    assert len(net.backbone_history_) == 3 and net.forcing_history_ is None
    _, fresh = fit_recorded("mstnet", X, y, icebreaker=[0, 1, 0, 0])
    initial, after_phase_0 = fresh.states_[0], record.states_[0]  # same seed: same initial weights
    groups = net.parameter_groups()
    backbone = set(groups["backbone_first_conv"] + groups["backbone_rest"])
    assert changed(initial, after_phase_0, groups["front_end"]) == set()
    assert changed(initial, after_phase_0, backbone) == backbone


class RecordingClassifier(_frontend.NeuralNetClassifier):
    """skorch's classifier, remembering itself (IceBreaker phase 0's)."""

    fitted = []

    def fit(self, X, y, **fit_params):
        RecordingClassifier.fitted.append(self)
        return super().fit(X, y, **fit_params)


@pytest.mark.parametrize("optimizer, expected", [
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    (torch.optim.AdamW, {"amsgrad": False}),
])
def test_icebreaker_phase_0_uses_the_fit_optimizer_and_criterion(optimizer, expected):
    X, y = data("mstnet")
    RecordingClassifier.fitted = []
    with mock.patch.object(_frontend, "NeuralNetClassifier", RecordingClassifier):
        net = tiny("mstnet", icebreaker=[1, 1, 0, 0], optimizer=optimizer, lr=0.02,
                   optimizer__weight_decay=0.01, class_weight="balanced").fit(X, y)
    [phase_0] = RecordingClassifier.fitted
    assert type(phase_0.optimizer_) is type(net.optimizer_)
    group = phase_0.optimizer_.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 0.01
    assert expected.items() <= group.items()
    assert phase_0.criterion_ is net.criterion_  # the same class weights


# -------------------------------------------------------------- scikit-learn contract, errors
def test_clone_pickle_and_repeatability_with_every_option():
    X, y = data("deepfourier")
    net = tiny("deepfourier", sr=8000, forcing_epochs=2, icebreaker=[1, 1, 1, 1],
               forcing_mel={"fmax": 3000.0})
    twin = clone(net)
    assert twin.get_params()["icebreaker"] == [1, 1, 1, 1]
    assert twin.get_params()["forcing_mel"] == {"fmax": 3000.0}
    net.fit(X, y)
    proba = net.predict_proba(X)
    np.testing.assert_array_equal(twin.fit(X, y).predict_proba(X), proba)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).predict_proba(X), proba)


def test_sr_reaches_the_learnable_mel():
    X, y = data("deepfourier")
    net = tiny("deepfourier", sr=8000, max_epochs=1).fit(X, y)
    assert net.module_.front_end.mel.sr == 8000
    with pytest.raises(ValueError, match="module__sr"):
        tiny("deepfourier", module__sr=8000).fit(X, y)


@pytest.mark.parametrize("params, match", [
    ({"icebreaker": [1, 2, 3]}, "icebreaker"),
    ({"icebreaker": (1, 0, 0, 0)}, "icebreaker"),
    ({"icebreaker": [1, -1, 1, 1]}, "icebreaker"),
    ({"icebreaker": [1, 1.5, 1, 1]}, "icebreaker"),
    ({"icebreaker": "1,1,1,1"}, "icebreaker"),
    ({"icebreaker": [1, True, 1, 1]}, "icebreaker"),
    ({"freeze_front_end": -1}, "freeze_front_end"),
    ({"freeze_front_end": 1.5}, "freeze_front_end"),
    ({"freeze_front_end": "yes"}, "freeze_front_end"),
    ({"freeze_front_end": True, "icebreaker": [0, 1, 1, 1]}, "freeze_front_end.*icebreaker"),
    ({"forcing_epochs": -1}, "forcing_epochs"),
    ({"forcing_epochs": 2.0}, "forcing_epochs"),
    ({"forcing_lr": 0}, "forcing_lr"),
    ({"forcing_mel": {"n_mel": 16}}, "forcing_mel"),
    ({"forcing_mel": {"n_mels": 40}, "forcing_epochs": 1}, "forcing_mel.*n_mels=40"),
    ({"forcing_mel": {"fmax": 9000.0}, "forcing_epochs": 1, "sr": 8000}, "forcing_mel.*fmax=9000"),
    ({"sr": 0}, "sr=0"),
    ({"backbone": "vgg"}, "backbone='vgg'"),
    ({"power": 3}, "power=3"),
    ({"kernel_height": 17}, "kernel_height=17"),
    ({"hop_length": 256}, "20"),  # too few frames for PiczakNet
])
def test_bad_parameters_raise_value_errors_naming_them(params, match):
    X, y = data("deepfourier")
    with pytest.raises(ValueError, match=match):
        tiny("deepfourier", **params).fit(X, y)


def test_a_net_without_front_end_is_rejected():
    from estimators.cnn import SmallCNN

    with pytest.raises(ValueError, match="front_end"):
        FrontEndClassifier(SmallCNN, max_epochs=1).fit(np.zeros((6, 1, 8, 8), np.float32),
                                                        [0, 1] * 3)
