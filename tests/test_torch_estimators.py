"""Tests of the torch networks and of their one base class, estimators._torch.TorchClassifier.

Per-network tests are parametrised over every registered estimator that builds a
TorchClassifier, with the tiny settings of its SPEC (``test_params``, ``test_shape``). Behaviour
of the base class (validation split, early stopping, optimizers, schedules, errors) is tested on
the fastest networks. Everything runs on one torch thread with a few epochs.
"""

import inspect
import io
import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GroupKFold, cross_validate
from skorch.callbacks import Callback

import estimators
from estimators._split import validation_split
from estimators._torch import TorchClassifier
from estimators.resnet18 import ResNet18

TORCH_NETS = [name for name in estimators.available()
              if isinstance(estimators.build(name), TorchClassifier)]
LABELS = np.array(["dog", "rain", "siren"])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(name, **params):
    """Estimator ``name`` with its SPEC's test parameters (and ``params``), seeded."""
    spec = estimators.get_spec(name)
    return spec.build(**{"random_state": 0, **spec.test_params, **params})


def noise(name, n_per_class=6, seed=0):
    """Gaussian samples of the SPEC's test shape, with string labels (3 classes)."""
    rng = np.random.default_rng(seed)
    shape = estimators.get_spec(name).test_shape
    X = rng.standard_normal((n_per_class * len(LABELS), *shape)).astype(np.float32)
    return X, np.repeat(LABELS, n_per_class)


class RecordSplit(Callback):
    """Records the row indices of the training and validation subsets a fit used."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.train_, self.valid_ = None, None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.train_ = getattr(dataset_train, "indices", None)
        self.valid_ = None if dataset_valid is None else np.asarray(dataset_valid.indices)


class RecordGradNorm(Callback):
    """Records the global gradient norm of each step after earlier callbacks (clipping) ran."""

    def on_train_begin(self, net, **kwargs):
        self.norms_, self.threads_ = [], set()

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
        self.norms_.append(float(torch.norm(torch.stack(grads))))
        self.threads_.add(torch.get_num_threads())


def callback(net, name):
    return dict(net.callbacks_)[name]


# ------------------------------------------------------------------------- per network
@pytest.mark.parametrize("name", TORCH_NETS)
def test_module_forward_gives_logits_of_test_shape(name):
    spec = estimators.get_spec(name)
    net = tiny(name)
    module = net.module(input_shape=spec.test_shape, n_classes=5, **net.get_params_for("module"))
    logits = module(torch.zeros((3, *spec.test_shape)))
    assert logits.shape == (3, 5)
    assert logits.dtype == torch.float32


@pytest.mark.parametrize("name", TORCH_NETS)
def test_fit_predict_with_string_labels(name):
    X, y = noise(name)
    net = tiny(name).fit(X, y)
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert list(net.classes_) == sorted(LABELS)
    assert set(net.predict(X)) <= set(LABELS)
    assert net.input_shape_ == X.shape[1:]
    assert 1 <= len(net.history) <= estimators.get_spec(name).test_params["max_epochs"]


@pytest.mark.parametrize("name", TORCH_NETS)
def test_pickled_net_predicts_identically(name):
    X, y = noise(name)
    net = tiny(name).fit(X, y)
    loaded = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert loaded.get_params()["device"] == "auto"


@pytest.mark.parametrize("name", TORCH_NETS)
def test_same_random_state_gives_same_predictions(name):
    X, y = noise(name)
    first = tiny(name).fit(X, y).predict_proba(X)
    second = tiny(name).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_other_random_state_gives_other_weights_and_torch_state_is_kept():
    X, y = noise("lstm")
    before = torch.random.get_rng_state()
    a = tiny("lstm", random_state=0).fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), before)  # fit seeds a fork of the state
    b = tiny("lstm", random_state=1).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_integer_labels_round_trip():
    X, _ = noise("cnn")
    y = np.repeat([3, 7, 11], 6)
    net = tiny("cnn").fit(X, y)
    assert net.classes_.tolist() == [3, 7, 11]
    assert set(net.predict(X)) <= {3, 7, 11}


# ------------------------------------------------------------- parameters and cloning
def test_params_clone_and_module_optimizer_params():
    net = tiny("cnn", batch_norm=True, optimizer__weight_decay=1e-3)
    params = net.get_params(deep=False)
    assert params["batch_norm"] is True
    assert params["optimizer__weight_decay"] == 1e-3
    assert params["device"] == "auto" and params["valid_fraction"] is None  # the recipe: every clip trains
    twin = clone(net)
    assert twin.get_params(deep=False).keys() == params.keys()

    X, y = noise("cnn")
    net.fit(X, y)
    assert net.get_params(deep=False) == params  # fit does not overwrite parameters
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.module_.modules())
    assert net.optimizer_.param_groups[0]["weight_decay"] == 1e-3

    net.set_params(channels=(3, 3, 3))  # re-initialises the fitted module
    assert net.module_.features[0].out_channels == 3
    assert net.fit(X, y).predict(X).shape == (len(X),)


@pytest.mark.parametrize("name", TORCH_NETS)
def test_flat_module_params_reach_the_module(name):
    net = tiny(name)
    knobs = type(net).module_params
    accepted = inspect.signature(net.module).parameters
    assert knobs and set(knobs) <= set(accepted) and set(knobs) <= set(net.get_params(deep=False))
    routed = net.get_params_for("module")
    assert all(routed[knob] is getattr(net, knob) for knob in knobs)


def test_old_module_spelling_warns_and_wins():
    X, y = noise("lstm")
    with pytest.warns(FutureWarning, match="module__hidden_size is deprecated for LSTMClassifier; use hidden_size"):
        net = tiny("lstm", module__hidden_size=6).fit(X, y)
    assert net.module_.rnn.hidden_size == 6 and net.hidden_size == 8  # the SPEC's test value, unused


def test_recurrent_cell_is_the_class_s():
    X, y = noise("lstm")
    assert tiny("gru").fit(X, y).module_.rnn.mode == "GRU"
    with pytest.raises(ValueError, match="module__cell='gru': LSTMClassifier fixes cell='lstm'"):
        tiny("lstm", module__cell="gru").fit(X, y)


@pytest.mark.parametrize("name", ["lstm", "blstm"])
def test_recurrent_nets_classify_from_the_mean_output_by_default(name):
    X, y = noise(name)
    net = tiny(name).fit(X, y)
    module = net.module_.eval()
    x = torch.as_tensor(X[:4])
    output, (hidden, _) = module.rnn(x)
    with torch.no_grad():
        assert net.pooling == "mean" and module.pooling == "mean"
        torch.testing.assert_close(module(x), module.head(output.mean(dim=1)), rtol=1e-6, atol=1e-6)
        module.pooling = "last"  # each direction's final hidden state, in place of the mean
        last = torch.cat(list(hidden[-2:] if module.rnn.bidirectional else hidden[-1:]), dim=1)
        torch.testing.assert_close(module(x), module.head(last), rtol=1e-6, atol=1e-6)
        assert not torch.allclose(module.head(last), module.head(output.mean(dim=1)))


@pytest.mark.parametrize("mode", ["sequence", "init_state"])
def test_crnn_classifies_from_the_mean_lstm_output_by_default(mode):
    X, y = noise("crnn")
    net = tiny("crnn", mode=mode).fit(X, y)
    module = net.module_.eval()
    x = torch.as_tensor(X[:4])
    with torch.no_grad():
        maps = module.cnn(x)
        if mode == "sequence":
            output, (hidden, _) = module.lstm(maps.flatten(1, 2).transpose(1, 2))
        else:
            h0, c0 = torch.tanh(module.init_state(maps.mean(dim=(2, 3)))).chunk(2, dim=1)
            output, (hidden, _) = module.lstm(x.flatten(1, 2).transpose(1, 2),
                                              (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()))
        assert net.pooling == "mean" and module.pooling == "mean"
        torch.testing.assert_close(module(x), module.head(output.mean(dim=1)), rtol=1e-6, atol=1e-6)
        module.pooling = "last"
        torch.testing.assert_close(module(x), module.head(hidden[-1]), rtol=1e-6, atol=1e-6)
        assert not torch.allclose(module.head(hidden[-1]), module.head(output.mean(dim=1)))


def test_crnn_rejects_an_unknown_pooling():
    X, y = noise("crnn")
    with pytest.raises(ValueError, match="pooling='max' must be 'mean' or 'last'"):
        tiny("crnn", pooling="max").fit(X, y)


def test_unfitted_net_raises_not_fitted():
    with pytest.raises(NotFittedError):
        tiny("lstm").predict(np.zeros((2, 20, 13), dtype=np.float32))


def test_initialize_without_data_explains_itself():
    with pytest.raises(ValueError, match="call fit"):
        tiny("lstm").initialize()


def test_inferred_module_params_cannot_be_set():
    X, y = noise("lstm")
    with pytest.raises(ValueError, match="module__n_classes"):
        tiny("lstm", module__n_classes=3).fit(X, y)


# ------------------------------------------------------------------ input validation
@pytest.mark.parametrize("name, shape, match", [
    ("lstm", (6, 3, 4, 5), r"RecurrentNet expects sequences of shape \(n_samples, T, F\) such as "
                           r"feature kinds mfcc, mel \(or waveforms .*\); got shape \(6, 3, 4, 5\)"),
    ("transformer", (6, 40), r"TransformerNet expects sequences .*; got shape \(6, 40\)"),
    ("cnn", (6, 40), r"SmallCNN expects images of shape \(n_samples, C, H, W\) .*stft, mel"),
    ("heurinet", (6, 2, 3), r"HeuriNet expects waveforms .* such as feature kinds raw"),
])
def test_wrong_dimensionality_names_net_shape_and_features(name, shape, match):
    X = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        tiny(name).fit(X, np.arange(len(X)) % 2)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected(bad):
    match = r"RecurrentNet does not accept NaN or infinite values in X; 1 of 18 samples have some"
    X, y = noise("lstm")
    X[2, 3, 1] = bad
    with pytest.raises(ValueError, match=match):
        tiny("lstm").fit(X, y)
    net = tiny("lstm").fit(*noise("lstm"))
    with pytest.raises(ValueError, match=match):
        net.predict(X)


def test_single_class_is_rejected():
    X, _ = noise("lstm")
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class: 'dog'"):
        tiny("lstm").fit(X, ["dog"] * len(X))


def test_continuous_targets_are_rejected():
    X, _ = noise("lstm")
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny("lstm").fit(X, np.linspace(0, 1, len(X)))


def test_bad_parameter_values_are_named():
    X, y = noise("lstm")
    for params, match in [({"valid_fraction": 1.5}, "valid_fraction=1.5"),
                          ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
                          ({"lr_schedule": "linear"}, "lr_schedule='linear'"),
                          ({"class_weight": "auto"}, "class_weight='auto'")]:
        with pytest.raises(ValueError, match=match):
            tiny("lstm", **params).fit(X, y)


def test_image_nets_accept_one_channel_without_channel_axis():
    X, y = noise("cnn")
    net = tiny("cnn").fit(X[:, 0], y)  # (n, H, W)
    assert net.input_shape_ == (1, *X.shape[2:])
    assert net.predict(X[:, 0]).shape == (len(X),)


def test_recurrent_nets_frame_raw_waveforms():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 450)).astype(np.float32)
    y = np.repeat(["a", "b"], 6)
    net = tiny("gru", frame_length=100).fit(X, y)
    assert net.module_.rnn.input_size == 100
    assert net.predict(X).shape == (12,)
    with pytest.raises(ValueError, match="frame_length=500 is longer than the waveforms"):
        tiny("gru", frame_length=500).fit(X, y)


# -------------------------------------------------------- validation split, early stopping
def test_validation_split_is_stratified_and_partitions_the_rows():
    y = np.repeat([0, 1, 2, 3], [10, 20, 30, 40])
    train, valid = validation_split(y, valid_fraction=0.2, random_state=0)
    assert sorted(np.concatenate([train, valid])) == list(range(len(y)))
    assert np.bincount(y[valid]).tolist() == [2, 4, 6, 8]


def test_grouped_validation_split_keeps_each_group_on_one_side():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 4)
    y = rng.integers(0, 3, size=len(groups))
    for seed in range(5):
        train, valid = validation_split(y, groups, valid_fraction=0.2, random_state=seed)
        assert not set(groups[train]) & set(groups[valid])
        assert sorted(np.concatenate([train, valid])) == list(range(len(y)))
        assert 4 <= len(set(groups[valid])) <= 8  # about 1/5 of the 30 groups
        assert set(y[valid]) == {0, 1, 2}


def test_grouped_validation_split_of_classes_smaller_than_its_folds_still_holds_out_whole_groups():
    y = np.repeat([0, 1, 2], 4)  # every class has fewer rows than the 5 folds of valid_fraction=0.2
    groups = np.arange(12) // 2
    train, valid = validation_split(y, groups, valid_fraction=0.2, random_state=0)
    assert len(train) and len(valid)
    assert not set(groups[train]) & set(groups[valid])


def test_validation_split_errors():
    with pytest.raises(ValueError, match="at least 2 groups"):
        validation_split([0, 1, 0, 1], [7, 7, 7, 7], valid_fraction=0.2)
    with pytest.raises(ValueError, match="leaves no training rows"):
        validation_split([0], valid_fraction=0.2)


def test_fit_holds_out_rows_of_its_own_data_grouped_by_groups():
    X, y = noise("lstm", n_per_class=10)
    groups = np.arange(len(X)) // 3
    rec = callback(tiny("lstm", valid_fraction=0.2, callbacks=[("record", RecordSplit())]).fit(X, y, groups=groups),
                   "record")
    assert len(rec.valid_) and len(rec.train_) + len(rec.valid_) == len(X)
    assert not set(groups[rec.valid_]) & set(groups[np.asarray(rec.train_)])


def test_early_stopping_restores_the_best_epoch():
    # a large learning rate on random labels: the validation loss soon rises, training stops
    X, y = noise("lstm", n_per_class=12)
    net = tiny("lstm", lr=0.05, max_epochs=30, patience=3, valid_fraction=0.25, optimizer="adam",
               lr_schedule=None, label_smoothing=0.0,  # the plain loss and step of TorchClassifier
               hidden_size=32, standardize=False).fit(X, y)  # net.forward takes X as is
    losses = net.history[:, "valid_loss"]
    best = int(np.argmin(losses))
    assert len(losses) < 30 and best < len(losses) - 1  # stopped early, after the best epoch

    codes = np.searchsorted(net.classes_, y)
    _, valid = validation_split(codes, valid_fraction=0.25, random_state=0)  # the fit's split
    logits = net.forward(X[valid])
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(codes[valid]))
    assert float(loss) == pytest.approx(losses[best], rel=1e-5)


def test_standardize_uses_training_statistics_per_channel():
    X, y = noise("cnn")
    net = tiny("cnn", random_state=0).fit(X, y)
    assert net.input_mean_.shape == (1, X.shape[1], 1, 1)
    np.testing.assert_allclose(net.input_mean_.ravel(), X.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    # an affine change of units (dB offset, scale) changes nothing once inputs are standardised
    shifted = tiny("cnn", random_state=0).fit(X * 40 - 60, y)
    np.testing.assert_allclose(shifted.predict_proba(X * 40 - 60), net.predict_proba(X), atol=1e-4)
    raw = tiny("cnn", random_state=0, standardize=False).fit(X * 40 - 60, y)
    assert raw.input_mean_ is None


def test_without_validation_all_rows_train_and_nothing_stops():
    X, y = noise("lstm")
    net = tiny("lstm", valid_fraction=None, max_epochs=3).fit(X, y)
    assert len(net.history) == 3
    assert "valid_loss" not in net.history[-1]
    assert "early_stopping" not in dict(net.callbacks_)
    assert sum(net.history[-1, "batches", :, "train_batch_size"]) == len(X)


# ---------------------------------------------------- optimizers, clipping, weights, schedules
def test_sgd_is_nesterov_momentum_and_classes_work_too():
    X, y = noise("lstm")
    net = tiny("lstm", optimizer="sgd", lr=0.01).fit(X, y)
    group = net.optimizer_.param_groups[0]
    assert isinstance(net.optimizer_, torch.optim.SGD)
    assert group["nesterov"] and group["momentum"] == 0.9 and group["lr"] == 0.01
    net = tiny("lstm", optimizer="sgd", optimizer__momentum=0.5).fit(X, y)
    assert net.optimizer_.param_groups[0]["momentum"] == 0.5
    assert isinstance(tiny("lstm").fit(X, y).optimizer_, torch.optim.Adam)
    assert isinstance(tiny("lstm", optimizer=torch.optim.AdamW).fit(X, y).optimizer_,
                      torch.optim.AdamW)


def test_clip_grad_norm_bounds_every_step():
    X, y = noise("lstm")
    clipped = callback(tiny("lstm", clip_grad_norm=1e-3, callbacks=[("norms", RecordGradNorm())])
                       .fit(X, y), "norms")
    free = callback(tiny("lstm", callbacks=[("norms", RecordGradNorm())]).fit(X, y), "norms")
    assert max(clipped.norms_) <= 1e-3 * 1.001
    assert max(free.norms_) > 1e-2


def test_balanced_class_weight_weights_the_loss():
    X, _ = noise("lstm", n_per_class=8)
    y = np.array(["dog"] * 16 + ["rain"] * 8)
    net = tiny("lstm", class_weight="balanced").fit(X, y)
    expected = len(y) / (2 * np.array([16, 8]))
    np.testing.assert_allclose(net.class_weight_, expected)
    np.testing.assert_allclose(net.criterion_.weight.numpy(), expected)
    assert tiny("lstm").fit(X, y).criterion_.weight is None


@pytest.mark.parametrize("schedule, expected", [
    ("step", [1e-3, 1e-4, 1e-5]),
    ("cosine", [1e-3, 7.5e-4, 2.5e-4]),
])
def test_lr_schedule_changes_the_learning_rate(schedule, expected):
    X, y = noise("lstm")
    net = tiny("lstm", lr_schedule=schedule, max_epochs=3, valid_fraction=None).fit(X, y)
    np.testing.assert_allclose(net.history[:, "event_lr"], expected, rtol=1e-6)


def test_plateau_schedule_monitors_the_training_loss_without_validation():
    X, y = noise("lstm")
    net = tiny("lstm", lr_schedule="plateau", valid_fraction=None, max_epochs=2).fit(X, y)
    assert callback(net, "lr_scheduler").monitor == "train_loss"
    assert callback(tiny("lstm", lr_schedule="plateau", valid_fraction=0.2).fit(X, y), "lr_scheduler").monitor \
        == "valid_loss"


class RecordParams(Callback):
    """Records the net's parameters at the start of each epoch and of each batch."""

    def on_train_begin(self, net, **kwargs):
        self.params_ = []

    def on_epoch_begin(self, net, **kwargs):
        self.params_.append(net.get_params(deep=False))

    def on_batch_begin(self, net, **kwargs):
        self.params_.append(net.get_params(deep=False))


def test_device_auto_survives_fit_and_is_resolved_where_skorch_reads_it():
    X, y = noise("cnn")
    record = RecordParams()
    net = tiny("cnn", max_epochs=2, callbacks=[("record", record)])
    before = net.get_params(deep=False)
    net.fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert net.get_params()["device"] == "auto"
    assert len(record.params_) > 2 and all(p["device"] == "auto" for p in record.params_)
    assert {p["device"] for p in record.params_} == {before["device"]}
    assert net.device == expected  # the attribute skorch reads to place tensors
    assert {p.device.type for p in net.module_.parameters()} == {expected}
    net.load_params(f_params=_saved_params(net))  # skorch's load_params sets the device it maps to
    assert net.get_params()["device"] == "auto"
    assert clone(net).get_params()["device"] == "auto"


def _saved_params(net):
    buffer = io.BytesIO()
    net.save_params(f_params=buffer)
    buffer.seek(0)
    return buffer


def test_an_explicit_device_is_kept_as_given():
    X, y = noise("cnn")
    net = tiny("cnn", device="cpu").fit(X, y)
    assert net.device == "cpu" and net.get_params()["device"] == "cpu"
    net.set_params(device="auto")
    assert net.get_params()["device"] == "auto"


def test_n_threads_applies_while_fitting_and_is_restored():
    X, y = noise("lstm")
    record = RecordGradNorm()
    tiny("lstm", n_threads=2, callbacks=[("record", record)]).fit(X, y)
    assert record.threads_ == {2}
    assert torch.get_num_threads() == 1


def test_partial_fit_continues_training_and_needs_known_labels():
    X, y = noise("lstm")
    net = tiny("lstm", valid_fraction=None, max_epochs=1)
    net.partial_fit(X[y != "siren"], y[y != "siren"], classes=LABELS)
    net.partial_fit(X, y)
    assert len(net.history) == 2 and list(net.classes_) == sorted(LABELS)
    with pytest.raises(ValueError, match="labels not among classes_"):
        net.partial_fit(X, np.where(y == "dog", "cat", y))


def test_metadata_routing_passes_groups_to_fit():
    X, y = noise("lstm", n_per_class=8)
    groups = np.arange(len(X)) // 2
    with sklearn.config_context(enable_metadata_routing=True):
        net = tiny("lstm").set_fit_request(groups=True)
        scores = cross_validate(net, X, y, cv=GroupKFold(3), params={"groups": groups})
    assert len(scores["test_score"]) == 3


# ------------------------------------------------------------------------------- resnet18
def test_resnet18_loads_a_torchvision_style_state_dict(tmp_path):
    rgb = ResNet18((3, 32, 32), 10, base_width=4)  # same keys as torchvision's resnet18
    path = tmp_path / "resnet18.pt"
    torch.save(rgb.state_dict(), path)

    with pytest.warns(UserWarning, match="skipped its fc layer.*adapted conv1 from 3 to 1"):
        gray = ResNet18((1, 32, 32), 4, base_width=4, weights_path=path)
    assert torch.equal(gray.layer3[1].conv2.weight, rgb.layer3[1].conv2.weight)
    assert torch.equal(gray.bn1.running_var, rgb.bn1.running_var)
    assert torch.allclose(gray.conv1.weight, rgb.conv1.weight.sum(dim=1, keepdim=True))
    assert gray.fc.out_features == 4

    with pytest.raises(ValueError, match="base_width"):
        ResNet18((3, 32, 32), 10, base_width=8, weights_path=path)

    X, y = noise("resnet18")
    with pytest.warns(UserWarning, match="skipped its fc layer"):
        net = tiny("resnet18", weights_path=str(path), max_epochs=1).fit(X, y)
    assert net.predict(X).shape == (len(X),)


# --------------------------------------------------------------------------- learnability
def test_cnn_learns_which_frequency_band_is_loud():
    rng = np.random.default_rng(0)
    n, bands = 90, 16
    y = np.arange(n) % 3
    X = rng.standard_normal((n, 1, bands, 16)).astype(np.float32)
    for label in range(3):  # class k: rows 5k..5k+3 carry +2
        X[y == label, :, 5 * label: 5 * label + 4] += 2.0
    net = estimators.build("cnn", channels=(4, 8, 8), n_hidden=16,
                           max_epochs=30, valid_fraction=None, random_state=0)
    net.fit(X[:60], y[:60])
    assert net.score(X[60:], y[60:]) >= 0.8  # chance: 1/3


def test_lstm_learns_which_feature_drifts():
    rng = np.random.default_rng(1)
    n, steps = 90, 12
    y = np.arange(n) % 3
    X = rng.standard_normal((n, steps, 4)).astype(np.float32)
    ramp = np.linspace(0, 2, steps, dtype=np.float32)
    for label in range(3):  # class k: feature k rises over time
        X[y == label, :, label] += ramp
    net = estimators.build("lstm", hidden_size=16, max_epochs=25, lr=1e-2,
                           valid_fraction=None, random_state=0)
    net.fit(X[:60], y[:60])
    assert net.score(X[60:], y[60:]) >= 0.8
