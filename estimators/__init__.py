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
