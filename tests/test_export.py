"""ONNX export (issue 15): the graph of a saved model agrees with it, and `predict --onnx` with `predict`."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")
pytest.importorskip("onnxscript")

from cli import main  # noqa: E402
from conftest import CLASSES, write_clip  # noqa: E402
from pipelines.export import ATOL, ExportError, OnnxGraph, OnnxModel, export_onnx, sidecar_path  # noqa: E402
from pipelines.predict import load_model, predict_files  # noqa: E402

SMALL = ["--set", "audio.sr=8000", "--set", "audio.duration=0.5", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A CSV manifest of 3 classes x 3 folds x 2 recordings x 2 tones (36 clips), and a store folder."""
    root = tmp_path_factory.mktemp("export")
    rows, seed = [], 0
    for label in CLASSES:
        for fold in (1, 2, 3):
            for recording in range(2):
                for take in range(2):
                    path = f"audio/{label}-{fold}-{recording}-{take}.wav"
                    write_clip(root / path, label, seed, sr=8000)
                    rows.append({"path": path, "label": label, "fold": fold, "group": f"{label}{fold}{recording}"})
                    seed += 1
    pd.DataFrame(rows).to_csv(root / "clips.csv", index=False)
    return root


def train(data, estimator, *extra):
    """``cli.py cv`` of ``estimator`` on the fixture data (once per module), and its model.joblib."""
    folder = data / f"run-{estimator}{'-'.join(extra)}"
    if not folder.exists():
        code = main(["cv", "--estimator", estimator, "--dataset", "csv", "--root", str(data / "clips.csv"),
                     "--cache", str(data / "cache"), "--output", str(folder), "--folds", "1", "--refit", *SMALL, *extra])
        assert code == 0
    return folder / "model.joblib"


def stored_features(model_path):
    """Every stored clip's features of the model's feature set, and the pipeline's probabilities."""
    pipeline = load_model(model_path)["model"]
    loader = pipeline.named_steps["features"]
    from featurestore.store import FeatureSet

    fs = FeatureSet(loader.feature_set)
    ids = fs.clip_ids
    return fs.read(ids), pipeline.predict_proba(ids)


# The parity tolerance is ATOL (1e-4): both sides compute in float32 from the same stored features,
# in different summation orders, and skl2onnx's SVM, scaler and linear ops are float32 where
# scikit-learn works in float64 (measured differences are 1e-7 to 1e-6).
@pytest.mark.parametrize("estimator,extra", [
    ("svm", ()),  # temperature scaling: this module's own converter
    ("svm", ("--params", "calibration=sigmoid")),  # Platt scaling: skl2onnx's
    ("softmax", ("--params", "features=summary")),
    ("cnn", ("--max-epochs", "1", "--params", "channels=(2, 4, 4)", "--params", "n_hidden=8")),
])
def test_the_graph_agrees_with_the_model(data, tmp_path, estimator, extra, one_torch_thread):
    model_path = train(data, estimator, *extra)
    sidecar = export_onnx(model_path, tmp_path / "model.onnx")
    X, expected = stored_features(model_path)
    got = OnnxGraph(tmp_path / "model.onnx").run(X)
    assert got.shape == expected.shape == (36, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 34 / 36  # a near-tie may flip, not more
    # one clip at a time too: the batch axis is dynamic
    np.testing.assert_allclose(OnnxGraph(tmp_path / "model.onnx").run(X[:1]), expected[:1], rtol=0, atol=ATOL)
    written = json.loads(sidecar_path(tmp_path / "model.onnx").read_text())
    assert written["classes"] == sorted(CLASSES) == load_model(model_path)["model"].classes_.tolist()
    assert written["input_shape"] == [None, *X.shape[1:]]
    assert written["check"]["on"] == "stored features" and written["check"]["max_abs_diff"] <= ATOL
    assert written["feature"]["kind"] == sidecar["feature"]["kind"] == ("mel" if estimator == "cnn" else "mfcc")


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("ensemble", [False, True])
@pytest.mark.filterwarnings("ignore:Attribute `prob:FutureWarning")  # skl2onnx reads SVC's probA_/probB_
def test_temperature_scaling_converts_for_two_and_more_classes(n_classes, ensemble):
    # a binary SVC has one decision column, which scikit-learn turns into the logits (-d, d)
    import onnxruntime
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from pipelines.export import _register_temperature_scaling

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)).astype(np.float32)
    y = np.array(["dog", "rain", "siren", "drill"])[np.arange(60) % n_classes]
    X[:, 0] += np.arange(60) % n_classes
    model = CalibratedClassifierCV(SVC(), method="temperature", cv=3, ensemble=ensemble).fit(X, y)
    _register_temperature_scaling()
    onx = skl2onnx.to_onnx(model, initial_types=[("x", FloatTensorType([None, 5]))],
                           options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    labels, probabilities = onnxruntime.InferenceSession(onx.SerializeToString()).run(None, {"x": X})
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=0, atol=ATOL)
    assert labels.tolist() == model.predict(X).tolist()


def test_sidecar_features_are_the_stored_ones(data, tmp_path):
    """predict --onnx computes features from the sidecar alone: they must equal the loader's."""
    model_path = train(data, "svm")
    export_onnx(model_path, tmp_path / "model.onnx")
    pipeline = load_model(model_path)["model"]
    waves = np.random.default_rng(0).standard_normal((3, 4000)).astype(np.float32) * 0.1
    from_loader = pipeline.named_steps["features"].transform(waves)
    np.testing.assert_array_equal(OnnxModel(tmp_path / "model.onnx").features(waves), from_loader)


def test_predict_onnx_agrees_with_predict(data, tmp_path, capsys):
    model_path = train(data, "svm")
    assert main(["export", "--model", str(model_path), "--format", "onnx", "--output",
                 str(tmp_path / "svm.onnx")]) == 0
    out = capsys.readouterr().out
    assert "svm.onnx" in out and "max abs difference" in out
    # a file longer than a clip (windows) and one shorter
    files = [data / "audio" / "low-1-0-0.wav", tmp_path / "long.wav", tmp_path / "short.wav"]
    write_clip(files[1], "high", 99, sr=8000, seconds=1.3)
    write_clip(files[2], "mid", 98, sr=16000, seconds=0.3)
    expected = predict_files(model_path, files)
    from pipelines.export import predict_onnx_files

    got = predict_onnx_files(tmp_path / "svm.onnx", files)
    assert got[["file", "window", "prediction"]].equals(expected[["file", "window", "prediction"]])
    np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=ATOL)
    assert main(["predict", "--onnx", str(tmp_path / "svm.onnx"), *map(str, files)]) == 0
    assert capsys.readouterr().out.count("all") == 3


def test_unsupported_steps_are_named(data, tmp_path, capsys):
    pytest.importorskip("xgboost")
    model_path = train(data, "xgboost", "--params", "n_estimators=5")
    with pytest.raises(ExportError, match="step 'model' .*XGB"):
        export_onnx(model_path, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    assert main(["export", "--model", str(model_path), "--format", "onnx", "--output",
                 str(tmp_path / "x.onnx")]) == 2
    assert "error: step 'model'" in capsys.readouterr().err


def test_predict_onnx_without_sidecar_is_one_line(tmp_path, capsys):
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    assert main(["predict", "--onnx", str(tmp_path / "model.onnx"), "a.wav"]) == 2
    assert "no sidecar model.onnx.json" in capsys.readouterr().err
