"""Audio data sets as tables of clips.

Each data set is one module in this package that defines ``NAME`` (the command-line name),
``DESCRIPTION``, ``AUDIO_DEFAULTS`` (overrides of :data:`featurestore.audio.AUDIO_DEFAULTS`, e.g. the
clip duration), ``OPTIONS`` (its loader options with defaults) and ``load_table(root, **options)``,
which returns a :class:`pandas.DataFrame` with the columns of :data:`REQUIRED_COLUMNS` (``path``
absolute, ``fold`` an integer or missing) plus the data set's own columns. Adding a data set touches
one module; :func:`load_dataset` does the rest (missing files, identity, skipping).
"""

import difflib
import hashlib
import importlib
import json
import os
import pkgutil
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import pandas as pd

from featurestore.errors import DatasetError, MissingFilesError, ParameterError

REQUIRED_COLUMNS = ("clip_id", "path", "label", "fold", "group")
AUDIO_EXTENSIONS = (".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3")


@dataclass
class Dataset:
    """A data set: its clip table and where it came from.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"urbansound8k"``.
    root : pathlib.Path
        The folder (or, for ``csv``, the manifest file) it was read from.
    clips : pandas.DataFrame
        One row per clip: ``clip_id`` (unique str), ``path`` (absolute str), ``label`` (str),
        ``fold`` (pandas nullable Int64; missing when the data set has no folds), ``group`` (str),
        then the data set's own columns. Rows whose audio is missing were dropped when skipping.
    options : dict
        The loader options used (e.g. ``{"esc10": True}``).
    audio_defaults : dict
        The data set's audio settings (e.g. ``{"duration": 4.0}``).
    skipped : list of dict
        Rows dropped because their audio file is missing: ``{"clip_id", "path", "reason"}``.
    """

    name: str
    root: Path
    clips: pd.DataFrame
    options: dict = field(default_factory=dict)
    audio_defaults: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    @property
    def has_folds(self):
        """Whether every clip has a predefined fold."""
        return bool(self.clips["fold"].notna().all()) and len(self.clips) > 0

    @property
    def folds(self):
        """Sorted fold numbers (empty when the data set has none)."""
        return sorted(int(f) for f in self.clips["fold"].dropna().unique())

    @cached_property
    def identity(self):
        """A stable hash of the data set's name, options and clip table, including each file's size and
        modification time, so that features of a changed file are never served from the store.

        Computed once per :class:`Dataset` object (it reads every file's status); load the data set
        again to see changed files."""
        return _identity(self)

    def describe_table(self):
        """The clip table as stored with each feature set: paths relative to the root."""
        base = self.root if self.root.is_dir() else self.root.parent
        table = self.clips[list(REQUIRED_COLUMNS)].copy()
        table["path"] = [os.path.relpath(p, base) for p in table["path"]]
        table["fold"] = table["fold"].astype("object").where(table["fold"].notna(), None)
        return table


def _identity(dataset):
    table = dataset.describe_table()
    stats = [os.stat(p) for p in dataset.clips["path"]]
    table["size"] = [s.st_size for s in stats]
    table["mtime_ns"] = [s.st_mtime_ns for s in stats]
    payload = json.dumps(
        {"name": dataset.name, "options": dataset.options, "table": table.to_dict(orient="split")},
        sort_keys=True, default=str,
    )
    return hashlib.sha1(payload.encode()).hexdigest()


@lru_cache(maxsize=None)
def _modules():
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "load_table"):
            found[module.NAME] = module
    return found


def available():
    """Names of all data sets, sorted."""
    return tuple(sorted(_modules()))


def get_module(name):
    """The module implementing data set ``name``; :class:`ParameterError` listing the valid names."""
    modules = _modules()
    if name not in modules:
        close = difflib.get_close_matches(str(name), modules, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ParameterError(f"unknown data set {name!r}.{hint} Valid: {', '.join(sorted(modules))}")
    return modules[name]


def load_dataset(name, root=None, *, skip_missing=False, **options):
    """Read data set ``name`` from ``root`` into a :class:`Dataset`.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    root : str or pathlib.Path, optional
        The data set's folder (for ``csv``, the manifest file). Only a data set whose module has a
        ``default_root()`` (``demo``) may omit it; one with ``CREATES_ROOT`` makes it on first use.
    skip_missing : bool
        When False (default) a metadata row whose audio file is missing is an error giving the count
        and the first paths; when True such rows are dropped with a warning and recorded in
        ``Dataset.skipped``.
    **options
        The data set's own options (see its module's ``OPTIONS``), e.g. ``esc10=True`` for ``esc50``.

    Raises
    ------
    ParameterError
        Unknown data set or option.
    DatasetError
        Missing root or metadata, malformed metadata.
    MissingFilesError
        Audio files listed in the metadata are missing (and ``skip_missing`` is False).
    """
    module = get_module(name)
    unknown = set(options) - set(module.OPTIONS)
    if unknown:
        valid = ", ".join(sorted(module.OPTIONS)) or "none"
        raise ParameterError(f"data set {name!r} has no option {sorted(unknown)[0]!r}; its options: {valid}")
    options = {**module.OPTIONS, **options}
    if root is None:
        if not hasattr(module, "default_root"):
            raise DatasetError(f"data set {name!r} needs a root (--root PATH)")
        root = module.default_root()
    root = Path(root).expanduser().resolve()
    if not root.exists() and not getattr(module, "CREATES_ROOT", False):
        raise DatasetError(f"data set {name!r}: root {root} does not exist")
    table = module.load_table(root, **options)
    table = _validate_table(table, name)
    table, skipped = _check_missing(table, name, skip_missing)
    return Dataset(name=name, root=root, clips=table.reset_index(drop=True), options=options,
                   audio_defaults=dict(module.AUDIO_DEFAULTS), skipped=skipped)


def _validate_table(table, name):
    absent = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if absent:
        raise DatasetError(f"data set {name!r}: the loader produced no column(s) {absent}")
    if len(table) == 0:
        raise DatasetError(f"data set {name!r}: the metadata lists no clips")
    table = table.copy()
    table["clip_id"] = table["clip_id"].astype(str)
    dup = table["clip_id"][table["clip_id"].duplicated()]
    if len(dup):
        raise DatasetError(f"data set {name!r}: {len(dup)} duplicate clip ids, e.g. {dup.iloc[0]!r}")
    table["label"] = table["label"].astype(str)
    table["group"] = table["group"].astype(str)
    table["fold"] = pd.to_numeric(table["fold"], errors="raise").astype("Int64")
    front = list(REQUIRED_COLUMNS)
    return table[front + [c for c in table.columns if c not in front]]


def _check_missing(table, name, skip_missing):
    exists = table["path"].map(os.path.isfile)
    if exists.all():
        return table, []
    missing = table.loc[~exists]
    if not skip_missing:
        first = ", ".join(missing["path"].head(3))
        raise MissingFilesError(
            f"data set {name!r}: {len(missing)} of {len(table)} audio files listed in the metadata are "
            f"missing, e.g. {first}. Pass --skip-missing (skip_missing=True) to skip them.")
    skipped = [{"clip_id": r.clip_id, "path": r.path, "reason": "missing audio file"}
               for r in missing.itertuples()]
    warnings.warn(f"data set {name!r}: skipping {len(missing)} of {len(table)} rows whose audio file is "
                  f"missing, e.g. {missing['path'].iloc[0]}", stacklevel=3)
    return table.loc[exists], skipped


def read_metadata_csv(path, required, name):
    """Read a metadata CSV, checking that it exists and has the ``required`` columns.

    Raises
    ------
    DatasetError
        Naming the file and the missing columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data set {name!r}: metadata file {path} not found")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"data set {name!r}: cannot parse {path}: {exc}") from None
    absent = [c for c in required if c not in table.columns]
    if absent:
        raise DatasetError(f"data set {name!r}: {path} lacks column(s) {', '.join(absent)}; "
                           f"it has {', '.join(map(str, table.columns))}")
    return table
