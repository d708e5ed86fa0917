"""ONNX export of a saved model, from stored features to class probabilities, and prediction with it.

:func:`export_onnx` turns the fitted pipeline of a ``model.joblib`` (a :class:`FeatureLoader`, then the
model) into one ONNX graph whose input ``features`` is the feature array of one or more clips, as the
store holds it, ``(n, *feature_shape)`` float32 with a dynamic ``n``, and whose output
``probabilities`` is ``(n, n_classes)``, columns in the order of the sidecar's ``classes``.

- Classical models (``softmax``, ``svm``, ``mlp``) convert with skl2onnx; the toolkit's own
  :class:`~estimators._classical.FeatureReshaper` (flatten, or the mean, standard deviation, minimum
  and maximum over time) has a converter here made of standard ONNX ops, and so has the temperature
  scaling of ``CalibratedClassifierCV(method="temperature")`` (the svm's calibration), which
  skl2onnx does not know: the base model's decision values, times the fitted inverse temperature,
  through a softmax.
- Torch nets export with ``torch.onnx.export(dynamo=True)``, the torch.export-based exporter (it
  needs ``onnxscript``, which works offline), wrapped with what the estimator does around its module
  at prediction: the loader's layout change, the net's channel axis and input standardisation, and
  the softmax.

The feature computation itself is not part of the graph (the STFT, mel filters and DCT of the store's
kinds are not exported): ``predict --onnx`` computes the features with the toolkit, as ``predict``
does, from the sidecar JSON written beside the graph (:data:`SIDECAR_SUFFIX`), which holds the
classes, the feature kind and its parameters, the audio settings and the input shape.

Every export checks itself: the graph is run with onnxruntime on up to :data:`N_CHECK` clips of the
model's own feature set (or seeded random features when the store is not there) and its
probabilities must agree with the pipeline's within :data:`ATOL`, or the export fails.

onnx, onnxruntime, skl2onnx and onnxscript are the optional extra ``onnx``: they are imported by the
functions that need them only.
"""

import json
import math
import warnings
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

from featurestore import features
from featurestore.errors import FeatureStoreError
from featurestore.store import FeatureSet
from pipelines.loader import ClipPipeline, FeatureLoader
from pipelines.predict import _predict_one, _read, load_model

#: The sidecar of ``model.onnx`` is ``model.onnx.json``.
SIDECAR_SUFFIX = ".json"
#: Names of the graph's input and output.
INPUT, OUTPUT = "features", "probabilities"
#: Largest absolute difference of probabilities allowed between the graph and the pipeline. Both
#: compute in float32 (the store's dtype) but sum in different orders, and skl2onnx's SVM, scaler and
#: linear ops are float32 where scikit-learn computes in float64: differences of 1e-7 to 1e-5 are
#: expected, so 1e-4 catches any real mistake (a wrong axis, a missing scaler) without failing on rounding.
ATOL = 1e-4
#: Clips the export runs through both the graph and the pipeline to check itself.
N_CHECK = 16
#: ONNX opset of the classical graphs (ReduceMean takes ``axes`` as an attribute up to 17).
SKLEARN_OPSET = 17
FORMAT = "audio-featurestore onnx"


class ExportError(Exception):
    """A model that cannot be exported (an unsupported step or layer), or a graph that disagrees with it."""


def sidecar_path(onnx_path):
    """``model.onnx`` -> ``model.onnx.json``."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + SIDECAR_SUFFIX)


def export_onnx(model_path, output=None):
    """Write the ONNX graph of a saved model and its sidecar JSON.

    Parameters
    ----------
    model_path : str or os.PathLike
        A ``model.joblib`` written by an experiment.
    output : str or os.PathLike, optional
        The graph's path (default: ``model.onnx`` beside ``model_path``); the sidecar is
        ``<output>.json``.

    Returns
    -------
    dict
        The sidecar written: ``classes``, ``feature`` (``kind``, ``params``), ``audio``,
        ``input_shape`` (``[null, *feature_shape]``), ``exporter`` and ``check`` (``max_abs_diff``
        over ``n_clips`` clips of ``on`` "stored features" or "random features"), plus ``onnx``,
        the graph's path.

    Raises
    ------
    pipelines.predict.ModelFileError
        If ``model_path`` is not a model.
    ExportError
        If a step of the pipeline has no ONNX conversion (the message names the step), or the
        graph's probabilities differ from the pipeline's by more than :data:`ATOL`.
    """
    bundle = load_model(model_path)
    pipeline = bundle["model"]
    loader, model = _steps(pipeline)
    shape = tuple(int(d) for d in loader.feature_shape_)
    estimators = _estimator_modules()
    if isinstance(model, estimators.TorchClassifier):
        graph, exporter = _torch_graph(model, loader.input, shape), "torch.onnx.export(dynamo=True)"
    elif isinstance(model, estimators.ClassicalClassifier):
        graph, exporter = _sklearn_graph(model, loader.input, shape), "skl2onnx"
    else:
        raise ExportError(f"step 'model' ({type(model).__name__}) cannot be exported to ONNX: only the "
                          "registry's torch nets and classical models (softmax, svm, mlp) can")
    output = Path(output) if output is not None else Path(model_path).with_name("model.onnx")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(graph)
    X, on = _check_features(loader, shape)
    difference = float(np.abs(OnnxGraph(output).run(X) - pipeline.steps[-1][1].predict_proba(
        _adapt(loader, X))).max())
    if not difference <= ATOL:  # NaN fails too
        output.unlink()
        raise ExportError(f"the ONNX graph of {model_path} disagrees with the model: probabilities differ by "
                          f"up to {difference:.3g} (> {ATOL:g}) on {len(X)} clips of {on}")
    sidecar = {
        "format": FORMAT,
        "version": 1,
        "model": str(model_path),
        "estimator": bundle["estimator"],
        "classes": [_plain(c) for c in np.asarray(model.classes_)],
        "feature": {"kind": loader.kind_, "params": _plain(loader.params_)},
        "audio": _plain(loader.audio_),
        "input": INPUT,
        "output": OUTPUT,
        "input_shape": [None, *shape],
        "exporter": exporter,
        "check": {"max_abs_diff": difference, "atol": ATOL, "n_clips": len(X), "on": on},
    }
    sidecar_path(output).write_text(json.dumps(sidecar, indent=2))
    return {**sidecar, "onnx": str(output)}


def _steps(pipeline):
    """The loader and the model of a :func:`pipelines.build.make_pipeline` pipeline, or ExportError."""
    if not isinstance(pipeline, ClipPipeline) or len(pipeline.steps) != 2:
        what = type(pipeline).__name__
        if hasattr(pipeline, "estimators"):
            what += " (an ensemble: export each member's run instead)"
        raise ExportError(f"the model is a {what}: only a pipeline of steps 'features' (FeatureLoader) and "
                          "'model' can be exported to ONNX")
    (_, loader), (name, model) = pipeline.steps
    if not isinstance(loader, FeatureLoader):
        raise ExportError(f"step 'features' is a {type(loader).__name__}, not a FeatureLoader")
    if type(model).__name__ == "SegmentClassifier":
        raise ExportError(f"step '{name}' is a SegmentClassifier (a vote over windows of the features): "
                          "it cannot be exported to ONNX; export a run without --segments")
    return loader, model


def _estimator_modules():
    """The two base classes of the registry's estimators (torch imported here, not at import time)."""
    from types import SimpleNamespace

    from estimators._classical import ClassicalClassifier
    from estimators._torch import TorchClassifier

    return SimpleNamespace(ClassicalClassifier=ClassicalClassifier, TorchClassifier=TorchClassifier)


def _adapt(loader, X):
    """What the pipeline's loader gives its model for stored features ``X``."""
    from pipelines.loader import adapt_input

    return adapt_input(X, loader.input)


def _check_features(loader, shape):
    """Up to :data:`N_CHECK` clips of the loader's feature set, or seeded random features without it."""
    try:
        fs = FeatureSet(loader.feature_set)
        ids = fs.clip_ids[:N_CHECK]
        return fs.read(ids), "stored features"
    except (FeatureStoreError, OSError, KeyError):  # the store is not on this machine
        rng = np.random.default_rng(0)
        return rng.standard_normal((N_CHECK, *shape)).astype(np.float32), "random features"


def _plain(value):
    """``value`` with numpy scalars and tuples made JSON's own types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- classical models
def _sklearn_graph(model, layout, shape):
    """The serialised ONNX graph of a fitted :class:`ClassicalClassifier` on stored features."""
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType

    if layout != "flat":
        raise ExportError(f"step 'features' gives {layout!r} input: a classical model is exported on 'flat' "
                          "input only")
    _register_reshaper()
    _register_temperature_scaling()
    inner = model.pipeline_
    clf = inner.steps[-1][1]
    with warnings.catch_warnings(), _named_step_errors(inner, model):
        # skl2onnx reads SVC's probA_/probB_, deprecated in scikit-learn 1.9: its business, not the user's
        warnings.simplefilter("ignore", FutureWarning)
        onx = skl2onnx.to_onnx(inner, initial_types=[(INPUT, FloatTensorType([None, *shape]))],
                               options={id(clf): {"zipmap": False}},
                               target_opset={"": SKLEARN_OPSET, "ai.onnx.ml": 3},
                               final_types=[("label", None), (OUTPUT, FloatTensorType([None, len(model.classes_)]))])
    return onx.SerializeToString()


@contextmanager
def _named_step_errors(inner, model):
    """skl2onnx's error for a step it cannot convert, as an :class:`ExportError` naming the step."""
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    try:
        yield
    except (MissingConverter, MissingShapeCalculator, RuntimeError, NotImplementedError) as exc:
        step = next((f"'{n}' ({type(s).__name__})" for n, s in inner.steps if type(s).__name__ in str(exc)),
                    f"of {type(model).__name__}")
        raise ExportError(f"step 'model' ({type(model).__name__}): its step {step} has no ONNX converter "
                          f"({str(exc).splitlines()[0]})") from exc


def _register_reshaper():
    """Teach skl2onnx :class:`~estimators._classical.FeatureReshaper` (idempotent)."""
    from skl2onnx import update_registered_converter

    from estimators._classical import FeatureReshaper

    update_registered_converter(FeatureReshaper, "AudioFeatureStoreFeatureReshaper", _reshaper_shape,
                                _reshaper_converter)


def _node(scope, container, kind, inputs, output=None, **attrs):
    """Add one ONNX node of ``kind`` to a skl2onnx converter's graph; its output's name (new unless given)."""
    output = output or scope.get_unique_variable_name(kind.lower())
    container.add_node(kind, inputs, [output], name=scope.get_unique_operator_name(kind), **attrs)
    return output


def _register_temperature_scaling():
    """Teach skl2onnx ``CalibratedClassifierCV(method="temperature")`` (idempotent).

    The converter replaces skl2onnx's for every ``CalibratedClassifierCV`` and hands the sigmoid and
    isotonic methods back to it.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from sklearn.calibration import CalibratedClassifierCV

    update_registered_converter(CalibratedClassifierCV, "AudioFeatureStoreCalibratedClassifierCV",
                                calculate_linear_classifier_output_shapes, _calibrated_converter,
                                options={"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                                         "nocl": [True, False]})


def _calibrated_converter(scope, operator, container):
    """``CalibratedClassifierCV``: temperature scaling here, the other methods by skl2onnx.

    Temperature scaling, as scikit-learn's ``_TemperatureScaling``: ``softmax(beta_ * logits)``
    where ``logits`` are the base model's decision values ``(n, n_classes)``, or ``(-d, d)`` for
    the single column ``d`` of a binary model; averaged over the calibrated classifiers (one with
    ``ensemble=False``); the label is the class of the largest probability.
    """
    from onnx import TensorProto
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common.data_types import Int64TensorType
    from skl2onnx.operator_converters.calibrated_classifier_cv import convert_sklearn_calibrated_classifier_cv

    op = operator.raw_operator
    if op.method != "temperature":
        convert_sklearn_calibrated_classifier_cv(scope, operator, container)
        return

    node = partial(_node, scope, container)

    def constant(value, dtype=TensorProto.FLOAT):
        name = scope.get_unique_variable_name("constant")
        value = np.asarray(value)
        container.add_initializer(name, dtype, list(value.shape), value.ravel().tolist())
        return name

    n_classes = len(op.classes_)
    probabilities = []
    for calibrated in op.calibrated_classifiers_:
        base = calibrated.estimator
        # the base model's own converter, asked for its decision values instead of probabilities
        decision_op = scope.declare_local_operator(sklearn_operator_name_map[type(base)], base)
        container.add_options(id(base), {"raw_scores": True})
        scope.add_options(id(base), {"raw_scores": True})
        decision_op.inputs = operator.inputs
        decision_op.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
        decision = scope.declare_local_variable("decision", operator.inputs[0].type.__class__())
        decision_op.outputs.append(decision)
        logits = decision.full_name
        if n_classes == 2:  # column 1 is the decision d (as skl2onnx's own converter reads it)
            d = node("Gather", [logits, constant(np.array([1], dtype=np.int64), TensorProto.INT64)], axis=1)
            logits = node("Concat", [node("Neg", [d]), d], axis=1)
        scaled = node("Mul", [logits, constant(float(calibrated.calibrators[0].beta_))])
        probabilities.append(node("Softmax", [scaled], axis=1))
    total = node("Sum", probabilities) if len(probabilities) > 1 else probabilities[0]
    node("Div", [total, constant(float(len(probabilities)))], operator.outputs[1].full_name)
    # the label output's type is the shape calculator's: int64 for numeric classes (a classifier's
    # float classes are whole numbers: scikit-learn refuses others), else strings
    classes = np.asarray(op.classes_)
    if np.issubdtype(classes.dtype, np.number) or classes.dtype == np.bool_:
        labels, label_type = classes.astype(np.int64), TensorProto.INT64
    else:
        labels, label_type = np.array([str(c).encode() for c in classes]), TensorProto.STRING
    classes_name = scope.get_unique_variable_name("classes")
    container.add_initializer(classes_name, label_type, [len(labels)], labels.tolist())
    best = node("ArgMax", [operator.outputs[1].full_name], axis=1, keepdims=0)
    node("Gather", [classes_name, best], operator.outputs[0].full_name, axis=0)


def _reshaper_width(op):
    """Columns out of a fitted FeatureReshaper."""
    shape = op.sample_shape_
    if op.mode == "flatten":
        return math.prod(shape)
    return {"stats": 2, "summary": 4}[op.mode] * math.prod(shape[:-1])


def _reshaper_shape(operator):
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, _reshaper_width(operator.raw_operator)])


def _reshaper_converter(scope, operator, container):
    """FeatureReshaper in ONNX ops: Flatten, or ReduceMean/Min/Max over the last axis (std as numpy's, ddof 0)."""
    op = operator.raw_operator
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    node = partial(_node, scope, container)
    if op.mode == "flatten":
        node("Flatten", [x], out, axis=1)
        return
    mean_kept = node("ReduceMean", [x], axes=[-1], keepdims=1)
    columns = []
    for stat in {"stats": ("mean", "std"), "summary": ("mean", "std", "min", "max")}[op.mode]:
        if stat == "mean":
            value = node("ReduceMean", [x], axes=[-1], keepdims=0)
        elif stat == "std":
            centred = node("Sub", [x, mean_kept])
            value = node("Sqrt", [node("ReduceMean", [node("Mul", [centred, centred])], axes=[-1], keepdims=0)])
        else:
            value = node("ReduceMin" if stat == "min" else "ReduceMax", [x], axes=[-1], keepdims=0)
        columns.append(node("Flatten", [value], axis=1))  # (n, C, F) -> (n, C * F), as numpy's reshape
    node("Concat", columns, out, axis=1)


# --------------------------------------------------------------------------- torch nets
def _torch_graph(net, layout, shape):
    """The serialised ONNX graph of a fitted :class:`TorchClassifier` on stored features."""
    import io

    import torch

    wrapper = _probabilities_module(net, layout, shape).eval()
    example = torch.zeros((2, *shape), dtype=torch.float32)  # 2: a batch of 1 would be specialised
    try:
        with warnings.catch_warnings(), _quiet_logger("torch.onnx"):
            # torch.export's own deprecations and notes (no torchvision ops to register): not the user's
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(wrapper, (example,), dynamo=True, input_names=[INPUT],
                                        output_names=[OUTPUT], dynamic_shapes=({0: torch.export.Dim("batch")},),
                                        verbose=False, report=False)
    except Exception as exc:  # torch.export's errors have many types; any of them means: not exportable
        raise ExportError(f"step 'model' ({type(net).__name__}, module {type(net.module_).__name__}) cannot be "
                          f"exported to ONNX by torch.export: {str(exc).splitlines()[0]}") from exc
    buffer = io.BytesIO()
    program.save(buffer, external_data=False)
    return buffer.getvalue()


@contextmanager
def _quiet_logger(name):
    """Only errors from logger ``name`` and its children, for the duration."""
    import logging

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _probabilities_module(net, layout, shape):
    """An ``nn.Module`` from stored features to probabilities: what the pipeline does after reading them."""
    import torch
    from torch import nn

    per_sample = len(shape)
    loader_channel = layout == "image" and per_sample == 2  # adapt_input's channel axis
    adapted = {"image": 3, "sequence": min(per_sample, 2)}.get(layout, per_sample)  # dims per clip after it
    net_channel = "image" in net._input_kinds() and adapted == 2  # TorchClassifier._check_X's
    mean = getattr(net, "input_mean_", None)
    std = getattr(net, "input_std_", None)

    class Probabilities(nn.Module):
        """adapt_input(layout) -> [channel axis] -> [(x - mean) / std] -> module -> softmax."""

        def __init__(self):
            super().__init__()
            self.module = net.module_
            self.standardize = mean is not None
            if self.standardize:
                self.register_buffer("mean", torch.as_tensor(mean))
                self.register_buffer("std", torch.as_tensor(std))

        def forward(self, x):
            if layout == "sequence" and per_sample == 2:
                x = x.transpose(1, 2)
            elif layout == "sequence" and per_sample == 3:
                x = x.permute(0, 3, 1, 2).flatten(2)
            if loader_channel or net_channel:
                x = x.unsqueeze(1)
            if self.standardize:
                x = (x - self.mean) / self.std
            return torch.softmax(self.module(x), dim=1)

    return Probabilities()


# --------------------------------------------------------------------------- prediction
class OnnxGraph:
    """An exported graph in onnxruntime (CPU), on stored features.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file.
    """

    def __init__(self, path):
        import onnxruntime

        self.path = Path(path)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the graph's own warnings are not the user's business
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def run(self, X):
        """Probabilities ``[shape=(n, n_classes)]``, float32, of features ``X`` ``[shape=(n, *feature_shape)]``."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(X, dtype=np.float32)})[0]


class OnnxModel:
    """A graph of :func:`export_onnx` and its sidecar, as a classifier of waveforms.

    ``predict_proba`` computes the features of the sidecar's kind and parameters with the toolkit
    (as :class:`~pipelines.loader.FeatureLoader` does for raw audio), then runs the graph.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file; its sidecar ``<path>.json`` must be beside it.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(n_classes,)]
    audio : dict
        The audio settings the features were computed with (``sr``, ``duration``, ...).
    """

    def __init__(self, path):
        path = Path(path)
        side = sidecar_path(path)
        if not path.is_file():
            raise ExportError(f"{path} does not exist or is not a file (an .onnx graph of `cli.py export`)")
        if not side.is_file():
            raise ExportError(f"{path} has no sidecar {side.name} beside it: predict needs the classes and the "
                              "features it was exported with (export it again with `cli.py export`)")
        try:
            self.sidecar = json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise ExportError(f"{side} is not valid JSON: {exc}") from None
        if self.sidecar.get("format") != FORMAT:
            raise ExportError(f"{side} is not the sidecar of a graph written by `cli.py export`")
        self.classes_ = np.asarray(self.sidecar["classes"])
        self.audio = self.sidecar["audio"]
        self.graph = OnnxGraph(path)

    def features(self, waveforms):
        """Features ``[shape=(n, *feature_shape)]``, float32, of ``waveforms`` ``[shape=(n, n_samples)]``."""
        feature = self.sidecar["feature"]
        return features.get(feature["kind"]).compute(np.asarray(waveforms, np.float32), sr=self.audio["sr"],
                                                     **feature["params"])

    def predict_proba(self, waveforms):
        """Probabilities [shape=(n, n_classes)], float64, of clip-length ``waveforms``."""
        X = self.features(waveforms)
        expected = tuple(self.sidecar["input_shape"][1:])
        if X.shape[1:] != expected:
            raise ExportError(f"features of shape {X.shape[1:]} per clip, but the graph takes {expected}")
        return self.graph.run(X).astype(np.float64)


def predict_onnx_files(onnx_path, files, *, hop=0.5, on_error=None):
    """:func:`pipelines.predict.predict_files` with an exported graph instead of ``model.joblib``.

    Parameters
    ----------
    onnx_path : str or os.PathLike
        A graph of :func:`export_onnx` with its sidecar beside it.
    files, hop, on_error
        As for :func:`~pipelines.predict.predict_files`.

    Returns
    -------
    pandas.DataFrame
        The same columns and rows as :func:`~pipelines.predict.predict_files`.
    """
    import pandas as pd

    from featurestore.errors import AudioError, ParameterError

    if not 0 < hop <= 1:
        raise ParameterError(f"hop={hop} must be in (0, 1]")
    model = OnnxModel(onnx_path)
    rows = []
    for path in files:
        try:
            y = _read(path, model.audio)
        except AudioError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            continue
        rows.extend(_predict_one(model, str(path), y, model.audio, hop))
    return pd.DataFrame(rows, columns=["file", "window", "start_s", "end_s", "prediction", "probability"])
