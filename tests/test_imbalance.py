"""Class imbalance (issue 14): imbalanced-learn samplers as a pipeline step that sees the training
folds only, and balanced batches for nets."""

import json

import numpy as np
import pytest

from estimators._sampling import ClassResampler, balanced_sampler, dataset_targets
from featurestore import extract, load_dataset
from pipelines.build import make_pipeline, pipeline_params
from pipelines.evaluate import cross_validate
from pipelines.splits import ClipSplitter

AUDIO = {"sr": 8000, "duration": 0.5}


@pytest.fixture
def mfcc(urbansound_root, store):
    """The UrbanSound8K layout's clips (3 classes x 12, 3 folds) and their MFCC feature set."""
    dataset = load_dataset("urbansound8k", urbansound_root)
    return dataset, extract(dataset, {"mfcc": {"n_mfcc": 13}}, store=store, audio=AUDIO, progress=False)["mfcc"]


def imbalanced(n=(30, 6, 3), shape=(2, 4), seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b", "c"], n)
    X = rng.standard_normal((len(y), *shape)).astype(np.float32) + (y == "b")[:, None, None]
    return X, y


@pytest.mark.parametrize("kind, counts", [(None, [30, 8, 6]), ("over", [30, 30, 30]), ("under", [6, 6, 6]),
                                          ("smote", [30, 30, 30])])
def test_each_sampler_balances_the_classes(kind, counts):
    X, y = imbalanced(n=(30, 8, 6))
    Xr, yr = ClassResampler(kind, random_state=0).fit_resample(X, y)
    assert [int((yr == c).sum()) for c in "abc"] == counts
    assert Xr.shape[1:] == X.shape[1:] and Xr.dtype == X.dtype  # rows keep their shape
    if kind in ("over", "under"):  # rows drawn from the originals, with their labels
        originals = {row.tobytes(): label for row, label in zip(X, y)}
        assert all(originals[row.tobytes()] == label for row, label in zip(Xr, yr))
    again = ClassResampler(kind, random_state=0).fit_resample(X, y)[0]
    np.testing.assert_array_equal(Xr, again)  # seeded: bit-identical


def test_an_unknown_sampler_or_too_few_rows_for_smote_is_named():
    with pytest.raises(ValueError, match="sampler='smite' must be None or one of 'over', 'under', 'smote'"):
        ClassResampler("smite").fit_resample(*imbalanced())
    with pytest.raises(ValueError, match="more than 5 training rows of each class; class 'c' has 3"):
        ClassResampler("smote").fit_resample(*imbalanced(n=(30, 6, 3)))


def test_the_sampler_sees_the_training_folds_only(mfcc, monkeypatch):
    dataset, fs = mfcc
    seen = []
    original = ClassResampler.fit_resample

    def spy(self, X, y):
        seen.append((np.array(X), np.array(y)))
        return original(self, X, y)

    monkeypatch.setattr(ClassResampler, "fit_resample", spy)
    pipeline = make_pipeline("svm", fs, sampler="over", run_settings={"random_state": 0})
    clips = dataset.clips
    result = cross_validate(pipeline, clips, progress=False)
    assert len(seen) == 3  # once per fit; predicting and scoring never resample
    splits = list(ClipSplitter(clips).split(clips["clip_id"].to_numpy()))
    for (X, y), (train, test) in zip(seen, splits):
        ids = clips["clip_id"].to_numpy(dtype=str)
        np.testing.assert_array_equal(X, fs.read(ids[train]))  # exactly the training fold's rows
        np.testing.assert_array_equal(y, clips["label"].to_numpy()[train])
        assert not {row.tobytes() for row in X} & {row.tobytes() for row in fs.read(ids[test])}
    assert result.folds["n_test"].sum() == len(clips)


def test_sampler_is_a_grid_parameter_of_classical_models(mfcc):
    _, fs = mfcc
    pipeline = make_pipeline("svm", fs, resample=True)
    assert pipeline_params(pipeline, {"sampler": [None, "over"], "C": [1]}) == {
        "sampler__kind": [None, "over"], "model__C": [1]}
    assert pipeline.set_params(sampler__kind="smote").named_steps["sampler"].kind == "smote"
    with pytest.raises(ValueError, match="sampler='smite' must be None or one of"):
        pipeline_params(pipeline, {"sampler": ["smite"]})
    with pytest.raises(ValueError, match="cnn is a net: use balanced_batches=True"):
        make_pipeline("cnn", fs, sampler="over")
    with pytest.raises(ValueError, match="no sampler step"):
        pipeline_params(make_pipeline("svm", fs), {"sampler": ["over"]})


def test_a_grid_over_samplers_from_the_command_line(capsys, urbansound_root, tmp_path):
    from cli import main

    code = main(["grid", "--estimator", "svm", "--dataset", "urbansound8k", "--root", str(urbansound_root),
                 "--cache", str(tmp_path / "cache"), "--set", "audio.sr=8000", "--set", "audio.duration=0.5",
                 "--param-grid", "sampler=none,over,smote", "--search", "flat", "--no-progress",
                 "--output", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    import pandas as pd

    table = pd.read_csv(tmp_path / "run" / "cv_results.csv")
    assert [json.loads(p)["sampler__kind"] for p in table["params"]] == [None, "over", "smote"]
    assert 'sampler = [\n    "none",\n    "over",\n    "smote",\n]' in (tmp_path / "run" / "config.toml").read_text()


# --------------------------------------------------------------------------- nets
def test_balanced_sampler_draws_classes_about_equally():
    torch = pytest.importorskip("torch")
    targets = np.repeat([0, 1, 2], [900, 90, 10])
    torch.manual_seed(0)
    drawn = targets[np.array(list(balanced_sampler(targets)) * 1 + list(balanced_sampler(targets)))]
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    # 2000 draws with p = 1/3 each: standard deviation 0.011, so 0.05 is over 4 standard deviations
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.05)


def test_balanced_batches_of_a_net(one_torch_thread):
    torch = pytest.importorskip("torch")
    from skorch.dataset import Dataset
    from torch.utils.data import Subset

    import estimators

    y = np.repeat([0, 1], [360, 40])
    X = np.random.default_rng(0).standard_normal((400, 1, 8, 8)).astype(np.float32)
    dataset = Subset(Dataset(X, y), np.arange(400)[::-1].copy())  # as skorch's training split gives it
    np.testing.assert_array_equal(dataset_targets(dataset), y[::-1])

    def shares(balanced):
        net = estimators.build("cnn", balanced_batches=balanced, batch_size=50)
        torch.manual_seed(0)
        labels = np.concatenate([yb.numpy() for _ in range(5) for _, yb in net.get_iterator(dataset, training=True)])
        return np.bincount(labels, minlength=2) / len(labels)

    # 2000 draws: balanced 1/2 each (standard deviation 0.011; tolerance 0.05), else the data's 0.9 / 0.1
    np.testing.assert_allclose(shares(True), [0.5, 0.5], atol=0.05)
    np.testing.assert_allclose(shares(False), [0.9, 0.1], atol=1e-12)
    valid = estimators.build("cnn", balanced_batches=True).get_iterator(dataset, training=False)
    assert np.bincount(np.concatenate([yb.numpy() for _, yb in valid]), minlength=2).tolist() == [360, 40]


def test_a_net_trains_on_balanced_batches_repeatably(one_torch_thread):
    pytest.importorskip("torch")
    import estimators

    X, y = imbalanced(n=(24, 8, 4), shape=(1, 8, 8))
    fits = [estimators.build("cnn", channels=(2, 2, 2), n_hidden=4, max_epochs=2, balanced_batches=True,
                             random_state=0, valid_fraction=None).fit(X, y).predict_proba(X) for _ in range(2)]
    np.testing.assert_array_equal(fits[0], fits[1])
    assert fits[0].shape == (36, 3)
