"""Search spaces: lists of values (as a grid) and ``scipy.stats`` distributions, read from JSON or TOML.

A search space maps each parameter name to one of:

* a list of values, ``[0.1, 1, 10]``: a grid axis (random search draws from it uniformly; Optuna
  suggests one of them, ``suggest_categorical``);
* a single value that is not a list or a table, ``"rbf"``: the one-value list ``["rbf"]``;
* a distribution, a table with the key ``dist`` and exactly the keys of that distribution:

  ===============================================  =======================================  =================================
  written                                          scipy.stats (random, halving)            Optuna
  ===============================================  =======================================  =================================
  ``{"dist": "uniform", "low": a, "high": b}``     ``uniform(loc=a, scale=b - a)``, [a, b]  ``suggest_float(a, b)``
  ``{"dist": "loguniform", "low": a, "high": b}``  ``loguniform(a, b)``, 0 < a < b          ``suggest_float(a, b, log=True)``
  ``{"dist": "randint", "low": a, "high": b}``     ``randint(a, b)``: a, ..., b - 1         ``suggest_int(a, b - 1)``
  ===============================================  =======================================  =================================

  ``randint``'s ``high`` is exclusive, as in ``scipy.stats.randint`` and ``numpy``; its bounds are integers.

In JSON: ``{"C": {"dist": "loguniform", "low": 0.01, "high": 100}, "kernel": ["linear", "rbf"]}``.
In TOML (a file ending in ``.toml``)::

    kernel = ["linear", "rbf"]
    C = {dist = "loguniform", low = 0.01, high = 100}

A bad entry raises :class:`~featurestore.errors.ParameterError` naming its key.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

from featurestore.errors import ParameterError


@dataclass(frozen=True)
class Distribution:
    """One parameter's distribution, checked once; :meth:`scipy` and :meth:`suggest` sample it.

    Parameters
    ----------
    dist : {"uniform", "loguniform", "randint"}
    low, high : float (int for ``randint``)
        ``uniform`` covers [low, high], ``loguniform`` too (0 < low), ``randint`` low, ..., high - 1.
    key : str
        The parameter's name, for error messages.

    >>> [float(bound) for bound in Distribution("loguniform", 0.01, 100, key="C").scipy().support()]
    [0.01, 100.0]
    >>> Distribution("randint", 1, 1, key="n")
    Traceback (most recent call last):
    ...
    featurestore.errors.ParameterError: search space key 'n': randint needs low < high (high is exclusive), not low=1, high=1
    """

    dist: str
    low: float
    high: float
    key: str = "?"

    def __post_init__(self):
        where = f"search space key {self.key!r}"
        if self.dist not in DISTRIBUTIONS:
            raise ParameterError(f"{where}: dist={self.dist!r} must be one of {', '.join(DISTRIBUTIONS)}")
        for bound in ("low", "high"):
            value = getattr(self, bound)
            integer = self.dist == "randint"
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                raise ParameterError(f"{where}: {bound}={value!r} must be {'an integer' if integer else 'a number'}")
        if self.dist == "loguniform" and self.low <= 0:
            raise ParameterError(f"{where}: loguniform needs low > 0, not low={self.low}")
        if not self.low < self.high:
            extra = " (high is exclusive)" if self.dist == "randint" else ""
            raise ParameterError(f"{where}: {self.dist} needs low < high{extra}, not low={self.low}, high={self.high}")

    def scipy(self):
        """The frozen ``scipy.stats`` distribution (what ``ParameterSampler`` draws from)."""
        if self.dist == "uniform":
            return stats.uniform(loc=self.low, scale=self.high - self.low)
        if self.dist == "loguniform":
            return stats.loguniform(self.low, self.high)
        return stats.randint(self.low, self.high)

    def suggest(self, trial, name):
        """Optuna's suggestion of this distribution for parameter ``name`` of ``trial``."""
        if self.dist == "randint":
            return trial.suggest_int(name, self.low, self.high - 1)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.dist == "loguniform")

    def to_dict(self):
        return {"dist": self.dist, "low": self.low, "high": self.high}


DISTRIBUTIONS = ("uniform", "loguniform", "randint")


def parse_space(space, *, source="search space"):
    """A checked search space: ``{name: list of values or Distribution}``.

    Parameters
    ----------
    space : dict
        As written in JSON or TOML (see the module docstring); a list of dicts (several grids, as
        ``ParameterGrid`` takes) is only valid without distributions and is returned as a list.
    source : str
        Where it comes from, for error messages.

    Returns
    -------
    dict or list of dict

    >>> parse_space({"C": {"dist": "loguniform", "low": 0.1, "high": 10}, "kernel": "rbf"})
    {'C': Distribution(dist='loguniform', low=0.1, high=10, key='C'), 'kernel': ['rbf']}
    >>> parse_space({"C": {"dist": "loguniform", "low": 0.1}})
    Traceback (most recent call last):
    ...
    featurestore.errors.ParameterError: search space key 'C': loguniform needs the keys dist, low, high; missing: high
    """
    if isinstance(space, list):
        grids = [parse_space(grid, source=source) for grid in space]
        if any(has_distributions(grid) for grid in grids):
            raise ParameterError(f"{source}: a list of grids cannot hold distributions; write one table")
        return grids
    if not isinstance(space, dict):
        raise ParameterError(f"{source} must be a table of parameter names, not {type(space).__name__}")
    out = {}
    for key, value in space.items():
        if isinstance(value, Distribution):  # already checked
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _distribution(key, value)
        elif isinstance(value, (list, tuple)):
            if not value:
                raise ParameterError(f"search space key {key!r}: an empty list has no value to try")
            out[key] = list(value)
        else:
            out[key] = [value]
    return out


def _distribution(key, table):
    if "dist" not in table:
        raise ParameterError(f"search space key {key!r}: a table needs 'dist' (one of {', '.join(DISTRIBUTIONS)}); "
                             "a list of values is written as a list")
    dist = table["dist"]
    if dist not in DISTRIBUTIONS:
        raise ParameterError(f"search space key {key!r}: dist={dist!r} must be one of {', '.join(DISTRIBUTIONS)}")
    expected = {"dist", "low", "high"}
    missing, unknown = sorted(expected - set(table)), sorted(set(table) - expected)
    if missing:
        raise ParameterError(f"search space key {key!r}: {dist} needs the keys dist, low, high; "
                             f"missing: {', '.join(missing)}")
    if unknown:
        raise ParameterError(f"search space key {key!r}: {dist} takes the keys dist, low, high, not "
                             f"{', '.join(unknown)}")
    return Distribution(dist, table["low"], table["high"], key=key)


def has_distributions(space):
    """Whether any entry of ``space`` (a dict or a list of dicts) is a :class:`Distribution`."""
    grids = space if isinstance(space, list) else [space or {}]
    return any(isinstance(value, Distribution) for grid in grids for value in grid.values())


def scipy_space(space):
    """``space`` with each :class:`Distribution` as its ``scipy.stats`` distribution, for ``ParameterSampler``."""
    if isinstance(space, list):
        return [scipy_space(grid) for grid in space]
    return {key: value.scipy() if isinstance(value, Distribution) else value for key, value in space.items()}


def load_space(path):
    """The raw table of a ``.json`` or ``.toml`` file (check it with :func:`parse_space`)."""
    path = Path(path)
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"search space file {path}: {exc}") from None
