"""Tests of the augmentation of training batches: estimators._augment (its BatchAugment, the one
parameter ``batch_augment`` of the nets) and TorchClassifier's step.

The batch functions are checked on tensors of ones (where a mask shows as zeros); the estimator's
behaviour with spy modules that record what ``forward`` sees in training and in evaluation mode.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch import NeuralNetClassifier
from torch import nn

import estimators
from estimators._augment import BatchAugment, augment_waveforms, mixup, mixup_loss, spec_mask
from estimators._recipe import RECIPE_AUGMENT
from estimators._torch import TorchClassifier
from featurestore.augment import WaveformAugmentation

LABELS = np.array(["dog", "rain", "siren"])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def data(shape, n_per_class=6, seed=0, offset=5.0):
    """``X`` float32 [shape=(3 * n_per_class, *shape)], without zeros (offset 5), and labels."""
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((3 * n_per_class, *shape)) + offset).astype(np.float32)
    return X, np.repeat(LABELS, n_per_class)


def tiny(name, **params):
    spec = estimators.get_spec(name)
    return spec.build(**{"random_state": 0, **spec.test_params, **params})


class Spy(nn.Module):
    """A linear classifier recording every batch ``forward`` sees, by mode (train or eval)."""

    input_kinds = ("image",)

    def __init__(self, input_shape, n_classes):
        super().__init__()
        self.linear = nn.Linear(int(np.prod(input_shape)), n_classes)
        self.seen = {"train": [], "eval": []}

    def forward(self, x):
        self.seen["train" if self.training else "eval"].append(x.detach().clone())
        return self.linear(x.flatten(1))


class SpySequence(Spy):
    input_kinds = ("sequence",)


class SpyWaveform(Spy):
    input_kinds = ("waveform",)


def spy_net(module=Spy, **params):
    return TorchClassifier(module, **{"random_state": 0, "max_epochs": 2, "batch_size": 8,
                                      "standardize": False, **params})


def seen(net, mode):
    return torch.cat(net.module_.seen[mode]).numpy()


def rows_of(X):
    return {row.tobytes() for row in np.ascontiguousarray(X)}


def zero_runs(flags):
    """Number of True entries of a boolean vector and whether they are one contiguous run."""
    (where,) = np.nonzero(flags)
    return len(where), len(where) == 0 or where[-1] - where[0] + 1 == len(where)


# ------------------------------------------------------------------------- spec_mask
@pytest.mark.parametrize("layout, shape", [("image", (200, 2, 12, 20)), ("sequence", (200, 20, 12))])
def test_spec_mask_masks_bands_and_frames_of_bounded_width_per_example(layout, shape):
    X = torch.ones(shape)
    out = spec_mask(X, layout=layout, freq_mask=3, time_mask=5, n_masks=1, generator=seeded())
    assert out.shape == X.shape and out.dtype == X.dtype
    assert torch.equal(X, torch.ones(shape))  # the input is left alone
    out = out.numpy()
    if layout == "image":
        assert (out[:, 0] == out[:, 1]).all()  # channels share the masks
        grid = out[:, 0]  # (N, freq, time)
    else:
        grid = out.transpose(0, 2, 1)  # (N, T, F) -> (N, freq, time)
    freq_widths, time_widths = [], []
    for example in grid:
        zero = example == 0
        bands, frames = zero.all(axis=1), zero.all(axis=0)
        width, contiguous = zero_runs(bands)
        assert contiguous and width <= 3
        freq_widths.append(width)
        width, contiguous = zero_runs(frames)
        assert contiguous and width <= 5
        time_widths.append(width)
        # every zero lies in a masked band or frame
        assert (zero == (bands[:, None] | frames[None, :])).all()
    assert set(freq_widths) == {0, 1, 2, 3} and set(time_widths) == {0, 1, 2, 3, 4, 5}
    starts = {tuple(np.flatnonzero((example == 0).all(axis=1))) for example in grid}
    assert len(starts) > 5  # positions differ between examples


def test_spec_mask_on_one_axis_only_and_several_masks():
    X = torch.ones((100, 1, 10, 30))
    out = spec_mask(X, time_mask=4, n_masks=3, generator=seeded()).numpy()[:, 0]
    assert (out == 0).any()
    assert not (out == 0).all(axis=2).any()  # no frequency band masked
    frames = (out == 0).all(axis=1).sum(axis=1)
    assert frames.max() <= 12 and frames.max() > 4  # up to three masks of up to 4 frames
    assert spec_mask(X, time_mask=4, n_masks=0) is X
    assert spec_mask(X) is X


def test_spec_mask_is_reproducible_from_its_generator_and_uses_the_global_one_otherwise():
    X = torch.ones((16, 1, 8, 8))
    first = spec_mask(X, freq_mask=3, time_mask=3, generator=seeded(1))
    assert torch.equal(first, spec_mask(X, freq_mask=3, time_mask=3, generator=seeded(1)))
    assert not torch.equal(first, spec_mask(X, freq_mask=3, time_mask=3, generator=seeded(2)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        again = spec_mask(X, freq_mask=3, time_mask=3)
    assert torch.equal(first, again)


def test_spec_mask_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"freq_mask=13 is wider than the 12 frequency bins"):
        spec_mask(torch.ones((2, 1, 12, 20)), freq_mask=13)
    with pytest.raises(ValueError, match=r"time_mask=21 is wider than the 20 frames"):
        spec_mask(torch.ones((2, 20, 12)), layout="sequence", time_mask=21)
    with pytest.raises(ValueError, match=r"time_mask=2 applies to spectrogram inputs"):
        spec_mask(torch.ones((2, 100)), layout="waveform", time_mask=2)


# ----------------------------------------------------------------------------- mixup
def test_mixup_mixes_the_batch_with_a_permutation_of_itself():
    X = torch.randn((8, 3, 5), generator=seeded(3))
    mixed, perm, lam = mixup(X, 0.4, generator=seeded())
    assert sorted(perm.tolist()) == list(range(8)) and perm.tolist() != list(range(8))
    assert 0 <= lam <= 1
    torch.testing.assert_close(mixed, lam * X + (1 - lam) * X[perm])
    again = mixup(X, 0.4, generator=seeded())
    assert torch.equal(again[0], mixed) and again[2] == lam
    lams = [mixup(X, 0.2, generator=seeded(seed))[2] for seed in range(200)]
    assert np.mean(np.minimum(lams, 1 - np.asarray(lams)) < 0.1) > 0.5  # Beta(0.2, 0.2): mostly near 0 or 1


def test_mixup_step_loss_is_the_lambda_weighted_sum_with_class_weights():
    X, _ = data((1, 4, 5), n_per_class=8)
    y = np.array(["dog"] * 16 + ["rain"] * 5 + ["siren"] * 3)
    net = spy_net(batch_augment=BatchAugment(mixup_alpha=0.4), class_weight="balanced", max_epochs=1, device="cpu").fit(X, y)
    Xt = torch.as_tensor(X[:8])
    yt = torch.as_tensor(np.searchsorted(net.classes_, y[[0, 1, 2, 16, 17, 18, 21, 22]]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        step = net.train_step_single((Xt, yt))
        torch.manual_seed(5)
        expected_X, perm, lam = mixup(Xt, 0.4)
    assert 0 < lam < 1
    torch.testing.assert_close(net.module_.seen["train"][-1], expected_X)
    weight = torch.as_tensor(net.class_weight_, dtype=torch.float32)

    def loss(pred, target):
        return nn.functional.cross_entropy(pred, target, weight=weight)

    expected = lam * loss(step["y_pred"], yt) + (1 - lam) * loss(step["y_pred"], yt[perm])
    torch.testing.assert_close(step["loss"], expected)
    torch.testing.assert_close(mixup_loss(loss, step["y_pred"], yt, perm, lam), expected)


# ---------------------------------------------------------------- waveform batches
def test_augment_waveforms_applies_the_augmentation_with_a_seed_drawn_from_torch():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.standard_normal((4, 2000)).astype(np.float32))
    augmentation = WaveformAugmentation(pitch_shift=2, time_stretch=0.2, gain_db=6, time_shift=0.3)
    out = augment_waveforms(X, augmentation, sr=8000, generator=seeded())
    assert out.shape == X.shape and out.dtype == X.dtype and out.device == X.device
    assert not torch.equal(out, X)
    assert torch.equal(out, augment_waveforms(X, augmentation, sr=8000, generator=seeded()))
    assert not torch.equal(out, augment_waveforms(X, augmentation, sr=8000, generator=seeded(1)))
    numpy_rng = np.random.default_rng(int(torch.randint(0, 2**62, (), generator=seeded())))
    np.testing.assert_array_equal(out.numpy(), augmentation.apply_batch(X.numpy(), 8000, numpy_rng))


def test_waveform_net_trains_on_augmented_batches_of_the_same_shape():
    X, y = data((1000,), offset=0.0)
    augment = BatchAugment(time_shift=0.5, gain_db=6.0, pitch_shift=1.0)
    net = spy_net(SpyWaveform, batch_augment=augment, sr=8000, valid_fraction=0.25).fit(X, y)
    train, valid = seen(net, "train"), seen(net, "eval")
    assert train.shape[1:] == valid.shape[1:] == X.shape[1:]
    assert not rows_of(train) & rows_of(X)  # every training clip was changed
    assert rows_of(valid) <= rows_of(X)  # validation clips were not
    net.module_.seen["eval"].clear()
    net.predict_proba(X)
    np.testing.assert_array_equal(seen(net, "eval"), X)


def test_recurrent_net_augments_raw_waveform_frames():
    X, y = data((450,), offset=0.0)
    net = tiny("gru", frame_length=100, batch_augment=BatchAugment(time_shift=0.2, noise_snr=10)).fit(X, y)
    assert net.predict(X).shape == (len(X),)


# ------------------------------------------------------------ training batches only
def test_masks_reach_training_batches_only_and_predictions_are_unaugmented():
    X, y = data((1, 8, 10), n_per_class=8)
    net = spy_net(batch_augment=BatchAugment(freq_mask=3, time_mask=4, n_masks=2), valid_fraction=0.25).fit(X, y)
    train, valid = seen(net, "train"), seen(net, "eval")
    assert (train == 0).any() and not (X == 0).any()
    assert not rows_of(train) <= rows_of(X)
    for row in train:  # each is a row of X with masked (zeroed) bands and frames
        matches = [(x[row != 0] == row[row != 0]).all() for x in X]
        assert any(matches)
    assert len(valid) == net.max_epochs * 6 and rows_of(valid) <= rows_of(X)

    net.module_.seen["eval"].clear()
    proba = net.predict_proba(X)
    np.testing.assert_array_equal(proba, net.predict_proba(X))
    np.testing.assert_array_equal(seen(net, "eval"), np.concatenate([X, X]))
    net.module_.eval()
    with torch.no_grad():
        expected = torch.softmax(net.module_(torch.as_tensor(X)), dim=1).numpy()
    np.testing.assert_allclose(proba, expected, rtol=1e-6)
    assert net.score(X, y) == np.mean(net.predict(X) == y)
    assert not net.module_.seen["train"][len(train):]  # predicting trained on nothing


def test_sequence_masks_and_mixup_in_one_fit():
    X, y = data((10, 6))
    augment = BatchAugment(freq_mask=2, time_mask=3, mixup_alpha=0.3)
    net = spy_net(SpySequence, batch_augment=augment, valid_fraction=None).fit(X, y)
    assert seen(net, "train").shape[1:] == X.shape[1:]
    assert not rows_of(seen(net, "train")) & rows_of(X)


# ------------------------------------------------------------------------ seeding
AUGMENTED = {"batch_augment": BatchAugment(time_mask=4, freq_mask=4, n_masks=2, mixup_alpha=0.2)}


def weights(net):
    return [p.detach().numpy().copy() for p in net.module_.parameters()]


def test_same_random_state_gives_identical_augmented_fits_and_others_differ():
    X, y = data((2, 16, 16))
    before = torch.random.get_rng_state()
    first = weights(tiny("cnn", **AUGMENTED).fit(X, y))
    assert torch.equal(torch.random.get_rng_state(), before)
    second = weights(tiny("cnn", **AUGMENTED).fit(X, y))
    other_seed = weights(tiny("cnn", random_state=1, **AUGMENTED).fit(X, y))
    plain = weights(tiny("cnn").fit(X, y))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other_seed))
    assert any(not np.array_equal(a, b) for a, b in zip(first, plain))  # augmentation acts


def unaugmented(net_class):
    """``net_class`` as it was before augmentation: skorch's own training step."""

    class Unaugmented(net_class):
        def train_step_single(self, batch, **fit_params):
            return NeuralNetClassifier.train_step_single(self, batch, **fit_params)

    return Unaugmented


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_defaults_train_exactly_as_without_augmentation(name):
    spec = estimators.get_spec(name)
    X, y = data(spec.test_shape, offset=0.0)
    off = BatchAugment(time_mask=0, freq_mask=8, n_masks=0, mixup_alpha=0.0, noise_snr=None)
    assert off.is_identity and not BatchAugment(time_mask=1).is_identity
    net = tiny(name, batch_augment=BatchAugment())  # the cnn's own default is the recipe's
    reference = unaugmented(type(net))(**net.get_params(deep=False)).fit(X, y)
    for net in (tiny(name, batch_augment=BatchAugment()).fit(X, y), tiny(name, batch_augment=off).fit(X, y),
                tiny(name, batch_augment=None).fit(X, y)):
        for a, b in zip(weights(net), weights(reference), strict=True):
            np.testing.assert_array_equal(a, b)
        assert net.history[:, "train_loss"] == reference.history[:, "train_loss"]


# ------------------------------------------------------------------------- errors
@pytest.mark.parametrize("fields, match", [
    ({"time_mask": -1}, r"time_mask=-1 must be an integer >= 0"),
    ({"freq_mask": 2.5}, r"freq_mask=2.5 must be an integer >= 0"),
    ({"n_masks": -2}, r"n_masks=-2 must be an integer >= 0"),
    ({"n_masks": True}, r"n_masks=True must be an integer >= 0"),
    ({"mixup_alpha": -0.1}, r"mixup_alpha=-0.1 must be a finite number >= 0"),
    ({"mixup_alpha": float("inf")}, r"mixup_alpha=inf must be a finite number >= 0"),
    ({"gain_db": -3.0}, r"gain_db=-3.0 must be a finite number >= 0"),
    ({"time_shift": 1.5}, r"time_shift=1.5 must be a fraction"),
    ({"noise_snr": "loud"}, r"noise_snr='loud' must be a number of dB or None"),
])
def test_bad_batch_augment_fields_are_named(fields, match):
    with pytest.raises(ValueError, match=match):
        BatchAugment(**fields)
    net = tiny("cnn")
    with pytest.raises(ValueError, match=match):  # a grid's value fails before any training
        net.set_params(**{f"batch_augment__{key}": value for key, value in fields.items()})
    assert net.batch_augment == RECIPE_AUGMENT


@pytest.mark.parametrize("params, match", [
    ({"sr": 0}, r"sr=0 must be a positive number"),
    ({"batch_augment": {"time_mask": 4}}, r"batch_augment=\{'time_mask': 4\} must be a BatchAugment or None"),
    ({"batch_augment": BatchAugment(freq_mask=17)}, r"freq_mask=17 is wider than the 16 frequency bins"),
    ({"batch_augment": BatchAugment(time_stretch=0.2)},
     r"time_stretch=0.2 applies to waveform inputs.*shape \(18, 2, 16, 16\).*stored augmented copies"),
    ({"batch_augment": BatchAugment(pitch_shift=1.0)}, r"pitch_shift=1.0 applies to waveform inputs"),
])
def test_augmentation_that_does_not_fit_the_data_is_named_at_fit(params, match):
    X, y = data((2, 16, 16))
    with pytest.raises(ValueError, match=match):
        tiny("cnn", **params).fit(X, y)


def test_waveform_parameters_on_sequences_and_masks_on_waveforms_are_rejected():
    X, y = data((20, 13))
    with pytest.raises(ValueError, match=r"noise_snr=20 applies to waveform inputs"):
        tiny("lstm", batch_augment=BatchAugment(noise_snr=20)).fit(X, y)
    X, y = data((1000,))
    with pytest.raises(ValueError, match=r"time_mask=4 applies to spectrogram inputs.*\(18, 1000\)"):
        spy_net(SpyWaveform, batch_augment=BatchAugment(time_mask=4)).fit(X, y)
    with pytest.raises(ValueError, match=r"freq_mask=2 applies to spectrogram inputs"):
        spy_net(SpyWaveform, batch_augment=BatchAugment(freq_mask=2)).fit(X, y)


# ------------------------------------------------------------------ model selection
def test_grid_search_tunes_masks_and_mixup():
    X, y = data((2, 16, 16), n_per_class=8)
    grid = {"batch_augment__time_mask": [0, 4], "batch_augment__mixup_alpha": [0.0, 0.2]}
    search = GridSearchCV(tiny("cnn"), grid, cv=2, error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["batch_augment__time_mask"] in (0, 4)
    best = search.best_estimator_.batch_augment
    assert (best.time_mask, best.mixup_alpha) == (search.best_params_["batch_augment__time_mask"],
                                                  search.best_params_["batch_augment__mixup_alpha"])


def test_a_grid_replaces_batch_augment_and_never_changes_a_shared_one():
    shared = BatchAugment(freq_mask=2)
    first, second = tiny("cnn", batch_augment=shared), tiny("cnn", batch_augment=shared)
    first.set_params(batch_augment__time_mask=4)
    assert first.batch_augment == BatchAugment(freq_mask=2, time_mask=4)
    assert second.batch_augment is shared and shared == BatchAugment(freq_mask=2)
    assert tiny("cnn").batch_augment is RECIPE_AUGMENT  # the default instance too
    assert RECIPE_AUGMENT == BatchAugment(freq_mask=8, time_mask=8, n_masks=2, mixup_alpha=0.2)
    both = tiny("cnn").set_params(batch_augment=BatchAugment(n_masks=2), batch_augment__time_mask=3)
    assert both.batch_augment == BatchAugment(n_masks=2, time_mask=3)
    assert tiny("cnn", batch_augment=None).set_params(batch_augment__mixup_alpha=0.2).batch_augment \
        == BatchAugment(mixup_alpha=0.2)
    with pytest.raises(ValueError, match="batch_augment has no field 'time_masks'"):
        tiny("cnn").set_params(batch_augment__time_masks=4)


def test_old_flat_names_are_deprecated_aliases_in_set_params_only():
    net = tiny("cnn")
    with pytest.warns(FutureWarning) as record:
        net.set_params(time_mask=4, mixup_alpha=0.2)
    assert [str(w.message).split(";")[0] for w in record] == [
        "time_mask is deprecated for CNNClassifier", "mixup_alpha is deprecated for CNNClassifier"]
    assert "use batch_augment__time_mask" in str(record[0].message)
    assert net.batch_augment == BatchAugment(freq_mask=8, time_mask=4, n_masks=2, mixup_alpha=0.2)
    assert "time_mask" not in net.get_params()
    with pytest.raises(TypeError, match=r"time_mask=\.\.\.: it is a field of batch_augment now"):
        TorchClassifier(nn.Linear, time_mask=4)


def test_pipeline_parameters_pass_check_params():
    pipeline = Pipeline([("features", FunctionTransformer()), ("model", estimators.build("cnn"))])
    estimators.check_params(pipeline, {"model__batch_augment__time_mask": [0, 8],
                                       "model__batch_augment__freq_mask": [0, 8],
                                       "model__batch_augment__n_masks": [1, 2],
                                       "model__batch_augment__mixup_alpha": [0.0, 0.2],
                                       "model__batch_augment__time_stretch": [0.2], "model__sr": [16000]})
    with pytest.raises(ValueError, match="Did you mean 'model__batch_augment__time_mask'"):
        estimators.check_params(pipeline, {"model__batch_augment__time_masks": [0, 8]})
    with pytest.raises(ValueError, match="no parameter 'model__time_mask'"):  # the old spelling
        estimators.check_params(pipeline, {"model__time_mask": [0, 8]})


def test_batch_augment_clones_and_lists_its_fields():
    augment = BatchAugment(time_mask=4, mixup_alpha=0.2)
    assert repr(augment) == "BatchAugment(time_mask=4, mixup_alpha=0.2)"
    assert clone(augment) == augment and clone(augment) is not augment
    assert augment.get_params()["time_mask"] == 4 and len(augment.get_params()) == 9


def test_clone_and_pickle_keep_the_parameters():
    params = {"batch_augment": BatchAugment(time_mask=4, freq_mask=2, n_masks=2, mixup_alpha=0.2)}
    net = tiny("cnn", **params)
    assert clone(net).get_params(deep=False).items() >= params.items()
    assert clone(net).get_params()["batch_augment__time_mask"] == 4
    wave = {"batch_augment": BatchAugment(time_stretch=0.1, pitch_shift=2.0, noise_snr=30.0, gain_db=3.0,
                                          time_shift=0.25), "sr": 16000}
    assert clone(tiny("mstnet", **wave)).get_params(deep=False).items() >= wave.items()

    X, y = data((2, 16, 16))
    net.fit(X, y)
    assert net.get_params(deep=False).items() >= params.items()  # fit changes no parameter
    loaded = pickle.loads(pickle.dumps(net))
    assert loaded.get_params(deep=False).items() >= params.items()
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
