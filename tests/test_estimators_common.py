"""The scikit-learn contract, checked for every registered estimator (``estimators.available()``).

Each estimator is built with its SPEC's ``test_params`` and fed tiny seeded data of its SPEC's
``test_shape``: 3 classes with string labels and a class-dependent mean, so that it is learnable.
Then scikit-learn's own estimator checks (``parametrize_with_checks``) run where they apply; the
checks that cannot pass are listed, with the reason, in ``EXPECTED_FAILED_CHECKS`` below.
"""

import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, ParameterGrid, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import estimators
from estimators._classical import FeatureReshaper, LabelEncodedClassifier
from estimators.rnn import RecurrentClassifier
from featurestore import features

NAMES = estimators.available()
LABELS = np.array(["bark", "chirp", "hum"])

pytestmark = [
    # Tiny data and 2-epoch nets: convergence and "few rows per class" warnings are expected.
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:too few rows:UserWarning"),
    pytest.mark.filterwarnings("ignore:The least populated class:UserWarning"),
]


def make_data(shape, *, n_per_class=15, labels=LABELS, seed=0):
    """``X`` float32 [shape=(3 * n_per_class, *shape)] whose mean is the class index, and ``y``."""
    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.repeat(np.arange(len(labels)), n_per_class))
    X = rng.standard_normal((len(codes), *shape)).astype(np.float32)
    X += codes.reshape(-1, *[1] * len(shape)).astype(np.float32)
    return X, np.asarray(labels)[codes]


def build(name, **params):
    """Estimator ``name`` with its SPEC's ``test_params`` (then ``params``) set.

    Torch nets get ``n_threads=1``: on a busy machine torch's default of one thread per core
    makes these tiny fits a hundred times slower.
    """
    estimator = estimators.build(name, **{**estimators.get_spec(name).test_params, **params})
    if "n_threads" in estimators.run_params(estimator) and "n_threads" not in params:
        estimator.set_params(n_threads=1)
    return estimator


def data(name, **kwargs):
    return make_data(estimators.get_spec(name).test_shape, **kwargs)


def is_torch(estimator):
    return "module" in estimator.get_params(deep=False)


def names_of(name, estimator):
    """What an error message may call ``estimator``: its registry name, its class, its torch
    module's class, or the class of the classifier at the end of its pipeline."""
    names = {name, type(estimator).__name__}
    if is_torch(estimator):
        names.add(estimator.module.__name__)
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        names.add(type(final).__name__)
        names.add(type(final.get_params().get("estimator", final)).__name__)
    return "|".join(sorted(map(re.escape, names)))


@pytest.fixture(scope="module", params=NAMES)
def fitted(request):
    """(name, estimator fitted on string labels, X, y), fitted once per estimator."""
    name = request.param
    X, y = data(name)
    return name, build(name).fit(X, y), X, y


# ------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name", NAMES)
def test_clone_get_set_params(name):
    estimator = build(name)
    cloned = clone(estimator)
    assert cloned is not estimator
    assert set(cloned.get_params()) == set(estimator.get_params())
    for key, values in estimators.get_spec(name).param_grid.items():
        estimator.set_params(**{key: values[-1]})
        assert estimator.get_params()[key] == values[-1]
        assert clone(estimator).get_params()[key] == values[-1]
    if is_torch(estimator):  # a grid reaches inside the net: flat module knobs and optimizer__*
        test_params = estimators.get_spec(name).test_params
        knob = next(key for key in test_params if key in type(estimator).module_params)
        estimator.set_params(optimizer__weight_decay=0.01, **{knob: test_params[knob]})
        assert clone(estimator).get_params()["optimizer__weight_decay"] == 0.01
        assert clone(estimator).get_params()[knob] == test_params[knob]


def test_fit_leaves_the_parameters_as_set(fitted):
    """Nothing writes a parameter during fit: ``get_params`` after fit is what was set (a torch
    net's ``device="auto"`` included), and a clone of the fitted estimator is a clone of the
    unfitted one."""
    name, estimator, _, _ = fitted
    unfitted = build(name)
    assert estimator.get_params(deep=False) == unfitted.get_params(deep=False)
    assert clone(estimator).get_params(deep=False) == clone(unfitted).get_params(deep=False)
    if is_torch(estimator):
        assert estimator.get_params()["device"] == "auto"


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_flat_and_documented(name):
    """Each ``__init__`` parameter is documented (numpydoc) in the class or one of its bases."""
    cls = estimators.get_spec(name).load()
    docs = "\n".join(klass.__doc__ or "" for klass in cls.__mro__ if klass.__module__.startswith("estimators"))
    documented = {word for line in re.findall(r"^ {4}(\w+(?:, \w+)*)(?:, \.\.\.)? :", docs, re.M)
                  for word in line.split(", ")}
    params = [p.name for p in inspect.signature(cls.__init__).parameters.values()
              if p.kind is p.KEYWORD_ONLY]
    assert params and set(params) <= documented, sorted(set(params) - documented)


@pytest.mark.parametrize("name", NAMES)
def test_spec_grid_and_run_params_use_the_class_own_names(name):
    spec = estimators.get_spec(name)
    own = spec.load()().get_params(deep=False)
    assert all(key in own or key.startswith("optimizer__") for key in spec.param_grid)
    assert set(estimators.run_params(spec.load()())) <= set(own)


def test_a_module_declares_several_entries():
    recurrent = {name: estimators.get_spec(name) for name in ("rnn", "lstm", "gru", "blstm")}
    assert {spec.module for spec in recurrent.values()} == {"rnn"}
    assert len({spec.class_name for spec in recurrent.values()}) == 4
    assert estimators.build("blstm", hidden_size=5).get_params_for("module")["bidirectional"] is True


@pytest.mark.parametrize("name", NAMES)
def test_spec_feature_is_a_store_feature(name):
    spec = estimators.get_spec(name)
    features.resolve_params(spec.feature, spec.feature_params)  # ParameterError if unknown


@pytest.mark.parametrize("name", NAMES)
def test_spec_param_grid_is_valid(name):
    spec = estimators.get_spec(name)
    assert 1 <= len(ParameterGrid(spec.param_grid)) <= 8
    estimators.check_params(build(name), spec.param_grid)
    estimators.check_params(build(name), spec.test_params)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_grid_parameter_fails_before_training(name):
    estimator = build(name)
    with pytest.raises(ValueError, match="no parameter 'n_estimatorz'"):
        estimators.check_params(estimator, {"n_estimatorz": [1, 2]})
    # With the default error_score=nan, an error inside fit would only become a NaN score and a
    # warning: this raises because GridSearchCV sets the parameters on a clone before fitting it.
    X, y = data(name)
    with pytest.raises(ValueError, match="Invalid parameter 'n_estimatorz'"):
        GridSearchCV(estimator, {"n_estimatorz": [1, 2]}, cv=2).fit(X, y)
    if is_torch(estimator):  # skorch would accept this key until the module is built at fit
        with pytest.raises(ValueError, match="no parameter 'module__n_unitz'"):
            estimators.check_params(estimator, {"module__n_unitz": [1, 2]})


# --------------------------------------------------------------------------- model selection
@pytest.mark.parametrize("name", NAMES)
def test_grid_search_in_parallel(name):
    spec = estimators.get_spec(name)
    estimator = build(name)
    # One parameter of the SPEC's grid; not one that test_params shrinks (a net of 150 units
    # instead of 8 would be slow), and for such nets the learning rate instead.
    key = next((k for k in spec.param_grid if k not in spec.test_params), None)
    grid = {key: spec.param_grid[key][:2]} if key else {}
    if not grid and is_torch(estimator):
        grid = {"lr": [1e-3, 1e-2]}
    elif not grid:
        grid = dict([next(iter(spec.param_grid.items()))])
    X, y = data(name)
    search = GridSearchCV(estimator, grid, cv=2, n_jobs=2, error_score="raise").fit(X, y)
    [(key, values)] = grid.items()
    assert search.best_params_[key] in values
    assert set(search.predict(X)) <= set(LABELS)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize("name", NAMES)
def test_cross_val_score(name):
    X, y = data(name)
    scores = cross_val_score(build(name), X, y, cv=3, error_score="raise")
    assert scores.shape == (3,)
    assert ((0 <= scores) & (scores <= 1)).all()


@pytest.mark.parametrize("name", NAMES)
def test_inside_a_pipeline(name):
    X, y = data(name)
    clip = FunctionTransformer(np.clip, kw_args={"a_min": -10, "a_max": 10})
    pipeline = make_pipeline(clip, build(name))
    pipeline.fit(X, y)
    assert list(pipeline.classes_) == list(LABELS)
    assert pipeline.predict_proba(X).shape == (len(X), len(LABELS))


# ------------------------------------------------------------------------- fitted behaviour
def test_pickle_round_trip(fitted):
    _, estimator, X, _ = fitted
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(restored.predict(X), estimator.predict(X))
    np.testing.assert_allclose(restored.predict_proba(X), estimator.predict_proba(X), rtol=1e-6)


def test_classes_are_the_original_labels(fitted):
    _, estimator, X, _ = fitted
    assert is_classifier(estimator)
    np.testing.assert_array_equal(estimator.classes_, LABELS)
    assert set(estimator.predict(X)) <= set(LABELS)


@pytest.mark.parametrize("name", NAMES)
def test_integer_labels_that_are_not_0_to_k(name):
    X, y = data(name, labels=[3, 7, 42])
    estimator = build(name).fit(X, y)
    np.testing.assert_array_equal(estimator.classes_, [3, 7, 42])
    assert set(estimator.predict(X)) <= {3, 7, 42}


def test_predict_proba_rows_sum_to_one(fitted):
    _, estimator, X, _ = fitted
    proba = estimator.predict_proba(X)
    assert proba.shape == (len(X), len(LABELS))
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(estimator.classes_[proba.argmax(axis=1)], estimator.predict(X))


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", NAMES)
def test_wrong_dimensionality_is_rejected(name):
    estimator = build(name)
    X, y = data(name)
    who = names_of(name, estimator)
    with pytest.raises(ValueError, match=rf"(?s)({who}).*shape"):
        estimator.fit(X.reshape(len(X), -1)[:, 0], y)  # 1-D: no estimator takes that
    if estimators.get_spec(name).input != "flat":  # nets take a fixed number of axes
        with pytest.raises(ValueError, match=rf"(?s)({who}).*shape"):
            estimator.fit(X[:, np.newaxis], y)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_input_is_rejected(name, value):
    estimator = build(name)
    X, y = data(name)
    X[3].flat[0] = value
    who = names_of(name, estimator)
    with pytest.raises(ValueError, match=rf"(?s)(?=.*({who}))(?=.*(NaN|inf))"):
        estimator.fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_single_class_is_rejected(name):
    estimator = build(name)
    X, _ = data(name)
    with pytest.raises(ValueError, match=rf"(?s)({names_of(name, estimator)}).*(1|one) class"):
        estimator.fit(X, np.full(len(X), "bark"))


def test_predict_rejects_another_sample_shape():
    estimator = build("svm").fit(*make_data((4, 10)))
    with pytest.raises(ValueError, match=r"shape \(4, 10\), got samples of shape \(4, 12\)"):
        estimator.predict(make_data((4, 12))[0])


# ------------------------------------------------------------------- ensembles of both kinds
def hybrid_members():
    """An SVM (flattening the images itself) and a CNN, both on the CNN's test images."""
    X, y = data("cnn")
    members = [
        ("svm", build("svm", features="flatten")),
        ("cnn", build("cnn", random_state=0)),
    ]
    return members, X, y


def test_soft_voting_classical_and_torch():
    members, X, y = hybrid_members()
    voting = VotingClassifier(members, voting="soft").fit(X, y)
    np.testing.assert_array_equal(voting.classes_, LABELS)
    proba = voting.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    expected = np.mean([member.predict_proba(X) for member in voting.estimators_], axis=0)
    np.testing.assert_allclose(proba, expected, rtol=1e-5)


def test_stacking_classical_and_torch():
    members, X, y = hybrid_members()
    stacking = StackingClassifier(members, final_estimator=LogisticRegression(), cv=3).fit(X, y)
    np.testing.assert_array_equal(stacking.classes_, LABELS)
    assert stacking.transform(X).shape == (len(X), 2 * len(LABELS))  # both members' probabilities
    assert set(stacking.predict(X)) <= set(LABELS)


# ------------------------------------------------------------ scikit-learn's estimator checks
#: Every scikit-learn check an estimator here is known to fail, by estimator class, and why.
#: Checks are strict xfails: a check that starts passing fails the test, to be removed from here.
EXPECTED_FAILED_CHECKS = {
    "TorchClassifier": {
        "check_no_attributes_set_in_init": "skorch's NeuralNet.__init__ sets history_, "
        "initialized_ and virtual_params_, and stores each module__* key as an attribute",
        "check_n_features_in_after_fitting": "recurrent nets take sequences of any length, so "
        "predict accepts another number of columns than fit",
        "check_classifiers_train": "recurrent nets take sequences of any length, so predict "
        "accepts another number of columns than fit",
        "check_estimators_partial_fit_n_features": "recurrent nets take sequences of any length, "
        "so partial_fit accepts another number of columns",
    },
}
#: Extra failures of a single registered estimator, by registry name.
EXPECTED_FAILED_CHECKS_BY_NAME = {}


def _checked_estimators():
    """The estimators scikit-learn's checks apply to, as (name, instance).

    The checks feed 2-D ``X`` of a few columns. The classical estimators take it (flattened: the
    ``"stats"`` summary of a few columns is too poor for the checks' accuracy thresholds). Image
    and sequence nets do not take 2-D input at all (scikit-learn would skip them), and the
    waveform front ends need thousands of samples. So the torch nets are represented by the four
    recurrent nets, reading each row as a waveform cut into frames of one sample; their base class
    ``TorchClassifier`` is what the checks exercise, and it is shared by every net (the flat
    parameters of the others are checked by the tests above: clone, get/set_params, grids).
    """
    for name in NAMES:
        estimator = build(name)
        if is_torch(estimator):
            continue
        if "features" in estimator.get_params():
            estimator.set_params(features="flatten")
        yield name, estimator
    for name in NAMES:  # the recurrent nets read a 2-D row as a waveform cut into 1-sample frames
        if isinstance(build(name), RecurrentClassifier):
            yield name, build(name, frame_length=1, random_state=0)
    yield "reshaper", FeatureReshaper()
    yield "reshaper", FeatureReshaper(mode="stats")
    from xgboost import XGBClassifier

    yield "label-encoder", LabelEncodedClassifier(XGBClassifier(n_estimators=10, n_jobs=1))


_CHECKED = list(_checked_estimators())
_NAME_OF = {id(estimator): name for name, estimator in _CHECKED}


def _expected_failed_checks(estimator):
    by_class = {}
    for cls in reversed(type(estimator).__mro__):  # a subclass inherits its bases' failures
        by_class.update(EXPECTED_FAILED_CHECKS.get(cls.__name__, {}))
    return {**by_class, **EXPECTED_FAILED_CHECKS_BY_NAME.get(_NAME_OF.get(id(estimator)), {})}


@parametrize_with_checks(
    [estimator for _, estimator in _CHECKED],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
