"""Mixed precision (``precision``) and CUDA transfers (pinned memory, non-blocking copies) of the torch nets.

Everything that can run on the CPU does: torch 2.13 autocasts to bfloat16 and float16 there and has a CPU
GradScaler, so the loss-scaling path (unscaling before clipping, skipping non-finite steps) is tested here
on the CPU and, where a GPU is present, on CUDA too. Tests that need CUDA skip without it.
"""

import json
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback
from torch import nn

import estimators
from cli import main
from estimators._precision import PRECISIONS, autocast, check_device_support, to_float32
from estimators._torch import TorchClassifier
from estimators._transfer import to_device
from pipelines.build import model_of, set_run_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
#: The devices the loss-scaling tests run on: the CPU always, CUDA where present.
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
TORCH_NETS = [name for name in estimators.available() if isinstance(estimators.build(name), TorchClassifier)]
LABELS = np.array(["dog", "rain", "siren"])


def tiny(name, **params):
    spec = estimators.get_spec(name)
    return spec.build(**{"random_state": 0, **spec.test_params, **params})


def noise(shape, n_per_class=6, seed=0):
    """Gaussian samples of per-sample ``shape`` with a class-dependent offset, 3 string labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_per_class * len(LABELS), *shape)).astype(np.float32)
    y = np.repeat(LABELS, n_per_class)
    X += np.repeat(np.arange(len(LABELS)), n_per_class).reshape(-1, *[1] * len(shape))
    return X, y


class Recorder(nn.Module):
    """A linear classifier of flat inputs that records, per forward pass, whether autocast was on, its
    dtype, the dtype of its matrix product and whether it was training."""

    def __init__(self, input_shape, n_classes, scale=1.0):
        super().__init__()
        self.linear = nn.Linear(int(np.prod(input_shape)), n_classes)
        self.scale = scale
        self.calls = []

    def forward(self, x):
        out = self.linear(x.flatten(1))
        self.calls.append({"autocast": torch.is_autocast_enabled(x.device.type),
                           "dtype": torch.get_autocast_dtype(x.device.type), "matmul": out.dtype,
                           "training": self.training, "device": x.device.type})
        return out * self.scale  # scale=1e5 overflows float16 (its largest value is 65504)


def learner(**params):
    """The tiny cnn, plainly trained (no augmentation, schedule or validation), quick to fit separable data."""
    return tiny("cnn", batch_augment=None, lr_schedule=None, lr=1e-2, valid_fraction=None, max_epochs=10, dropout=0.0,
                **params)


def recorder_net(**params):
    return TorchClassifier(Recorder, **{"random_state": 0, "max_epochs": 2, "batch_size": 8, "n_threads": 1,
                                        "device": "cpu", **params})


# ------------------------------------------------------------------------- autocast
@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_every_forward_pass_runs_under_autocast(precision, dtype):
    X, y = noise((12,))
    net = recorder_net(precision=precision).fit(X, y)
    calls = list(net.module_.calls)
    proba = net.predict_proba(X)
    predict_calls = net.module_.calls[len(calls):]
    assert {c["training"] for c in calls} == {True, False}  # training batches and the validation split
    for call in calls + predict_calls:
        assert call["autocast"] and call["dtype"] == dtype and call["matmul"] == dtype
    assert predict_calls and not any(c["training"] for c in predict_calls)
    assert net.forward(X).dtype == torch.float32  # the logits cast back: softmax and loss in float32
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-6)


def test_precision_32_runs_without_autocast_and_trains_as_before():
    X, y = noise((12,))
    default = recorder_net().fit(X, y)
    explicit = recorder_net(precision="32").fit(X, y)
    assert not any(c["autocast"] for c in default.module_.calls)
    assert {c["matmul"] for c in default.module_.calls} == {torch.float32}
    for a, b in zip(default.module_.parameters(), explicit.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert default.grad_scaler_ is None and recorder_net(precision="bf16-mixed").fit(X, y).grad_scaler_ is None


@pytest.mark.parametrize("name", TORCH_NETS)
def test_bf16_mixed_trains_every_net_and_predicts_float32_probabilities(name):
    X, y = noise(estimators.get_spec(name).test_shape)
    net = tiny(name, precision="bf16-mixed", device="cpu").fit(X, y)
    assert np.isfinite(net.history[:, "train_loss"]).all()
    logits = net.forward(X)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    proba = net.predict_proba(X)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert set(net.predict(X)) <= set(LABELS)


def test_bf16_mixed_learns_what_float32_learns():
    """Separable data: both precisions fit it; bfloat16's rounding does not cost the accuracy."""
    X, y = noise((2, 16, 16), n_per_class=20)
    scores = {p: learner(precision=p, device="cpu").fit(X, y).score(X, y) for p in ("32", "bf16-mixed")}
    assert scores["32"] >= 0.9 and scores["bf16-mixed"] >= 0.9, scores


def test_crop_windows_are_averaged_in_float32():
    X, y = noise((1, 8, 24))
    net = tiny("cnn", precision="bf16-mixed", device="cpu", crop=8).fit(X, y)
    proba = net.predict_proba(X)
    assert net.forward(X).dtype == torch.float32 and np.allclose(proba.sum(axis=1), 1, atol=1e-6)


def test_to_float32_casts_only_lower_precision_floats():
    half, ints = torch.ones(2, dtype=torch.float16), torch.ones(2, dtype=torch.int64)
    double = torch.ones(2, dtype=torch.float64)
    out = to_float32((half, ints, double))
    assert isinstance(out, tuple) and [t.dtype for t in out] == [torch.float32, torch.int64, torch.float64]


# ------------------------------------------------------------------------- loss scaling
def _sgd_net(device, **params):
    """One plain SGD step (lr 1: the step is the gradient) on all rows, no validation, no scaling of X."""
    return recorder_net(**{"device": device, "optimizer": torch.optim.SGD, "lr": 1.0, "max_epochs": 1,
                           "batch_size": 64, "valid_fraction": None, "standardize": False, **params})


@pytest.mark.parametrize("device", DEVICES)
def test_16_mixed_clips_the_unscaled_gradients(device):
    """Clipping must see the true gradients: clipped first and unscaled after, the step would be
    ``max_norm / scale`` (65536 times too small)."""
    X, y = noise((12,), n_per_class=8)
    max_norm = 0.01
    for precision in ("32", "16-mixed"):
        net = _sgd_net(device, precision=precision, clip_grad_norm=max_norm).fit(X, y)
        start = _initial_weights(net, X, y)
        step = torch.cat([(p.detach() - s).flatten() for p, s in zip(net.module_.parameters(), start, strict=True)])
        assert float(step.norm()) == pytest.approx(max_norm, rel=1e-3), precision
    assert net.grad_scaler_.get_scale() == 65536.0  # finite gradients: the scale stays (it grows after 2000)


def _initial_weights(net, X, y):
    """The weights of ``net``'s network before training: a zero-epoch fit with the same seed."""
    fresh = clone(net).set_params(max_epochs=0).fit(X, y)
    return [p.detach().clone() for p in fresh.module_.parameters()]


@pytest.mark.parametrize("device", DEVICES)
def test_16_mixed_skips_a_step_whose_gradients_are_not_finite(device):
    X, y = noise((12,), n_per_class=8)
    # logits * 1e5 overflow float16 to inf: the loss and the gradients are not finite
    net = _sgd_net(device, precision="16-mixed", module__scale=1e5, max_epochs=3).fit(X, y)
    start = _initial_weights(net, X, y)
    for p, s in zip(net.module_.parameters(), start, strict=True):
        assert torch.equal(p.detach(), s)  # every step skipped: the weights are untouched
    assert net.grad_scaler_.get_scale() == 65536.0 / 2**3  # backed off once per skipped step
    # the same net in float32 has finite logits and trains
    trained = _sgd_net(device, precision="32", module__scale=1e5, max_epochs=3).fit(X, y)
    assert any(not torch.equal(p.detach(), s) for p, s in zip(trained.module_.parameters(), start, strict=True))


def test_partial_fit_keeps_the_scale_and_a_new_fit_starts_afresh():
    X, y = noise((12,), n_per_class=8)
    net = _sgd_net("cpu", precision="16-mixed", module__scale=1e5).fit(X, y)
    assert net.grad_scaler_.get_scale() == 32768.0
    net.partial_fit(X, y)
    assert net.grad_scaler_.get_scale() == 16384.0
    net.fit(X, y)
    assert net.grad_scaler_.get_scale() == 32768.0
    net.set_params(precision="bf16-mixed").partial_fit(X, y)
    assert net.grad_scaler_ is None


def test_16_mixed_refuses_an_lstm_on_the_cpu():
    X, y = noise(estimators.get_spec("lstm").test_shape)
    with pytest.raises(ValueError, match="precision='16-mixed' on the CPU: .* LSTM.*bf16-mixed"):
        tiny("lstm", precision="16-mixed", device="cpu").fit(X, y)
    tiny("gru", precision="16-mixed", device="cpu").fit(*noise(estimators.get_spec("gru").test_shape))


# ------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("precision", ["16", "bf16", "fp16", 16, 32, None, "32-true"])
def test_an_invalid_precision_is_refused_naming_the_parameter(precision):
    X, y = noise((12,))
    with pytest.raises(ValueError, match=r"precision=.* must be one of '32', 'bf16-mixed', '16-mixed'"):
        recorder_net(precision=precision).fit(X, y)


def test_an_invalid_precision_set_after_fit_is_refused_at_predict():
    X, y = noise((12,))
    net = recorder_net().fit(X, y).set_params(precision="half")
    with pytest.raises(ValueError, match="precision='half'"):
        net.predict(X)


def test_bf16_on_a_gpu_without_bfloat16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(ValueError, match="bf16-mixed.*Tesla V100.*16-mixed"):
        check_device_support("bf16-mixed", "cuda")
    check_device_support("16-mixed", "cuda")
    check_device_support("bf16-mixed", "cpu")


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_clone_get_params_and_pickle_keep_the_precision(precision):
    X, y = noise((12,), n_per_class=8)
    net = recorder_net(precision=precision)
    assert net.get_params()["precision"] == precision and clone(net).get_params()["precision"] == precision
    net.fit(X, y)
    assert clone(net).get_params()["precision"] == precision
    loaded = pickle.loads(pickle.dumps(net))
    assert loaded.get_params()["precision"] == precision
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    if precision == "16-mixed":
        assert loaded.grad_scaler_.get_scale() == net.grad_scaler_.get_scale()
        loaded.partial_fit(X, y)  # the unpickled scaler trains on


def test_precision_is_a_run_setting_of_every_net():
    assert "precision" in estimators.RUN_PARAMS
    for name in TORCH_NETS:
        net = estimators.build(name)
        assert "precision" in estimators.run_params(net)
        assert net.get_params()["precision"] == "32"
    assert set_run_settings(estimators.build("cnn"), precision="bf16-mixed").precision == "bf16-mixed"
    assert set_run_settings(estimators.build("cnn"), precision=None).precision == "32"  # None: not set


def test_cli_precision_reaches_the_net_and_run_json(capsys, urbansound_root, tmp_path):
    out = tmp_path / "run"
    argv = ["cv", "--estimator", "cnn", "--dataset", "urbansound8k", "--root", str(urbansound_root),
            "--cache", str(tmp_path / "cache"), "--set", "audio.sr=8000", "--set", "audio.duration=0.5",
            "--no-progress", "--folds", "1", "--max-epochs", "1", "--params", "channels=[2,4,4]",
            "--params", "n_hidden=8", "--device", "cpu", "--precision", "bf16-mixed", "--refit", "--output", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["precision"] == "bf16-mixed" and run["config"]["device"] == "cpu"
    assert model_of(joblib.load(out / "model.joblib")["model"]).precision == "bf16-mixed"
    assert 'precision = "bf16-mixed"' in (out / "config.toml").read_text()


def test_cli_refuses_an_unknown_precision(capsys):
    with pytest.raises(SystemExit):
        main(["cv", "--estimator", "cnn", "--precision", "bf16"])
    assert "--precision: invalid choice: 'bf16'" in capsys.readouterr().err


# ------------------------------------------------------------------------- CUDA transfers
def test_loaders_pin_memory_for_cuda_only():
    X, y = noise((12,))
    dataset = recorder_net().get_dataset(X, y)
    on_cpu, on_cuda = recorder_net(device="cpu"), recorder_net(device="cuda")  # no tensor is made here
    for training in (True, False):
        assert not on_cpu.get_iterator(dataset, training=training).pin_memory
        assert on_cuda.get_iterator(dataset, training=training).pin_memory
    user = recorder_net(device="cuda", iterator_train__pin_memory=False, iterator_valid__pin_memory=False)
    assert not any(user.get_iterator(dataset, training=t).pin_memory for t in (True, False))
    assert on_cuda.get_iterator(dataset, training=True).batch_size == 8
    assert recorder_net(device="cuda", batch_size=-1).get_iterator(dataset).batch_size == len(X)


def test_to_device_on_the_cpu_is_skorchs_to_tensor():
    x = np.ones((2, 3), dtype=np.float32)
    out = to_device({"a": x, "b": [x, x]}, "cpu")
    assert out["a"].dtype == torch.float32 and isinstance(out["b"], list) and out["b"][1].device.type == "cpu"


class PinnedBatches(Callback):
    """Records whether each training batch arrived in pinned memory, and where the net's input was."""

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.pinned_ = getattr(self, "pinned_", []) + [bool(batch[0].is_pinned())]


@needs_cuda
def test_cuda_trains_from_pinned_batches_copied_to_the_gpu():
    X, y = noise((12,), n_per_class=8)
    recorder = PinnedBatches()
    net = recorder_net(device="cuda", callbacks=[("pinned", recorder)]).fit(X, y)
    assert recorder.pinned_ and all(recorder.pinned_)
    assert {c["device"] for c in net.module_.calls} == {"cuda"}
    proba = net.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_cuda_mixed_precision_trains_a_cnn(precision):
    if precision == "bf16-mixed" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("this GPU has no native bfloat16")
    X, y = noise((2, 16, 16), n_per_class=20)
    net = learner(precision=precision, device="cuda").fit(X, y)
    assert net.score(X, y) >= 0.9
    assert net.forward(X).dtype == torch.float32
    with autocast(precision, "cuda"):
        assert torch.is_autocast_enabled("cuda")
