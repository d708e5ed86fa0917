"""Run configurations as TOML files: ``cli.py grid --config run.toml``.

A config file holds what a command line of ``grid``, ``cv`` or ``ensemble`` can say, under the names
of its options (``--max-epochs`` is ``max_epochs``), with the repeatable options as tables::

    command = "grid"                 # optional; when present it must be the command that reads the file
    estimator = "svm"
    dataset = "urbansound8k"
    root = "/data/UrbanSound8K"
    folds = [1, 2]
    seed = 0
    scoring = "balanced_accuracy"

    [settings.mfcc]                  # --set mfcc.n_mfcc=20: features and their parameters
    n_mfcc = 20
    [settings.audio]                 # --set audio.sr=16000
    sr = 16000
    [param_grid]                     # grid: --param-grid 'C=0.1,1,10' (lists of candidates)
    C = [0.1, 1, 10]
    [params]                         # cv: --params C=10 (one value each)
    [dataset_options]                # --dataset-option esc10=true

TOML has no null: the string ``"none"`` stands for None in ``settings``, ``param_grid``, ``params`` and
``dataset_options``, as it does on the command line (``--params class_weight=none``).

Options given on the command line override the file: a scalar replaces the file's value, and an entry
of a table (``--set mfcc.n_mfcc=40``, ``--param-grid C=1,10``) replaces that one entry. A key that is not
an option of the command is an error naming the key and the file. Every results folder writes the
fully resolved configuration of its run back as ``config.toml`` (:func:`resolved_config`), so that
``cli.py grid --config results/<run>/config.toml`` repeats the run.

This module knows the command line only through the argparse parser it is given: an option added to a
command is a config key the day it is added.
"""

import json
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: argparse destinations that are not run settings: never read from, nor written to, a config file.
NOT_CONFIG = ("help", "config", "func", "command", "debug")

#: Repeatable options held as TOML tables or arrays: destination -> config key.
TABLES = {"set": "settings", "param_grid": "param_grid", "params": "params", "dataset_option": "dataset_options"}

#: Comma-separated options held as TOML arrays.
LISTS = ("folds", "estimators")

#: How None is written in a config file (TOML has no null), and read back.
NONE = "none"


class ConfigError(Exception):
    """A config file that cannot be read or holds something the command does not take."""


def load_config(path):
    """The table of the TOML file at ``path``.

    Raises
    ------
    ConfigError
        Naming the file when it is missing or is not valid TOML.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None


def config_actions(parser):
    """``{config key: argparse action}`` of a command's parser (its options that a config can hold)."""
    out = {}
    # argparse has no public list of a parser's options; its ``_actions`` is the one it parses with
    for action in parser._actions:
        if action.dest in NOT_CONFIG or not action.option_strings:
            continue
        out[TABLES.get(action.dest, action.dest)] = action
    return out


def apply_config(parser, command, config, path):
    """Make the values of ``config`` the defaults of ``parser`` (the parser of ``command``).

    Options given on the command line then override them (see the module docstring). An option
    that argparse requires (``--estimator``) is no longer required once the file gives it.

    Raises
    ------
    ConfigError
        For a key that is not an option of ``command``, or a value of the wrong type, naming the
        key and ``path``.
    """
    actions = config_actions(parser)
    config = dict(config)
    written_by = config.pop("command", command)
    if written_by != command:
        raise ConfigError(f"{path}: command = {written_by!r}, but it is read by `{command}`; run "
                          f"`cli.py {written_by} --config {path}`")
    defaults = {}
    for key, value in config.items():
        if key not in actions:
            raise ConfigError(f"{path}: unknown key {key!r}: `{command}` takes "
                              f"{', '.join(sorted(actions))}")
        action = actions[key]
        defaults[action.dest] = _to_argument(key, value, action, path)
        action.required = False
    parser.set_defaults(**defaults)


def _to_argument(key, value, action, path):
    """The value of config ``key`` as argparse would hold the option after parsing a command line."""
    def fail(must):
        raise ConfigError(f"{path}: {key} = {value!r} must be {must}")

    if action.dest in TABLES:
        if not isinstance(value, dict):
            fail("a table")
        if action.dest == "set":
            items = []
            for kind, params in value.items():
                if not isinstance(params, dict):
                    fail(f"a table of tables ([{key}.{kind}] with the parameters of {kind})")
                items += [f"{kind}.{name}={_decode(v)!r}" for name, v in params.items()]
            return items
        if action.dest == "dataset_option":
            return [f"{name}={_decode(v)!r}" for name, v in value.items()]
        if action.dest == "param_grid":
            # a list is a grid axis, a table with "dist" a distribution (pipelines.spaces), else one value
            return [json.dumps({name: _decode(v) if isinstance(v, list) or (isinstance(v, dict) and "dist" in v)
                                else [_decode(v)]})
                    for name, v in value.items()]
        return [json.dumps({name: [_decode(v)]}) for name, v in value.items()]  # params: one value each
    if action.dest in LISTS:
        if not isinstance(value, list):
            fail("an array, e.g. [1, 2]")
        return ",".join(str(v) for v in value)
    if action.nargs == 0:  # a flag: --skip-bad
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if isinstance(value, (dict, list)):
        fail("a single value")
    if action.type is not None:
        try:
            converted = action.type(value)
        except (TypeError, ValueError):
            fail(f"of type {action.type.__name__}")
        if isinstance(value, bool) or converted != value:
            fail(f"of type {action.type.__name__}")
    if action.choices is not None and value not in action.choices:
        fail(f"one of {', '.join(map(str, action.choices))}")
    return value


def _decode(value):
    """A config value with the string ``"none"`` read as None (in lists and tables too)."""
    if isinstance(value, str) and value.lower() == NONE:
        return None
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _encode(value):
    """A value for TOML: None as ``"none"``, tuples as arrays, numpy scalars as Python numbers, a search
    space's distribution as the table it was written as (``{dist, low, high}``)."""
    from pipelines.spaces import Distribution

    if value is None:
        return NONE
    if isinstance(value, Distribution):
        return {"dist": value.dist, "low": _encode(value.low), "high": _encode(value.high)}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return value.item()
    return value


def args_config(args, parser, command, *, tables):
    """The configuration a parsed command line says, as a config file would hold it.

    Parameters
    ----------
    args : argparse.Namespace
    parser : argparse.ArgumentParser
        The parser of ``command``.
    command : str
    tables : dict
        Options as the command line's own parsers read them, by config key: the repeatable ones
        (``{"settings": {kind: {param: value}}, "param_grid": {...}, "params": {...},
        "dataset_options": {...}}``) and ``folds`` (a list of int); empty or None ones are left out.

    Returns
    -------
    dict
        ``command`` first; options left at None are left out (TOML has no null).
    """
    config = {"command": command}
    for key, action in config_actions(parser).items():
        if key in tables or action.dest in TABLES:
            if tables.get(key):
                config[key] = tables[key]
            continue
        value = getattr(args, action.dest, None)
        if value is None:
            continue
        if action.dest in LISTS:
            value = [v.strip() for v in str(value).split(",") if v.strip()]
        config[key] = value
    return config


def resolved_config(config, **resolved):
    """``config`` with what a run resolved (feature kind and parameters, audio, candidates, folds, paths).

    Keys of ``resolved`` whose value is None are not changed; ``settings`` entries are merged per kind.
    """
    out = dict(config)
    settings = {kind: dict(params) for kind, params in out.get("settings", {}).items()}
    for kind, params in (resolved.pop("settings", None) or {}).items():
        settings[kind] = {**settings.get(kind, {}), **params}
    if settings:
        out["settings"] = settings
    out.update({key: value for key, value in resolved.items() if value is not None})
    return out


def dumps(config, comment=None):
    """TOML text of ``config`` (None written as ``"none"``), after ``comment`` lines if given."""
    import tomli_w

    scalars = {k: _encode(v) for k, v in config.items() if not isinstance(v, dict)}
    tables = {k: _encode(v) for k, v in config.items() if isinstance(v, dict)}
    head = "".join(f"# {line}\n" for line in (comment or "").splitlines())
    return head + tomli_w.dumps({**scalars, **tables})


def write_config(path, config, comment=None):
    """Write ``config`` as TOML to ``path`` (see :func:`dumps`)."""
    Path(path).write_text(dumps(config, comment))
