"""The deep training recipe: random crops and window-averaged prediction, the warm-up + cosine
schedule, label smoothing, early stopping on a clip-level score after ``min_epochs``, the
spectrogram nets' defaults (each switchable off), and CNN6."""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, EarlyStopping
from torch import nn
from torch.utils.data import Subset

import estimators
from estimators._crops import covering_windows, mean_log_proba, random_crop
from estimators._phases import PhasedEarlyStopping
from estimators._recipe import RECIPE_AUGMENT
from estimators._schedules import WarmupCosine
from estimators._torch import TorchClassifier
from estimators.cnn6 import CNN6
from pipelines.segments import SegmentClassifier, window_starts
from test_batch_augment import Spy  # a linear net recording its inputs, by mode

pytestmark = [pytest.mark.filterwarnings("ignore:too few rows:UserWarning"),
              pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")]


def data(shape=(1, 6, 20), *, n_per_class=8, seed=0):
    """``X`` float32 [shape=(3 * n_per_class, *shape)] whose mean is the class index, ``y`` labels."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(3), n_per_class)
    X = rng.standard_normal((len(codes), *shape)).astype(np.float32) + codes.reshape(-1, *[1] * len(shape))
    return X.astype(np.float32), np.array(["a", "b", "c"])[codes]


def spy_net(**params):
    return TorchClassifier(Spy, **{"random_state": 0, "max_epochs": 2, "batch_size": 8, "n_threads": 1,
                                   "standardize": False, **params})


def tiny(name, **params):
    spec = estimators.get_spec(name)
    return estimators.build(name, **{**spec.test_params, "n_threads": 1, "random_state": 0, **params})


# ------------------------------------------------------------------------------ crops
def test_random_crops_are_contiguous_per_sample_and_reproducible():
    X = torch.arange(30.0).expand(16, 2, 3, 30).clone()  # every step holds its own index
    torch.manual_seed(0)
    crops = random_crop(X, 7, axis=3)
    assert crops.shape == (16, 2, 3, 7)
    starts = crops[:, 0, 0, 0]
    assert torch.equal(crops, (starts.view(-1, 1, 1, 1) + torch.arange(7.0)).expand_as(crops))  # contiguous
    assert len(set(starts.tolist())) > 4  # drawn per sample
    assert starts.min() >= 0 and starts.max() <= 30 - 7
    torch.manual_seed(0)
    assert torch.equal(random_crop(X, 7, axis=3), crops)
    sequences = torch.arange(30.0)[None, :, None].expand(5, 30, 4)  # (N, T, F): time is axis 1
    cropped = random_crop(sequences, 7, axis=1)
    assert cropped.shape == (5, 7, 4) and torch.equal(cropped[:, 1:, 0] - cropped[:, :-1, 0], torch.ones(5, 6))


def test_training_batches_get_new_crops_reproducibly():
    X, y = data()
    first = spy_net(crop=8, valid_fraction=None).fit(X, y)
    again = spy_net(crop=8, valid_fraction=None).fit(X, y)
    seen = torch.cat(first.module_.seen["train"])
    assert seen.shape == (2 * len(X), 1, 6, 8)  # 2 epochs of crops of 8 frames
    assert torch.equal(seen, torch.cat(again.module_.seen["train"]))
    epoch_1, epoch_2 = seen[: len(X)], seen[len(X):]
    assert not torch.equal(epoch_1, epoch_2)
    # every training input is a window of one clip of X
    windows = {w.numpy().tobytes() for start in range(20 - 8 + 1) for w in torch.as_tensor(X)[..., start:start + 8]}
    assert all(row.numpy().tobytes() in windows for row in seen)


def test_window_averaged_predict_proba_is_the_mean_of_the_windows_softmax():
    X, y = data((1, 16, 20))
    net = tiny("cnn", crop=8, max_epochs=2, channels=(2, 2, 2)).fit(X, y)
    Z = torch.as_tensor((X - net.input_mean_) / net.input_std_)
    starts = window_starts(20, 8, 0.5)
    assert starts.tolist() == [0, 4, 8, 12]
    net.module_.eval()
    with torch.no_grad():
        by_hand = np.mean([torch.softmax(net.module_(Z[..., s:s + 8]), dim=1).numpy() for s in starts], axis=0)
    np.testing.assert_allclose(net.predict_proba(X), by_hand, rtol=0, atol=1e-6)
    # clips of another length are windowed the same way
    with torch.no_grad():
        by_hand = np.mean([torch.softmax(net.module_(Z[..., s:s + 8]), dim=1).numpy()
                           for s in window_starts(13, 8, 0.5)], axis=0)
    np.testing.assert_allclose(net.predict_proba(X[..., :13]), by_hand, rtol=0, atol=1e-6)


def test_a_clip_shorter_than_the_crop_is_padded_with_the_training_mean():
    X, y = data((1, 16, 5))
    net = tiny("cnn", crop=8, max_epochs=1, channels=(2, 2, 2), batch_augment=None).fit(X, y)
    assert net.input_shape_ == (1, 16, 5)
    Z = torch.as_tensor((X - net.input_mean_) / net.input_std_)
    padded = torch.cat([Z, torch.zeros(len(X), 1, 16, 3)], dim=3)  # zero after standardisation
    net.module_.eval()
    with torch.no_grad():
        by_hand = torch.softmax(net.module_(padded), dim=1).numpy()
    np.testing.assert_allclose(net.predict_proba(X), by_hand, rtol=0, atol=1e-6)
    windows, n = covering_windows(torch.ones(2, 3), 8, axis=1)
    assert n == 1 and windows.tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]] * 2


def test_mean_log_proba_stands_for_logits():
    logits = torch.randn(6, 4)
    out = mean_log_proba(logits, 3)
    expected = torch.softmax(logits, dim=1).view(2, 3, 4).mean(dim=1)
    torch.testing.assert_close(torch.softmax(out, dim=1), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.exp(), expected, rtol=0, atol=1e-6)


def test_the_validation_score_is_clip_level():
    X, y = data((1, 6, 20), n_per_class=8)
    valid = np.arange(0, len(X), 4)
    train = np.setdiff1d(np.arange(len(X)), valid)

    def split(dataset, y=None):
        return Subset(dataset, train), Subset(dataset, valid)

    net = spy_net(crop=8, train_split=split, max_epochs=1, monitor="valid_acc", lr=0.05).fit(X, y)
    seen = net.module_.seen["eval"]
    assert sum(len(batch) for batch in seen) == len(valid) * 4  # 4 windows per validation clip
    assert all(batch.shape[1:] == (1, 6, 8) for batch in seen)
    clip_acc = np.mean(net.predict(X[valid]) == y[valid])  # the one epoch's weights
    assert net.history[-1, "valid_acc"] == pytest.approx(clip_acc, abs=1e-12)


def test_crop_needs_a_time_axis():
    class Flat(nn.Linear):
        def __init__(self, input_shape, n_classes):
            super().__init__(input_shape[0], n_classes)

    X, y = data((10,))
    with pytest.raises(ValueError, match=r"crop=4 needs a time axis.*shape \(24, 10\)"):
        TorchClassifier(Flat, crop=4, max_epochs=1).fit(X[:, :, ], y)
    with pytest.raises(ValueError, match=r"crop=0 must be a positive integer"):
        spy_net(crop=0).fit(*data())


# -------------------------------------------------------------- schedule and criterion
def test_warmup_then_cosine_learning_rates_per_epoch():
    X, y = data()
    net = spy_net(lr=0.1, lr_schedule="warmup_cosine", warmup_epochs=2, max_epochs=6, valid_fraction=None).fit(X, y)
    expected = [0.1 / 3, 0.2 / 3, 0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2, 0.05, 0.1 * (1 + np.cos(3 * np.pi / 4)) / 2]
    np.testing.assert_allclose(net.history[:, "event_lr"], expected, rtol=1e-12)
    assert [round(WarmupCosine(3, 5)(e), 3) for e in range(3)] == [0.333, 0.667, 1.0]  # a warm-up cut short


def test_label_smoothing_reaches_the_criterion():
    X, y = data()
    net = spy_net(label_smoothing=0.2, max_epochs=1).fit(X, y)
    assert net.criterion_.label_smoothing == 0.2
    assert spy_net(max_epochs=1).fit(X, y).criterion_.label_smoothing == 0.0
    assert spy_net(label_smoothing=0.2, criterion__label_smoothing=0.3, max_epochs=1).fit(X, y) \
        .criterion_.label_smoothing == 0.3
    with pytest.raises(ValueError, match=r"label_smoothing=0.2: the criterion NLLLoss takes no label_smoothing"):
        spy_net(label_smoothing=0.2, criterion=nn.NLLLoss).fit(X, y)
    with pytest.raises(ValueError, match=r"label_smoothing=1.0 must be a number in \[0, 1\)"):
        spy_net(label_smoothing=1.0).fit(X, y)


def test_adamw_by_name():
    X, y = data()
    net = spy_net(optimizer="adamw", max_epochs=1).fit(X, y)
    assert type(net.optimizer_) is torch.optim.AdamW and net.optimizer_.param_groups[0]["weight_decay"] == 0.01


# ----------------------------------------------------------------------- early stopping
class RecordWeights(Callback):
    def initialize(self):
        self.weights = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.weights.append(copy.deepcopy(net.module_.state_dict()))


def test_early_stopping_waits_for_min_epochs():
    X, y = data()
    net = spy_net(lr=0.0, max_epochs=30, patience=2, min_epochs=6, monitor="valid_acc").fit(X, y)
    assert len(net.history) == 7  # nothing improves after epoch 1; misses count from epoch 6
    assert isinstance(dict(net.callbacks_)["early_stopping"], PhasedEarlyStopping)
    plain = spy_net(lr=0.0, max_epochs=30, patience=2, monitor="valid_acc").fit(X, y)
    assert len(plain.history) == 3 and type(dict(plain.callbacks_)["early_stopping"]) is EarlyStopping


@pytest.mark.parametrize("monitor, best", [("valid_acc", np.argmax), ("valid_loss", np.argmin),
                                           ("valid_balanced_acc", np.argmax)])
def test_the_best_epoch_by_the_monitored_score_is_restored(monitor, best):
    X, y = data((1, 6, 20), n_per_class=10, seed=3)
    record = RecordWeights()
    net = spy_net(lr=0.02, max_epochs=8, patience=8, monitor=monitor, optimizer="sgd", crop=8,
                  callbacks=[("record", record)]).fit(X, y)
    scores = net.history[:, monitor]
    epoch = int(best(scores))  # the first best: later ties are no improvement
    for name, value in net.module_.state_dict().items():
        torch.testing.assert_close(value, record.weights[epoch][name], rtol=0, atol=0)
    assert dict(net.callbacks_)["early_stopping"].monitor == monitor


# ------------------------------------------------------------- the spectrogram recipe
@pytest.mark.parametrize("name", ["cnn", "cnn6", "lenet", "piczak", "resnet18", "crnn"])
def test_spectrogram_nets_default_to_the_recipe(name):
    params = estimators.get_spec(name).load()().get_params()
    assert (params["optimizer"], params["lr_schedule"], params["label_smoothing"], params["monitor"]) \
        == ("adamw", "warmup_cosine", 0.1, "valid_acc")
    assert params["batch_augment"] is RECIPE_AUGMENT and params["min_epochs"] == 10
    assert params["valid_fraction"] is None  # every training clip, the whole schedule


def test_recipe_specific_defaults():
    assert estimators.build("cnn").batch_norm is True
    assert estimators.build("piczak").crop == 41
    cnn6 = estimators.build("cnn6")
    assert (cnn6.crop, cnn6.max_epochs, cnn6.dropout, cnn6.block_dropout) == (None, 60, 0.0, 0.0)
    # no dropout layer is active in the default module (PANNs' dropouts left it underfitting)
    assert all(m.p == 0.0 for m in CNN6((1, 64, 128), 10).modules() if isinstance(m, nn.Dropout))
    for name in ("mstnet", "heurinet"):  # the waveform nets keep the plain ones
        params = estimators.build(name).get_params()
        assert (params["optimizer"], params["lr_schedule"], params["monitor"], params["crop"], params["valid_fraction"]) \
            == ("adam", None, "valid_loss", None, 0.2)
    for name in ("rnn", "lstm", "gru", "blstm", "transformer"):  # sequence nets: the schedule on every clip, no masks
        params = estimators.build(name).get_params()
        assert (params["optimizer"], params["lr_schedule"], params["label_smoothing"], params["valid_fraction"],
                params["max_epochs"]) == ("adamw", "warmup_cosine", 0.1, None, 60)
        assert params["batch_augment"].is_identity
    transformer = estimators.build("transformer")  # with a validation split it stops as the spectrogram nets do
    assert (transformer.monitor, transformer.min_epochs, transformer.patience) == ("valid_acc", 10, 10)


OFF = {"optimizer": "adam", "lr_schedule": None, "label_smoothing": 0.0, "batch_augment": None,
       "valid_fraction": 0.2, "monitor": "valid_loss", "min_epochs": 1, "crop": None}


def test_every_part_switches_off():
    X, y = data((2, 60, 41), n_per_class=6)
    net = tiny("piczak", **OFF).fit(X, y)
    callbacks = dict(net.callbacks_)
    assert type(net.optimizer_) is torch.optim.Adam and "lr_scheduler" not in callbacks
    assert net.criterion_.label_smoothing == 0.0
    assert type(callbacks["early_stopping"]) is EarlyStopping and callbacks["early_stopping"].monitor == "valid_loss"
    assert net.get_params(deep=False)["batch_augment"] is None
    on = tiny("piczak").fit(X, y)
    assert type(on.optimizer_) is torch.optim.AdamW and on.criterion_.label_smoothing == 0.1
    # by default every clip trains, for every epoch: no validation split, nothing stops the schedule
    assert "early_stopping" not in dict(on.callbacks_) and len(on.history) == on.max_epochs
    assert "valid_acc" not in on.history[-1]
    validated = tiny("piczak", valid_fraction=0.2).fit(X, y)
    assert isinstance(dict(validated.callbacks_)["early_stopping"], PhasedEarlyStopping)


def test_early_stopping_parameters_without_a_validation_split_warn():
    X, y = data((2, 16, 16), n_per_class=6)
    with pytest.warns(UserWarning, match=r"patience=5 set, but CNNClassifier holds no validation split out "
                                         r"\(valid_fraction=None\), so it never stops early"):
        tiny("cnn", patience=5).fit(X, y)
    for quiet in (tiny("cnn"), tiny("cnn", patience=5, valid_fraction=0.5)):  # defaults; a split to stop on
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet.fit(X, y)
        assert not [w for w in caught if "never stops early" in str(w.message)]


def test_a_grid_switches_parts_off_and_get_params_stays_as_set():
    X, y = data((1, 16, 24), n_per_class=6)
    grid = {"crop": [None, 16], "label_smoothing": [0.0, 0.1], "batch_augment": [None, RECIPE_AUGMENT]}
    search = GridSearchCV(tiny("cnn6", max_epochs=1), grid, cv=2, error_score="raise").fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    net = tiny("cnn6", max_epochs=2)
    before = net.get_params(deep=False)
    net.fit(X, y)
    after = net.get_params(deep=False)
    assert before.keys() == after.keys() and all(after[k] is before[k] or after[k] == before[k] for k in before)
    assert clone(net).get_params(deep=False).keys() == before.keys()


# ----------------------------------------------------------------------------- CNN6
def test_cnn6_architecture():
    module = CNN6((1, 64, 128), 10)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.bias) for c in convs] == [
        (1, 16, (5, 5), None), (16, 32, (5, 5), None), (32, 64, (5, 5), None), (64, 128, (5, 5), None)]
    assert sum(isinstance(m, nn.AvgPool2d) for m in module.modules()) == 4
    assert module.band_norm.num_features == 64
    assert module(torch.zeros(3, 1, 64, 128)).shape == (3, 10)
    wide = CNN6((2, 64, 64), 5, channels=(64, 128, 256, 512), n_hidden=512)
    assert wide(torch.zeros(2, 2, 64, 64)).shape == (2, 5)
    with pytest.raises(ValueError, match=r"CNN6: input of 8 bands is too small"):
        CNN6((1, 8, 64), 10)
    short = CNN6((1, 64, 8), 10)  # a clip shorter than 16 frames is padded at its end
    assert short(torch.zeros(2, 1, 64, 8)).shape == (2, 10)


def test_cnn6_learns_and_predicts_clips_of_any_length():
    X, y = data((1, 16, 40), n_per_class=10)
    X[:, :, :8] += 2.0 * (np.arange(len(X)) // 10).reshape(-1, 1, 1, 1)  # a class-dependent low band
    net = tiny("cnn6", channels=(4, 8, 8, 8), max_epochs=10, lr=1e-2,
               batch_augment=None, valid_fraction=None).fit(X, y)
    assert net.score(X, y) > 0.6
    assert net.predict_proba(X[..., :23]).shape == (30, 3)


def test_piczak_crops_and_the_external_segment_vote_both_work():
    X, y = data((2, 60, 87), n_per_class=4)
    net = tiny("piczak", max_epochs=1).fit(X, y)
    assert net.module_.classifier[0].in_features == 4 * 3  # built for 41 frames (87: 4 * 8)
    assert net.predict_proba(X).shape == (12, 3)
    voted = SegmentClassifier(tiny("piczak", max_epochs=1), window=41).fit(X, y)
    assert voted.predict_proba(X).shape == (12, 3)


# ------------------------------------------------------------------------ calibration
def test_temperature_scaling_is_fitted_on_the_validation_split():
    X, y = data((1, 6, 20), n_per_class=10, seed=1)
    valid = np.arange(0, len(X), 3)
    train = np.setdiff1d(np.arange(len(X)), valid)

    def split(dataset, y=None):
        return Subset(dataset, train), Subset(dataset, valid)

    plain = spy_net(crop=8, train_split=split, lr=0.05, max_epochs=4).fit(X, y)
    assert not hasattr(plain, "temperature_")
    net = spy_net(crop=8, train_split=split, lr=0.05, max_epochs=4, calibrate=True).fit(X, y)
    T = net.temperature_
    assert T > 0 and net.history[-1, "temperature"] == T
    raw = plain.predict_proba(X)  # the same weights: calibration changes no training step
    scaled = np.exp(np.log(raw) / T)
    np.testing.assert_allclose(net.predict_proba(X), scaled / scaled.sum(axis=1, keepdims=True), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(net.predict(X), plain.predict(X))
    codes = np.searchsorted(net.classes_, y[valid])

    def nll(proba):
        return -np.mean(np.log(proba[np.arange(len(valid)), codes]))

    assert nll(net.predict_proba(X[valid])) <= nll(raw[valid]) + 1e-9  # T = 1 was a candidate
    with pytest.raises(ValueError, match=r"calibrate=True must be False without a validation split"):
        spy_net(calibrate=True, valid_fraction=None).fit(X, y)
