"""Registry of estimators: one module per model in this package, discovered automatically.

Each public module (a name not starting with ``_``) defines

``SPEC`` : dict literal
    ``input``: what ``fit`` expects per sample: ``"flat"`` (F,), ``"image"`` (C, H, W),
    ``"sequence"`` (T, F) or ``"waveform"`` (n_samples,);
    ``feature``: default feature kind; ``feature_params``: overrides of that kind's defaults;
    ``param_grid``: default grid of ``python cli.py grid``; ``test_params``: tiny parameters for
    tests; ``test_shape``: per-sample shape of the tiny synthetic input the tests feed it;
    ``description``: one line.
``build(**params)`` : function
    Returns a new, unfitted scikit-learn estimator.

``SPEC`` must be a plain literal: listing the registry reads it with :func:`ast.literal_eval`
without importing the module, so that ``python cli.py estimators`` never imports torch.
"""

import ast
import difflib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

INPUTS = ("flat", "image", "sequence", "waveform")


@dataclass(frozen=True)
class EstimatorSpec:
    """What the registry knows of one estimator, without importing its module."""

    name: str
    input: str
    feature: str
    feature_params: dict = field(default_factory=dict)
    param_grid: dict = field(default_factory=dict)
    test_params: dict = field(default_factory=dict)
    test_shape: tuple = ()
    description: str = ""

    def build(self, **params):
        """A new unfitted estimator with ``params`` set (imports the module, and maybe torch)."""
        module = importlib.import_module(f"{__name__}.{self.name}")
        return module.build(**params)


@lru_cache(maxsize=None)
def _specs():
    specs = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        source = Path(__path__[0], f"{info.name}.py").read_text()
        literal = _find_spec_literal(source, info.name)
        if literal["input"] not in INPUTS:
            raise ValueError(f"estimators/{info.name}.py: SPEC input {literal['input']!r} not in {INPUTS}")
        specs[info.name] = EstimatorSpec(name=info.name, **literal)
    return specs


def _find_spec_literal(source, name):
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SPEC" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"estimators/{name}.py defines no SPEC literal")


def available():
    """Names of all registered estimators, sorted."""
    return tuple(sorted(_specs()))


def get_spec(name):
    """The :class:`EstimatorSpec` of estimator ``name``.

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message suggests a close match and lists the valid names.
    """
    specs = _specs()
    if name not in specs:
        close = difflib.get_close_matches(name, specs, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown estimator {name!r}.{hint} Valid: {', '.join(sorted(specs))}")
    return specs[name]


def build(name, **params):
    """A new unfitted estimator ``name`` with ``params`` set."""
    return get_spec(name).build(**params)


def check_params(estimator, params, name=None):
    """Raise ValueError, with a close match, for a parameter key ``estimator`` does not have.

    Fits and sets nothing. ``params`` is a dict (or grid) whose keys are checked. Unlike
    ``set_params`` this also checks skorch's ``module__*`` and ``optimizer__*`` keys against
    the module's and optimizer's signatures, so that a typo fails before any training.
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
        close = difflib.get_close_matches(key, [*valid, *routed], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
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
