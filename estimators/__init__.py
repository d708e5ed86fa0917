"""Registry of estimators: modules of this package, discovered automatically.

Every registered estimator is a named scikit-learn classifier class with flat, documented
parameters (``SVMClassifier(C=1.0, kernel="linear")``, ``LSTMClassifier(hidden_size=100)``), so
that a grid tunes ``C`` as ``C`` (``model__C`` in a pipeline), never as a path through the
estimator's insides.

Each public module (a name not starting with ``_``) declares its entries as a plain literal,
either one entry named after the module::

    SPEC = {"class": "SVMClassifier", "input": "flat", ...}

or several entries that share the module's code (``rnn.py`` declares rnn, lstm, gru and blstm)::

    SPECS = {"lstm": {"class": "LSTMClassifier", ...}, "gru": {"class": "GRUClassifier", ...}}

Keys the entries of ``SPECS`` share are written once, in a ``SPEC_DEFAULTS`` literal beside it;
an entry's own keys win.

The keys of an entry:

``class``: the name of the estimator class in the module;
``input``: what ``fit`` expects per sample: ``"flat"`` (F,), ``"image"`` (C, H, W),
``"sequence"`` (T, F) or ``"waveform"`` (n_samples,);
``feature``: default feature kind; ``feature_params``: overrides of that kind's defaults;
``param_grid``: default grid of ``python cli.py grid``, in the class's parameter names;
``test_params``: tiny parameters for tests; ``test_shape``: per-sample shape of the tiny synthetic
input the tests feed it; ``description``: one line.

The literals are read with :func:`ast.literal_eval` without importing the module, so that
``python cli.py estimators`` never imports torch.

The settings of a run (seed, torch device and precision, epoch limit, torch threads, sampling rate) reach an
estimator only through the names its class declares in the class attribute ``run_params``
(see :func:`run_params`): nothing is set by guessing parameter names.
"""

import ast
import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from featurestore import registry

INPUTS = ("flat", "image", "sequence", "waveform")
#: The settings of a run that an estimator class may declare in ``run_params``.
RUN_PARAMS = ("random_state", "device", "precision", "max_epochs", "n_threads", "sr")


@dataclass(frozen=True)
class EstimatorSpec:
    """What the registry knows of one estimator, without importing its module."""

    name: str
    module: str
    class_name: str
    input: str
    feature: str
    feature_params: dict = field(default_factory=dict)
    param_grid: dict = field(default_factory=dict)
    test_params: dict = field(default_factory=dict)
    test_shape: tuple = ()
    description: str = ""

    def load(self):
        """The estimator class (imports its module, and maybe torch)."""
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.class_name)

    def build(self, **params):
        """A new unfitted estimator with ``params`` (checked first, see :func:`set_checked_params`)."""
        return set_checked_params(self.load()(), params, self.name)


@lru_cache(maxsize=None)
def _specs():
    specs = {}
    for module in registry.module_names(__path__):
        source = Path(__path__[0], f"{module}.py").read_text()  # read, not imported: no torch
        for name, literal in _find_spec_literals(source, module).items():
            where = f"estimators/{module}.py: {name}"
            if name in specs:
                raise ValueError(f"{where}: estimator {name!r} is also declared by estimators/{specs[name].module}.py")
            if literal.get("input") not in INPUTS:
                raise ValueError(f"{where}: SPEC input {literal.get('input')!r} not in {INPUTS}")
            literal = dict(literal)
            specs[name] = EstimatorSpec(name=name, module=module, class_name=literal.pop("class"), **literal)
    return specs


def _find_spec_literals(source, module):
    """``{name: literal}`` of a module's ``SPEC`` (named after the module) or ``SPECS``, the latter
    on top of the module's ``SPEC_DEFAULTS``."""
    literals = {}
    for node in ast.parse(source).body:
        targets = [getattr(t, "id", None) for t in node.targets] if isinstance(node, ast.Assign) else []
        for target in set(targets) & {"SPEC", "SPECS", "SPEC_DEFAULTS"}:
            literals[target] = ast.literal_eval(node.value)
    if "SPEC" in literals:
        return {module: literals["SPEC"]}
    if "SPECS" in literals:
        defaults = literals.get("SPEC_DEFAULTS", {})
        return {name: {**defaults, **entry} for name, entry in literals["SPECS"].items()}
    raise ValueError(f"estimators/{module}.py defines no SPEC or SPECS literal")


def available():
    """Names of all registered estimators, sorted."""
    return tuple(sorted(_specs()))


def get_spec(name):
    """The :class:`EstimatorSpec` of estimator ``name``.

    Raises
    ------
    featurestore.registry.UnknownNameError
        If ``name`` is unknown (a ``ValueError``); the message suggests a close match and lists the
        valid names.
    """
    return registry.lookup("estimator", name, _specs())


def build(name, **params):
    """A new unfitted estimator ``name`` with ``params`` set."""
    return get_spec(name).build(**params)


def run_params(estimator):
    """The run settings (names among :data:`RUN_PARAMS`) that ``estimator``'s class declares.

    Every registered class declares them in its class attribute ``run_params``; an experiment
    sets exactly these (the seed as ``random_state``, the feature set's sampling rate as ``sr``,
    ...) and nothing else. A class from elsewhere (scikit-learn's) declares none: ``()``.
    """
    declared = tuple(getattr(type(estimator), "run_params", ()))
    unknown = set(declared) - set(RUN_PARAMS)
    if unknown:
        raise ValueError(f"{type(estimator).__name__}.run_params names {sorted(unknown)}, not run settings "
                         f"{RUN_PARAMS}")
    return declared


def set_checked_params(estimator, params, name=None):
    """Check ``params`` with :func:`check_params`, then set them; returns ``estimator``.

    The estimator's own parameters are set first, so that routed keys are checked against what
    they route to: ``optimizer__momentum`` is valid once ``optimizer="sgd"`` is set.
    """
    own = {key: value for key, value in params.items() if "__" not in key}
    routed = {key: value for key, value in params.items() if "__" in key}
    for part in (own, routed):
        check_params(estimator, part, name)
        estimator.set_params(**part)
    return estimator


def check_params(estimator, params, name=None, *, others=()):
    """Raise ValueError, with a close match, for a parameter key ``estimator`` does not have.

    Fits and sets nothing. ``params`` is a dict (or grid) whose keys are checked. Unlike
    ``set_params`` this also checks skorch's ``module__*`` and ``optimizer__*`` keys against
    the module's and optimizer's signatures, so that a typo fails before any training.
    ``others`` are more valid names, of the caller's (a pipeline's), offered as close matches.
    """
    valid = estimator.get_params(deep=True)
    name = name or type(estimator).__name__
    with_self = {"": estimator, **valid}  # a bare net's own module__* keys have no prefix
    routed = _routed_names(with_self)
    for key in params:
        if key in valid or key in routed:
            continue
        if any(key.startswith(f"{prefix}__callbacks__".lstrip("_")) for prefix in _nets(with_self)):
            continue  # skorch validates callback parameters itself
        close = difflib.get_close_matches(key, [*valid, *routed, *others], n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
        else:  # e.g. an old path such as clf__estimator__C: name the estimator's own parameters
            hint = f" Its parameters: {', '.join(sorted(estimator.get_params(deep=False)))}"
        raise ValueError(f"{name} has no parameter {key!r}.{hint}")


def _nets(params):
    """Keys of the skorch nets among ``params`` (objects with ``module`` and ``optimizer``)."""
    return [key for key, value in params.items() if hasattr(value, "module") and hasattr(value, "optimizer")]


def _routed_names(params):
    """``<net>__module__<arg>`` and ``<net>__optimizer__<arg>`` keys that skorch nets accept."""
    names = set()
    for key in _nets(params):
        net = params[key]
        for routed in ("module", "optimizer"):
            target = getattr(net, routed)
            if isinstance(target, str):
                from estimators._torch import OPTIMIZERS

                target = OPTIMIZERS.get(target.lower())
            if inspect.isclass(target):
                names.update(f"{key}__{routed}__{p}".lstrip("_") for p in inspect.signature(target).parameters
                             if p not in ("self", "params", "input_shape", "n_classes"))
    return names
