"""Audio data sets as tables of clips.

Each data set is one module in this package that defines ``NAME`` (the command-line name),
``DESCRIPTION``, ``AUDIO_DEFAULTS`` (overrides of :data:`featurestore.audio.AUDIO_DEFAULTS`, e.g. the
clip duration; a module may also define ``audio_defaults(clips)``, which returns them from the clip
table, as ``folder`` and ``csv`` do for the duration), ``OPTIONS`` (its loader options with
defaults) and ``load_table(root, **options)``, which returns a :class:`pandas.DataFrame` with the
columns of :data:`REQUIRED_COLUMNS` (``path`` absolute, ``fold`` an integer, its text, or missing)
plus the data set's own columns. A module whose
required columns come from metadata columns of other names says so in ``SOURCE_COLUMNS`` (e.g.
``{"label": "category"}``), so that errors name the column the user wrote. Adding a data set touches
one module; :func:`load_dataset` does the rest (metadata checks, missing files, identity, skipping).

Metadata read with :func:`read_metadata_csv` keeps its origin: the table's index is the line number
in the file (the header is line 1) and ``table.attrs["source"]`` the file, so that every
:class:`~featurestore.errors.MetadataError` names the file, the line and the column. Labels, groups
and folds are read as the text written (``1`` and ``1.0`` are two strings, ``NA`` is a label, not a
missing value); two labels that differ only in how they are written (``1`` and ``1.0``, ``dog``
and ``"dog "``) are an error naming both rows rather than two classes, since the metadata cannot tell
which was meant.
"""

import hashlib
import importlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from featurestore import registry
from featurestore.errors import DatasetError, MetadataError, MissingFilesError, ParameterError

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
        The data set's audio settings (e.g. ``{"duration": 4.0}``; for ``folder`` and ``csv``, the
        duration is read from the files, see :mod:`featurestore.datasets._clip_length`).
    skipped : list of dict
        Rows dropped because their audio file is missing: ``{"clip_id", "path", "reason"}``.
    fingerprint : bool
        Whether :attr:`identity` hashes each audio file's content instead of its size and
        modification time (see :func:`load_dataset`).
    """

    name: str
    root: Path
    clips: pd.DataFrame
    options: dict = field(default_factory=dict)
    audio_defaults: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    fingerprint: bool = False

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
        modification time, so that features of a changed file are never served from the store. With
        :attr:`fingerprint`, each file's content digest (BLAKE2b) takes the place of its size and time:
        a file edited in place with its size and time kept is then seen too, and a copy of the data
        set elsewhere (new times) keeps its identity.

        Computed once per :class:`Dataset` object (it reads every file's status, or with
        :attr:`fingerprint` every file); load the data set again to see changed files."""
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
    if dataset.fingerprint:
        table["blake2b"] = [file_digest(p) for p in dataset.clips["path"]]
    else:
        stats = [os.stat(p) for p in dataset.clips["path"]]
        table["size"] = [s.st_size for s in stats]
        table["mtime_ns"] = [s.st_mtime_ns for s in stats]
    payload = json.dumps(
        {"name": dataset.name, "options": dataset.options, "table": table.to_dict(orient="split")},
        sort_keys=True, default=str,
    )
    return hashlib.sha1(payload.encode()).hexdigest()


def file_digest(path):
    """Hex BLAKE2b digest (16 bytes) of the content of the file at ``path``."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


@lru_cache(maxsize=None)
def _modules():
    """``{NAME: module}`` of the data set modules; they import pandas at most, so listing imports them."""
    found = {}
    for module_name in registry.module_names(__path__):
        module = importlib.import_module(f"{__name__}.{module_name}")
        if hasattr(module, "NAME") and hasattr(module, "load_table"):
            found[module.NAME] = module
    return found


def available():
    """Names of all data sets, sorted."""
    return tuple(sorted(_modules()))


def get_module(name):
    """The module implementing data set ``name``.

    Raises
    ------
    featurestore.registry.UnknownNameError
        If ``name`` is not a data set; the message lists the valid names and a close match.
    """
    return registry.lookup("data set", name, _modules())


def load_dataset(name, root=None, *, skip_missing=False, fingerprint=False, **options):
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
    fingerprint : bool
        When True the data set's identity (and so the store's folder of its features) hashes the
        content of every audio file, so that a file edited in place whose size and modification time
        were kept gets new features; this reads every file once per load. When False (default) the
        identity uses each file's size and modification time only.
    **options
        The data set's own options (see its module's ``OPTIONS``), e.g. ``esc10=True`` for ``esc50``.

    Raises
    ------
    ParameterError
        Unknown data set or option.
    DatasetError
        Missing root or metadata, unparsable metadata.
    MetadataError
        A row with an empty label, group or clip id, a fold that is not an integer (or missing while
        other rows have one), labels that differ only in how they are written, two rows
        naming the same audio file (after resolving ``.``, ``..`` and symbolic links) or the same clip
        id. The message names the file, the line and the column.
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
    table = _validate_table(table, name, getattr(module, "SOURCE_COLUMNS", {}))
    table, skipped = _check_missing(table, name, skip_missing)
    table = table.reset_index(drop=True)
    table.attrs = {}  # the line numbers are gone with the index
    audio_defaults = module.audio_defaults(table) if hasattr(module, "audio_defaults") else module.AUDIO_DEFAULTS
    return Dataset(name=name, root=root, clips=table, options=options,
                   audio_defaults=dict(audio_defaults), skipped=skipped, fingerprint=fingerprint)


def _validate_table(table, name, source_columns):
    absent = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if absent:
        raise DatasetError(f"data set {name!r}: the loader produced no column(s) {absent}")
    if len(table) == 0:
        raise DatasetError(f"data set {name!r}: the metadata lists no clips")
    table = table.copy()
    rows = _RowNames(table, name, source_columns)
    for column in ("clip_id", "label", "group"):
        _check_not_empty(table, column, rows)
    table["fold"] = _parse_folds(table, rows)
    table["label"] = table["label"].astype(str)
    table["group"] = table["group"].astype(str)
    _check_one_spelling(table, "label", rows)
    _check_unique_files(table, rows)
    table["clip_id"] = table["clip_id"].astype(str)
    _check_unique(table, "clip_id", rows, "the same clip id")
    front = list(REQUIRED_COLUMNS)
    return table[front + [c for c in table.columns if c not in front]]


class _RowNames:
    """Names rows and columns of a loader's table as the user wrote them, for error messages.

    A row is named by its metadata file and line (``table.attrs["source"]`` and the index, as
    :func:`read_metadata_csv` sets them), or by its audio path when it comes from no metadata file
    (the ``folder`` layout); a column by its name in the metadata (``source_columns``).
    """

    def __init__(self, table, name, source_columns):
        self.table, self.name, self.source_columns = table, name, source_columns
        self.source = table.attrs.get("source")

    def column(self, column):
        return self.source_columns.get(column, column)

    def rows(self, *labels):
        """'FILE, line 3' or 'FILE, lines 3 and 7' (or the audio paths)."""
        if not self.source:
            return " and ".join(str(self.table.at[r, "path"]) for r in labels)
        lines = " and ".join(str(r) for r in labels)
        return f"{self.source}, line{'s' if len(labels) > 1 else ''} {lines}"

    def spelling(self, path):
        """``path`` as written in the metadata: without the metadata file's folder that a loader joined."""
        base = os.path.join(os.path.dirname(self.source), "") if self.source else None
        return path[len(base):] if base and path.startswith(base) else path

    def error(self, labels, column, problem, *, others=0):
        """A :class:`MetadataError` naming the data set, the rows and the column."""
        more = f" (and {others} more row{'s' if others > 1 else ''})" if others else ""
        return MetadataError(f"data set {self.name!r}: {self.rows(*labels)}, column "
                             f"{self.column(column)!r}: {problem}{more}")


def _is_empty(value):
    return value is None or (not isinstance(value, str) and pd.isna(value)) or str(value).strip() == ""


def _check_not_empty(table, column, rows):
    empty = table.index[table[column].map(_is_empty)]
    if len(empty):
        what = "clip id" if column == "clip_id" else column
        raise rows.error([empty[0]], column, f"the {what} is empty", others=len(empty) - 1)


def _parse_fold(value):
    """The fold number written in ``value`` (``3``, ``"3"``, ``"3.0"``); None when empty.

    Raises ValueError when ``value`` is not a whole number."""
    if _is_empty(value):
        return None
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # a fold written by a tool that stores numbers as floats: "3.0"
        if not number.is_integer():
            raise ValueError(text) from None
        return int(number)


def _parse_folds(table, rows):
    """The ``fold`` column as pandas Int64: every row's fold, or none at all."""
    folds = []
    for row, value in table["fold"].items():
        try:
            folds.append(_parse_fold(value))
        except ValueError:
            raise rows.error([row], "fold", f"{value!r} is not an integer fold number") from None
    folds = pd.Series(folds, index=table.index, dtype="Int64")
    if folds.isna().any() and folds.notna().any():
        missing = folds.index[folds.isna()]
        raise rows.error([missing[0]], "fold", "no fold, while other rows have one; give every row a fold, "
                         "or none to split by stratified group k-fold", others=len(missing) - 1)
    return folds


def _spelling_key(text):
    """What two spellings of one label share: the number it reads as (``1``, ``1.0``, ``01``) or the
    text without surrounding white space."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _check_one_spelling(table, column, rows):
    """A :class:`MetadataError` when two values of ``column`` differ only in how they are written."""
    firsts = table[column].drop_duplicates()  # the first row of each value, in file order
    seen = {}
    for row, value in firsts.items():
        key = _spelling_key(value)
        if key in seen:
            first_row, first_value = seen[key]
            raise rows.error([first_row, row], column,
                             f"{first_value!r} and {value!r} differ only in how they are written, and would "
                             f"be two {column}s; write them one way")
        seen[key] = (row, value)


def _check_unique_files(table, rows):
    """A :class:`MetadataError` when two rows name one audio file (after resolving ``.``, ``..`` and
    symbolic links, and the case on case-insensitive systems)."""
    resolved = table["path"].map(lambda p: os.path.normcase(os.path.realpath(p)))
    duplicated = resolved.duplicated(keep=False)
    if duplicated.any():
        first = resolved[duplicated].iloc[0]
        pair = resolved.index[resolved == first][:2]
        spelled = [rows.spelling(table.at[row, rows.column("path")]) for row in pair]
        raise rows.error(list(pair), rows.column("path"),
                         f"{spelled[0]!r} and {spelled[1]!r} are one audio file ({first})")


def _check_unique(table, column, rows, what):
    duplicated = table[column].duplicated(keep=False)
    if duplicated.any():
        first = table.loc[duplicated, column].iloc[0]
        pair = table.index[table[column] == first][:2]
        raise rows.error(list(pair), column, f"{what} {first!r}")


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


def read_metadata_csv(path, required, name, *, text=()):
    """Read a metadata CSV, checking that it exists and has the ``required`` columns.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    required : sequence of str
        Columns the file must have.
    name : str
        The data set's name, for error messages.
    text : sequence of str
        Columns kept as the text written (file names, labels, folds, groups): ``1.0`` stays
        ``"1.0"``, ``NA`` stays ``"NA"``, an empty cell is ``""``. The other columns get pandas'
        usual types.

    Returns
    -------
    table : pandas.DataFrame
        One row per non-blank record; the index is the record's line in the file (the header is line
        1; a quoted value spanning lines counts them all) and ``table.attrs["source"]`` is ``path``.

    Raises
    ------
    DatasetError
        Naming the file and what is wrong with it: missing, unparsable, lacking columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data set {name!r}: metadata file {path} not found")
    # Blank lines are kept as rows here, so that each row's position gives its line number.
    literal = _read_csv(path, name, dtype=str, keep_default_na=False, skip_blank_lines=False)
    absent = [c for c in required if c not in literal.columns]
    if absent:
        raise DatasetError(f"data set {name!r}: {path} lacks column(s) {', '.join(absent)}; "
                           f"it has {', '.join(map(str, literal.columns))}")
    blank = (literal == "").all(axis=1)
    table = literal.set_axis(_line_numbers(literal), axis=0).loc[~blank.to_numpy()]
    typed = [c for c in table.columns if c not in text]
    if typed:  # read again with pandas' types, row for row
        inferred = _read_csv(path, name, skip_blank_lines=False).loc[~blank]
        table[typed] = inferred[typed].set_axis(table.index, axis=0)
    table.attrs["source"] = str(path)
    return table


def _read_csv(path, name, **options):
    try:
        with warnings.catch_warnings():  # a row with more values than the header: an error, not lost data
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, index_col=False, **options)
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"data set {name!r}: cannot parse {path}: {exc}") from None


def _line_numbers(table):
    """The line on which each row of ``table`` (read with blank lines kept) starts: the header is line
    1, and a quoted value holding line breaks moves the following rows down."""
    breaks = sum(table[c].str.count("\n").to_numpy() for c in table.columns)  # line breaks inside each row
    header_breaks = sum(str(c).count("\n") for c in table.columns)
    return (2 + header_breaks + np.arange(len(table)) + np.cumsum(breaks) - breaks).tolist()
