"""The feature store: feature sets in HDF5 under ``cache/``, keyed by their full parameters.

Layout under the store's root (``./cache`` by default, ``FEATURESTORE_CACHE`` or ``--cache DIR``)::

    features/<dataset>-<identity[:10]>/<kind>-<key[:12]>.h5       complete feature sets
    features/<dataset>-<identity[:10]>/<kind>-<key[:12]>.partial/  an extraction in progress
    features/<dataset>-<identity[:10]>/<kind>-<key[:12]>-aug<augkey[:8]>.h5   augmented copies
    datasets/                                                      built-in data sets' audio

A feature set is addressed by the data set's identity (its clip table, options and files' sizes and
times) and a stable hash of the feature kind, its version, its full parameters, the audio settings and
the storage dtype. Its HDF5 file holds ``features`` ``(n_clips, *feature_shape)``, ``clip_ids`` (n_clips,)
and ``clip_table`` (the JSON clip table it was computed for), with the parameters, library versions,
creation time and skipped clips as attributes.

Augmented copies of a set's clips (see :func:`featurestore.extraction.extract_augmented`) are a
feature set of their own, keyed by the main set's key, the augmentation's bounds, the number of copies
and the seed, so changing the augmentation never touches the main set. Its rows are named
``<clip_id>#aug<k>`` (k = 1 .. copies), and it records each row's source clip and copy number
explicitly (``source_ids`` and ``copy_index``; see :attr:`FeatureSet.sources`).

Crash safety: extraction writes batches into the ``.partial`` folder, each batch an ``.npy`` file of
features and then a ``.json`` file of its clip ids, each under a temporary name and renamed, so a killed
process leaves only whole batches and a rerun resumes from them. Each batch records the CRC-32 of its
features; a writer starting drops (with a warning) a batch that does not match it, whose clips are then
computed again. The ``.h5`` file appears, by an atomic rename, only once every clip is computed: a
partly written feature set is never read as complete. A lock file beside it (``<kind>-<key>.lock``)
keeps a second writer out; readers need no lock and open the file themselves (worker processes too).

Sets larger than memory: a set whose features exceed the memory budget
(:func:`featurestore.streaming.memory_budget`, ``FEATURESTORE_MEMORY_BUDGET``) is never loaded whole;
:class:`FeatureSet` reads the rows asked for as sorted contiguous runs, and experiments hand their
estimators the rows of a fold read on demand (:class:`featurestore.streaming.StoredRows`).

Integrity: every array of a feature set's file, and its attributes, are checksummed. Their CRC-32s
are recorded in the ``checksums`` attribute and checked on every read (the attributes' on opening;
the features of a streamed set once per process and file version, in blocks, before its first read),
and the file's own structure (superblock, object headers) is written in HDF5's 1.8 format, which HDF5
checksums itself. A truncated, unreadable or altered file raises
:class:`~featurestore.errors.CorruptFeatureSetError` naming it; extraction replaces such a set (with a
warning). Measured on a 166 MB array of features (page-cached, 2 shared cores): contiguous data
with a CRC-32 writes at 1.0-1.9 GB/s and reads at 2.6 GB/s; HDF5's Fletcher-32 filter (which needs
1 MiB chunks) 0.8-1.0 and 2.0 GB/s; SHA-256 0.8-1.0 and 1.4 GB/s. Fletcher-32 also misses a chunk
zeroed together with its trailing checksum (the Fletcher-32 of zeros is zero).
"""

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
from filelock import FileLock, Timeout

from featurestore import features
from featurestore.errors import CorruptFeatureSetError, FeatureStoreError, ParameterError, StoreLockedError
from featurestore.streaming import memory_budget, contiguous_runs

ENV_VAR = "FEATURESTORE_CACHE"
#: Layout of a feature set's file, part of every store key: 2 = checksummed arrays, HDF5 1.8 metadata.
STORE_FORMAT = 2
STORAGE_DTYPES = ("float32", "float16")
AUGMENT_VERSION = 1  # bump when featurestore.augment changes the copies it computes
_LIBRARIES = ("numpy", "scipy", "librosa", "soundfile", "soxr", "h5py")


def default_root():
    """The store's root: ``$FEATURESTORE_CACHE`` if set, else ``./cache``."""
    return Path(os.environ.get(ENV_VAR) or "cache").expanduser().resolve()


def feature_key(kind, params, audio, dtype="float32"):
    """Stable hash of everything that determines a feature set's values (hex str)."""
    # a checkpoint counts by its content (SHA-256), not its path: see features.key_params
    payload = {"kind": kind, "version": features.get(kind).VERSION, "params": features.key_params(kind, params),
               "audio": audio, "dtype": dtype, "format": STORE_FORMAT}
    return hashlib.sha1(_canonical_json(payload).encode()).hexdigest()


def augment_key(source_key, augment):
    """Stable hash of an augmented-copies set: its main set's key, bounds, copies and seed (hex str).

    Parameters
    ----------
    source_key : str
        :func:`feature_key` of the main set.
    augment : dict
        ``{**WaveformAugmentation.params(), "copies": int, "seed": int}``
        (:meth:`featurestore.specs.AugmentSpec.settings`).
    """
    payload = {"source": source_key, "augment": augment, "version": AUGMENT_VERSION}
    return hashlib.sha1(_canonical_json(payload).encode()).hexdigest()


def augmented_id(clip_id, copy):
    """Row id of augmented copy ``copy`` (1, 2, ...) of clip ``clip_id``: ``"<clip_id>#aug<copy>"``."""
    return f"{clip_id}#aug{int(copy)}"


def _canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, np.ndarray)):
        return list(value)
    raise TypeError(f"parameter value {value!r} is not JSON-serialisable")


def checksum(values):
    """CRC-32 of an array's values (8 hex digits), as recorded in a feature set's ``checksums``.

    Numbers are checksummed as their little-endian bytes in C order, strings as the JSON list of
    them, so the checksum depends on the values alone, not on how HDF5 stores them. CRC-32 finds
    accidental damage (any burst of up to 32 bits, anything else but for 1 in 2**32), not deliberate
    tampering; it runs at several GB/s on any CPU.

    Parameters
    ----------
    values : np.ndarray [shape=(n, ...)], numeric or str; or one str
    """
    if isinstance(values, (str, bytes)):
        values = np.array([values], dtype=object)
    values = np.asarray(values)
    if values.dtype.kind in "OSU":
        text = [v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()]
        return f"{zlib.crc32(_canonical_json(text).encode()):08x}"
    return f"{zlib.crc32(_little_endian(values)):08x}"


def _checksum_rows(dataset, block_bytes=64 * 2**20):
    """:func:`checksum` of a numeric HDF5 data set, read in blocks of rows (never whole in memory)."""
    crc = 0
    row_bytes = max(1, int(np.prod(dataset.shape[1:], dtype=np.int64)) * dataset.dtype.itemsize)
    step = max(1, block_bytes // row_bytes)
    for start in range(0, dataset.shape[0], step):
        crc = zlib.crc32(_little_endian(dataset[start:start + step]), crc)
    return f"{crc:08x}"


def _little_endian(values):
    return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))


def library_versions(names=None):
    """``{distribution: version}`` (None when absent) of ``names``; by default the libraries that
    compute features, recorded with every feature set."""
    versions = {}
    for name in _LIBRARIES if names is None else names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class FeatureSet:
    """A complete feature set in the store, read-only.

    A set whose features fit the memory budget (:func:`featurestore.streaming.memory_budget`) is
    loaded whole by its first read, with one contiguous read, and kept in this object (until the
    file's modification time changes), indexing it in memory: h5py's fancy indexing over HDF5
    data sets is orders of magnitude slower. A larger set is never loaded whole: :meth:`read`,
    :meth:`read_rows`, :meth:`read_at` and :meth:`iter_batches` read the rows asked for, as
    sorted contiguous runs of the file (streaming). Nothing is shared between objects: keep the
    object to keep its data (as :meth:`FeatureStore.get`'s LRU and a fitted ``FeatureLoader``
    do). Pickling drops the loaded data, so that a set sent to a worker process is its path and
    attributes; the worker reads the file itself.

    Streamed reads are checked too: before the first one, the whole ``features`` array is read
    once in blocks of 64 MiB and checked against its checksum (the CRC-32 of the array cannot
    be checked part by part), once per file version and process.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.h5`` file.
    """

    def __init__(self, path, *, memory_budget=None):
        self.path = Path(path)
        self.memory_budget = memory_budget
        self._loaded = None  # (mtime_ns, clip_ids, {clip_id: row}, features), read on first use
        self._index = None  # (mtime_ns, clip_ids, {clip_id: row}) of a streamed set
        self._row_index = None  # (mtime_ns, source_ids, copy_index, {source: rows by copy})
        if not self.path.is_file():
            raise FeatureStoreError(f"feature set {self.path} does not exist")
        with self._open() as f:
            stored = {k: _stored_attr(v) for k, v in f.attrs.items()}
            self.shape = tuple(f["features"].shape)
        self.attrs = {k: _decode_attr(v) for k, v in stored.items()}
        if not isinstance(self.attrs.get("checksums"), dict):
            raise CorruptFeatureSetError(self.path, "it records no checksums (written by an older version of the "
                                                    "store, whose sets are no longer used)")
        # HDF5 keeps string attributes outside its checksummed metadata: they have a checksum of their own
        if _attrs_checksum(stored) != self.attrs["checksums"].get("attrs"):
            raise CorruptFeatureSetError(self.path, "its attributes do not match their checksum (altered or damaged)")

    def __getstate__(self):
        # the loaded arrays stay behind: a worker process reads the file itself
        return {**self.__dict__, "_loaded": None, "_row_index": None, "_index": None}

    @property
    def nbytes(self):
        """Bytes of the whole ``features`` array as stored (its storage dtype)."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.attrs.get("dtype", "float32")).itemsize

    @property
    def streams(self):
        """Whether reads stream (the set exceeds the memory budget) instead of loading it whole."""
        return self.nbytes > memory_budget(self.memory_budget)

    @property
    def loaded_bytes(self):
        """Bytes of features this object holds in memory (0 before the first read)."""
        return self._loaded[3].nbytes if self._loaded is not None else 0

    @contextmanager
    def _open(self):
        """The HDF5 file, read-only; any HDF5 failure in the block becomes :class:`CorruptFeatureSetError`.

        h5py reports a truncated file, a metadata checksum mismatch or a missing data set as OSError,
        RuntimeError or KeyError without naming the file.
        """
        try:
            with h5py.File(self.path, "r") as f:
                yield f
        except (OSError, RuntimeError, KeyError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise  # removed while open: not damage
            raise CorruptFeatureSetError(self.path, f"HDF5 cannot read it ({_first_line(exc)})") from exc

    def _checked(self, f, name):
        """Data set ``name`` of open file ``f``, after checking it against its recorded checksum."""
        dataset = f[name]
        values = dataset.asstr()[()] if h5py.check_string_dtype(dataset.dtype) else dataset[()]
        expected = self.attrs["checksums"].get(name)
        if expected is None:
            raise CorruptFeatureSetError(self.path, f"no checksum is recorded for its {name!r} array")
        if checksum(values) != expected:
            raise CorruptFeatureSetError(self.path, f"its {name!r} array does not match its checksum "
                                                    f"(altered or damaged)")
        return values

    def verify(self):
        """Read every array of the set and check it against its checksum; returns ``self``.

        Raises
        ------
        CorruptFeatureSetError
            Naming the file and the first array that is unreadable or altered.
        """
        with self._open() as f:
            for name in self.attrs["checksums"]:
                if name == "features":  # read in blocks: a set larger than memory is checked too
                    self._verify_streamed(f, again=True)
                elif name != "attrs":  # checked on opening
                    self._checked(f, name)
        return self

    @property
    def kind(self):
        return self.attrs["kind"]

    @property
    def params(self):
        return self.attrs["params"]

    @property
    def audio(self):
        return self.attrs["audio"]

    @property
    def feature_shape(self):
        """Shape of one clip's feature array."""
        return self.shape[1:]

    @property
    def skipped(self):
        """Clips left out because their audio could not be used: list of dict."""
        return self.attrs.get("skipped", [])

    @property
    def retryable(self):
        """Skipped clips whose reason may pass (their file could not be read): list of dict.

        The next extraction of the set retries them (see :func:`may_pass`).
        """
        return [s for s in self.skipped if may_pass(s)]

    @property
    def augmentation(self):
        """For a set of augmented copies, its settings: the bounds of
        :class:`~featurestore.augment.WaveformAugmentation`, ``copies`` and ``seed``; else None."""
        return self.attrs.get("augmentation")

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        what = f"{self.kind} x{self.augmentation['copies']} augmented" if self.augmentation else self.kind
        return f"FeatureSet({what}, {len(self)} clips x {self.feature_shape}, {self.path.name})"

    @property
    def clip_ids(self):
        """Clip ids in storage order, ndarray of str, shape (n_clips,)."""
        return self._ids()[0]

    @property
    def sources(self):
        """Source clip id of each row, in storage order: ndarray of str, shape (n_clips,).

        A row of a main set is its own source; a row of augmented copies names the clip it was made from.
        """
        return self._rows()[0]

    @property
    def copy_index(self):
        """Copy number of each row, in storage order: ndarray of int, shape (n_clips,); 0 in a main set."""
        return self._rows()[1]

    def augmented_rows(self, source_ids, copies=None):
        """Row ids of copies ``1 .. copies`` of each clip of ``source_ids`` (all stored copies when None).

        Copies skipped at extraction (unusable audio or features) are absent; a clip with no copy
        in this set contributes no row.

        Parameters
        ----------
        source_ids : sequence of str
        copies : int, optional

        Returns
        -------
        row_ids : np.ndarray [shape=(n_rows,)], str
            Grouped by source clip, in the order of ``source_ids``, then by copy number.
        source_index : np.ndarray [shape=(n_rows,)], intp
            Position in ``source_ids`` of each row's source clip.
        """
        _, copy_index, by_source = self._rows()
        ids = self.clip_ids
        rows, owners = [], []
        for position, source in enumerate(source_ids):
            found = by_source.get(source)
            if found is None:
                continue
            if copies is not None:
                found = found[copy_index[found] <= copies]
            rows.append(found)
            owners.append(np.full(len(found), position, dtype=np.intp))
        if not rows:
            return np.array([], dtype=ids.dtype), np.array([], dtype=np.intp)
        return ids[np.concatenate(rows)], np.concatenate(owners)

    def contains(self, clip_ids):
        """Whether each of ``clip_ids`` is a row of this set: np.ndarray of bool, shape (n,)."""
        index = self._ids()[1]
        return np.fromiter((c in index for c in clip_ids), dtype=bool, count=len(clip_ids))

    def index_of(self, clip_ids):
        """Row numbers of ``clip_ids``; KeyError naming the first id the set lacks."""
        index = self._ids()[1]
        try:
            return np.fromiter((index[c] for c in clip_ids), dtype=np.intp, count=len(clip_ids))
        except KeyError as exc:
            raise KeyError(f"clip {exc.args[0]!r} is not in feature set {self.path} "
                           f"(skipped at extraction, or another data set)") from None

    def read(self, clip_ids=None):
        """Features of ``clip_ids`` (all clips in storage order when None).

        A set within the memory budget is loaded whole and kept (see the class docstring); a
        larger one reads the rows of ``clip_ids`` only, by :meth:`read_at`.

        Returns
        -------
        X : np.ndarray [shape=(n, *feature_shape)], float32
        """
        if self.streams:
            rows = np.arange(len(self)) if clip_ids is None else self.index_of(list(clip_ids))
            return self.read_at(rows)
        data = self._load()[2]
        if clip_ids is None:
            return data.astype(np.float32)  # a copy: the cached array must stay untouched
        return data[self.index_of(list(clip_ids))].astype(np.float32, copy=False)

    def read_rows(self, start, stop):
        """Features of the contiguous rows ``start:stop`` (storage order), read without loading the set.

        Parameters
        ----------
        start, stop : int
            ``0 <= start <= stop <= len(self)``.

        Returns
        -------
        X : np.ndarray [shape=(stop - start, *feature_shape)], float32
        """
        if not (features.is_int(start) and features.is_int(stop) and 0 <= start <= stop <= len(self)):
            raise ParameterError(f"rows {start!r}:{stop!r} are not a range of the {len(self)} rows of {self.path}")
        return self.read_at(np.arange(start, stop))

    def read_at(self, rows):
        """Features of the rows ``rows`` (row numbers, any order, repeats allowed), in that order.

        The rows are read as sorted contiguous runs of the file (one HDF5 read per run, never
        h5py's fancy indexing), into one array, then put in the caller's order. A set loaded
        whole (:meth:`read`) is served from memory.

        Parameters
        ----------
        rows : array-like of int [shape=(n,)]

        Returns
        -------
        X : np.ndarray [shape=(n, *feature_shape)], float32
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            bad = rows[(rows < 0) | (rows >= len(self))][0]
            raise IndexError(f"row {bad} is not a row of feature set {self.path} ({len(self)} rows)")
        if self._loaded is not None and self._loaded[0] == self._mtime_ns():
            return self._loaded[3][rows].astype(np.float32, copy=False)
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((len(unique), *self.feature_shape), dtype=np.float32)
        with self._open() as f:
            self._verify_streamed(f)
            data = f["features"]
            for start, stop, offset in contiguous_runs(unique):
                # read_direct converts float16 storage to float32 into ``out`` itself
                data.read_direct(out, np.s_[start:stop], np.s_[offset:offset + stop - start])
        return out if np.array_equal(unique, rows) else out[inverse]

    def iter_batches(self, rows=None, batch_size=256):
        """Features of ``rows`` (all rows in storage order when None), ``batch_size`` rows at a time.

        Each batch is read by :meth:`read_at`: only one batch is in memory at a time.

        Parameters
        ----------
        rows : array-like of int [shape=(n,)], optional
            Row numbers, in the order wanted.
        batch_size : int >= 1

        Yields
        ------
        X : np.ndarray [shape=(<= batch_size, *feature_shape)], float32
        """
        if not (features.is_int(batch_size) and batch_size >= 1):
            raise ParameterError(f"batch_size={batch_size!r} must be a positive integer")
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        for start in range(0, len(rows), batch_size):
            yield self.read_at(rows[start:start + batch_size])

    def _verify_streamed(self, f, *, again=False):
        """Check the whole ``features`` array of open file ``f`` against its checksum, once per file
        version in this process unless ``again`` (reading it in blocks: never whole in memory)."""
        stat = self.path.stat()
        key = (str(self.path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key in _VERIFIED and not again:
            return
        expected = self.attrs["checksums"].get("features")
        if expected is None:
            raise CorruptFeatureSetError(self.path, "no checksum is recorded for its 'features' array")
        if _checksum_rows(f["features"]) != expected:
            raise CorruptFeatureSetError(self.path, "its 'features' array does not match its checksum "
                                                    "(altered or damaged)")
        _VERIFIED.add(key)

    def clip_table(self):
        """The clip table the set was computed for, as a DataFrame."""
        import pandas as pd

        with self._open() as f:
            return pd.read_json(_StringIO(self._checked(f, "clip_table")), orient="split", dtype=False)

    def _mtime_ns(self):
        return self.path.stat().st_mtime_ns

    def _rows(self):
        """``(source_ids, copy_index, {source: rows by copy})``, read once per file version."""
        mtime = self._mtime_ns()
        if self._row_index is None or self._row_index[0] != mtime:
            with self._open() as f:
                if "source_ids" in f:
                    sources = self._checked(f, "source_ids")
                    copy_index = self._checked(f, "copy_index").astype(np.int64)
                else:
                    sources = self._checked(f, "clip_ids")
                    copy_index = np.zeros(len(sources), dtype=np.int64)
            order = np.lexsort((copy_index, sources))  # rows grouped by source, then by copy
            by_source = {}
            if len(order):
                breaks = np.flatnonzero(sources[order][1:] != sources[order][:-1]) + 1
                for chunk in np.split(order, breaks):
                    by_source[sources[chunk[0]]] = chunk
            self._row_index = (mtime, sources, copy_index, by_source)
        return self._row_index[1:]

    def _ids(self):
        """``(clip_ids, {clip_id: row})``, read once per file version (with the features when they
        are loaded, else alone: looking rows up never loads the set)."""
        mtime = self._mtime_ns()
        if self._loaded is not None and self._loaded[0] == mtime:
            return self._loaded[1:3]
        if self._index is None or self._index[0] != mtime:
            with self._open() as f:
                ids = self._checked(f, "clip_ids")
            self._index = (mtime, ids, {c: i for i, c in enumerate(ids)})
        return self._index[1:]

    def _load(self):
        """``(clip_ids, {clip_id: row}, features)``, read once per file version."""
        mtime = self._mtime_ns()
        if self._loaded is None or self._loaded[0] != mtime:
            with self._open() as f:
                ids = self._checked(f, "clip_ids")
                data = self._checked(f, "features")
            self._loaded = (mtime, ids, {c: i for i, c in enumerate(ids)}, data)
        return self._loaded[1:]


#: ``(path, mtime_ns, size)`` of the files whose features a streamed read of this process checked
#: against their checksum (flags, no data: see :meth:`FeatureSet._verify_streamed`).
_VERIFIED = set()


def _first_line(exc):
    """The first line of an exception's message (KeyError's without the quotes str() adds)."""
    text = str(exc.args[0] if exc.args else "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _StringIO(text):
    import io

    return io.StringIO(text)


def _stored_attr(value):
    """An HDF5 attribute's value as it was given to h5py: str, int, float or bool (JSON text for the rest)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode_attr(value):
    """A stored attribute's value, JSON text decoded."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _attrs_checksum(stored):
    """:func:`checksum` of a set's stored attributes, but its ``checksums``."""
    return checksum(_canonical_json({k: v for k, v in stored.items() if k != "checksums"}))


class FeatureSetWriter:
    """Writes one feature set batch by batch; resumable; one writer at a time.

    Use as a context manager (it holds the lock). ``done`` tells which clips are already stored,
    ``write_batch`` stores a batch atomically and ``finalize`` assembles the ``.h5`` file. Entering
    removes what a writer of the same set killed while finalizing left (its hidden ``.h5.tmp``);
    leaving on an error removes the ``.partial`` folder when no batch was stored in it.

    Parameters
    ----------
    path : pathlib.Path
        The final ``.h5`` path.
    attrs : dict
        Attributes to record (kind, params, audio, dataset, ...), JSON-serialisable.
    dtype : {"float32", "float16"}
        Storage dtype.
    base : FeatureSet, optional
        The complete set at ``path``, to extend with its clips skipped for a reason that may pass
        (:attr:`FeatureSet.retryable`): its other rows and skips count as done, and ``finalize``
        merges them with the new batches into the file that replaces it.
    """

    def __init__(self, path, attrs, dtype="float32", base=None):
        self.path = Path(path)
        self.partial = self.path.with_suffix(".partial")
        self.attrs = attrs
        self.dtype = dtype
        self.base = base
        self._lock = FileLock(str(self.path.with_suffix(".lock")), timeout=0)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"another process is writing feature set {self.path.name} in {self.path.parent} "
                f"(lock {self._lock.lock_file}); wait for it to finish or stop it") from None
        # The lock is ours, so a temporary file of this set is a killed finalize's (see finalize's name).
        for stale in self.path.parent.glob(f".{self.path.stem}-????????.h5.tmp"):
            stale.unlink(missing_ok=True)
        self.partial.mkdir(exist_ok=True)
        self._drop_damaged_parts()
        meta = self.partial / "attrs.json"
        if not meta.exists():
            _atomic_write_text(meta, _canonical_json(self.attrs))
        return self

    def __exit__(self, exc_type, *exc_info):
        try:
            if exc_type is not None and not self._parts():
                self.discard()  # nothing stored: an empty .partial would be listed forever
        finally:
            self._lock.release()
        return False

    def discard(self):
        """Remove the ``.partial`` folder and every batch in it."""
        shutil.rmtree(self.partial, ignore_errors=True)

    def _parts(self):
        """Committed batches: ``(clip_ids, skipped, features .npy path)``, oldest first.

        A batch is its features in ``<stem>.npy`` and its ids in ``<stem>.json``; the JSON is written
        last (both by rename), so a batch without it was never committed and is ignored.
        """
        parts = []
        for marker in sorted(self.partial.glob("part-*.json")):
            meta = json.loads(marker.read_text())
            parts.append((meta["clip_ids"], meta["skipped"], marker.with_suffix(".npy")))
        return parts

    def _drop_damaged_parts(self):
        """Remove the committed batches that are unreadable or do not match their checksum, with a
        warning naming each: their clips are computed again."""
        for marker in sorted(self.partial.glob("part-*.json")):
            problem = _batch_problem(marker)
            if problem is not None:
                warnings.warn(f"{marker.with_suffix('.npy')}: {problem}; its clips are computed again",
                              stacklevel=3)
                marker.unlink()
                marker.with_suffix(".npy").unlink(missing_ok=True)

    def _base_skipped(self):
        """The skips of ``base`` that stand: those whose reason does not pass."""
        return [s for s in self.base.skipped if not may_pass(s)] if self.base is not None else []

    def done(self):
        """Ids of the clips already stored or skipped in earlier batches (or in ``base``): set of str."""
        done = set(self.base.clip_ids) if self.base is not None else set()
        done.update(s["clip_id"] for s in self._base_skipped())
        for clip_ids, skipped, _ in self._parts():
            done.update(clip_ids)
            done.update(s["clip_id"] for s in skipped)
        return done

    def write_batch(self, clip_ids, values, skipped=()):
        """Store one batch atomically.

        Parameters
        ----------
        clip_ids : sequence of str, length n
        values : np.ndarray [shape=(n,) + feature_shape]
        skipped : sequence of dict
            Clips of this batch left out: ``{"clip_id", "path", "reason", "reason_kind"}``, where
            ``reason_kind`` is ``"transient"`` (the file could not be read: retried by the next
            extraction) or ``"permanent"`` (its audio or features are unusable).
        """
        values = np.asarray(values, dtype=self.dtype)
        if len(values) != len(clip_ids):
            raise ValueError(f"{len(clip_ids)} clip ids but {len(values)} feature rows")
        stem = self.partial / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = self.partial / f".tmp-{uuid.uuid4().hex}.npy"
        np.save(tmp, values)
        os.replace(tmp, stem.with_suffix(".npy"))
        _atomic_write_text(stem.with_suffix(".json"), json.dumps(
            {"clip_ids": list(map(str, clip_ids)), "skipped": list(skipped), "checksum": checksum(values)}))

    def finalize(self, clip_table):
        """Assemble the parts (and ``base``) into the ``.h5`` file, in the clip table's order; drop the parts.

        A retry of ``base`` that changed nothing (every retried clip failed again for a reason that
        may pass) keeps ``base`` as it is.

        Parameters
        ----------
        clip_table : pandas.DataFrame
            The clip table the set is computed for (``Dataset.describe_table()``); every clip must
            be stored or skipped. A table of augmented copies also has ``source_id`` and ``copy``
            columns, stored as the ``source_ids`` and ``copy_index`` data sets.

        Returns
        -------
        FeatureSet
        """
        parts = self._parts()
        if self.base is not None and not any(ids for ids, _, _ in parts) and all(
                may_pass(s) for _, batch_skipped, _ in parts for s in batch_skipped):
            self.discard()
            return self.base
        sources = [(ids, npy) for ids, _, npy in parts if ids]  # each batch mapped while it is copied
        if self.base is not None and len(self.base):
            sources.insert(0, (list(self.base.clip_ids), self.base.read()))
        stored = {clip for ids, _ in sources for clip in ids}
        skipped = self._base_skipped() + [s for _, batch_skipped, _ in parts for s in batch_skipped]
        order = [c for c in clip_table["clip_id"] if c in stored]
        missing = set(clip_table["clip_id"]) - stored - {s["clip_id"] for s in skipped}
        if missing:
            raise FeatureStoreError(f"cannot finalize {self.path.name}: {len(missing)} clips not computed")
        if not order:
            raise FeatureStoreError(f"feature set {self.path.name}: every clip was skipped "
                                    f"(first: {skipped[0]['path']}: {skipped[0]['reason']})")
        tmp = self.path.with_name(f".{self.path.stem}-{uuid.uuid4().hex[:8]}.h5.tmp")
        attrs = {**self.attrs, "skipped": skipped, "created": datetime.now(timezone.utc).isoformat(),
                 "versions": library_versions(), "n_clips": len(order), "dtype": self.dtype,
                 "format": STORE_FORMAT}
        # libver v108: HDF5 checksums the file's metadata (superblock, object headers, attributes) itself
        with h5py.File(tmp, "w", libver="v108") as f:
            checksums = {"features": _write_rows(f, sources, order, self.dtype)}
            checksums.update(_write_table(f, clip_table, order))
            stored = {k: v if isinstance(v, (str, int, float)) else _canonical_json(v) for k, v in attrs.items()}
            checksums["attrs"] = _attrs_checksum(stored)
            for key, value in {**stored, "checksums": _canonical_json(checksums)}.items():
                f.attrs[key] = value
        os.replace(tmp, self.path)
        self.discard()
        return FeatureSet(self.path)


def _read_json(path):
    """The JSON object in ``path``; {} when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _batch_problem(marker):
    """What is wrong with the stored batch of ``marker`` (its ``.json``), or None."""
    try:
        meta = json.loads(marker.read_text())
        values = np.load(marker.with_suffix(".npy"))
        n_ids = len(meta["clip_ids"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable batch ({_first_line(exc)})"
    if len(values) != n_ids or checksum(values) != meta.get("checksum"):
        return "the batch does not match its checksum (altered or damaged)"
    return None


def _write_rows(f, sources, order, dtype):
    """Write ``features`` of the rows ``order`` from ``sources`` ``[(clip_ids, values or .npy path)]``;
    its checksum.

    A batch's ``.npy`` file is memory-mapped only while it is copied, so that the pages read stay
    in the process's resident memory one batch at a time, not the whole set's.
    """
    position = {c: i for i, c in enumerate(order)}
    data = None
    for ids, values in sources:
        values = np.load(values, mmap_mode="r") if isinstance(values, Path) else values
        if data is None:
            data = f.create_dataset("features", shape=(len(order), *values.shape[1:]), dtype=dtype)
        rows = np.array([position[c] for c in ids])
        for start, stop, src in contiguous_runs(rows):
            data[start:stop] = values[src:src + stop - start]
        del values  # unmaps the batch
    return _checksum_rows(data)  # of what the file holds, read back


def _write_table(f, clip_table, order):
    """Write ``clip_ids``, ``clip_table`` (and ``source_ids``, ``copy_index``); their checksums."""
    arrays = {"clip_ids": np.array(order, dtype=object)}
    if "source_id" in clip_table:
        rows = clip_table.set_index("clip_id").loc[order]
        arrays["source_ids"] = rows["source_id"].to_numpy(dtype=object)
        arrays["copy_index"] = rows["copy"].to_numpy(dtype=np.int32)
    for name, values in arrays.items():
        f.create_dataset(name, data=values, dtype=h5py.string_dtype() if values.dtype == object else None)
    text = clip_table.to_json(orient="split", index=False)
    f.create_dataset("clip_table", data=text)
    return {**{name: checksum(values) for name, values in arrays.items()}, "clip_table": checksum(text)}


def may_pass(skip):
    """Whether a skipped clip's reason may pass (the file could not be read), so extraction retries it.

    Parameters
    ----------
    skip : dict
        An entry of :attr:`FeatureSet.skipped`.
    """
    return skip.get("reason_kind") == "transient"


def _atomic_write_text(path, text):
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


class FeatureStore:
    """The store under one root folder.

    The sets that :meth:`get` returns are kept, with their data once read, in a least-recently-used
    cache of this store object, so that reading a set again costs nothing. Sets are evicted, oldest
    use first, when the features they hold in memory exceed ``cache_bytes``; the cache is checked
    each time a set is opened, and the most recent set is always kept. A pickled store (sent to a
    worker process) leaves its cache behind.

    Parameters
    ----------
    root : str or pathlib.Path, optional
        Defaults to :func:`default_root`.
    cache_bytes : int, default=2 GiB
        Memory budget of the sets' features held by this store; 0 keeps only the last set opened.
    """

    def __init__(self, root=None, *, cache_bytes=2 * 2**30):
        self.root = Path(root).expanduser().resolve() if root is not None else default_root()
        if not features.is_int(cache_bytes) or cache_bytes < 0:
            raise ParameterError(f"cache_bytes={cache_bytes!r} must be an integer >= 0")
        self.cache_bytes = int(cache_bytes)
        self._open_sets = OrderedDict()  # (path, mtime_ns) -> FeatureSet, least recently used first

    def __getstate__(self):
        return {**self.__dict__, "_open_sets": OrderedDict()}

    def open(self, path):
        """The :class:`FeatureSet` at ``path``, from this store's cache when its file is unchanged.

        Parameters
        ----------
        path : str or pathlib.Path
            A complete set's ``.h5`` file.

        Returns
        -------
        FeatureSet
        """
        path = Path(path)
        key = (str(path), path.stat().st_mtime_ns) if path.is_file() else None
        fs = self._open_sets.pop(key, None) if key is not None else None
        if fs is None:
            fs = FeatureSet(path)  # raises FeatureStoreError when absent
        self._open_sets[key] = fs  # most recently used last
        self._evict()
        return fs

    def _evict(self):
        """Drop the least recently used sets while their loaded features exceed ``cache_bytes``."""
        total = sum(fs.loaded_bytes for fs in self._open_sets.values())
        while len(self._open_sets) > 1 and total > self.cache_bytes:
            _, oldest = self._open_sets.popitem(last=False)
            total -= oldest.loaded_bytes

    def __repr__(self):
        return f"FeatureStore({str(self.root)!r})"

    def dataset_dir(self, dataset):
        """Folder of ``dataset``'s feature sets."""
        return self.root / "features" / f"{dataset.name}-{dataset.identity[:10]}"

    def path_for(self, dataset, request, augment=None):
        """Where the feature set of ``request`` lives (whether or not it exists).

        Parameters
        ----------
        dataset : featurestore.Dataset
        request : featurestore.specs.FeatureRequest
        augment : featurestore.specs.AugmentSpec, optional
            Addresses the set of augmented copies of the main set's clips instead.
        """
        key = request.key
        suffix = f"-aug{augment.key(key)[:8]}" if augment is not None else ""
        return self.dataset_dir(dataset) / f"{request.kind}-{key[:12]}{suffix}.h5"

    def get(self, dataset, request, augment=None):
        """The complete :class:`FeatureSet` of ``request`` (see :meth:`path_for`), or None if not stored.

        Opening checks the file's structure and attributes (:class:`CorruptFeatureSetError` when
        damaged); its arrays are checked when read, or all at once by :meth:`FeatureSet.verify`.
        """
        path = self.path_for(dataset, request, augment)
        return self.open(path) if path.is_file() else None

    def writer(self, dataset, request, augment=None, base=None):
        """A :class:`FeatureSetWriter` for ``request`` (of augmented copies with ``augment``; see
        :meth:`path_for`).

        ``base``, the complete set of these parameters, is extended with its retried clips
        (see :class:`FeatureSetWriter`)."""
        key = request.key
        attrs = {"kind": request.kind, "params": request.params, "audio": request.audio, "dataset": dataset.name,
                 "dataset_options": dataset.options, "dataset_root": str(dataset.root),
                 "dataset_identity": dataset.identity, "key": key, "version": features.get(request.kind).VERSION}
        if augment is not None:
            attrs.update({"key": augment.key(key), "source_key": key, "augmentation": augment.settings(),
                          "augment_version": AUGMENT_VERSION})
        return FeatureSetWriter(self.path_for(dataset, request, augment), attrs, request.dtype, base)

    def entries(self):
        """Every feature set in the store, complete or partial.

        Listing opens each file but reads no data: a set whose data alone is altered shows as
        complete here and is found by :meth:`verify`.

        Returns
        -------
        list of dict
            ``path``, ``dataset``, ``kind``, ``status`` ("complete", "damaged" or "partial"),
            ``problem`` (why a set is damaged, else None), ``n_clips``, ``shape``, ``params``,
            ``augmentation`` (None for a main set), ``size_mb``, ``created``.
        """
        rows = []
        for path in sorted((self.root / "features").glob("*/*.h5")):
            size_mb = round(path.stat().st_size / 2**20, 1)
            try:
                fs = FeatureSet(path)
            except CorruptFeatureSetError as exc:
                rows.append({"path": str(path), "dataset": path.parent.name.rsplit("-", 1)[0],
                             "kind": path.stem.split("-", 1)[0], "status": "damaged", "problem": exc.problem,
                             "n_clips": 0, "shape": None, "params": {}, "augmentation": None,
                             "size_mb": size_mb, "created": ""})
                continue
            rows.append({"path": str(path), "dataset": fs.attrs["dataset"], "kind": fs.kind,
                         "status": "complete", "problem": None, "n_clips": len(fs), "shape": fs.feature_shape,
                         "params": fs.params, "augmentation": fs.augmentation, "size_mb": size_mb,
                         "created": fs.attrs.get("created", "")})
        for partial in sorted((self.root / "features").glob("*/*.partial")):
            attrs = _read_json(partial / "attrs.json")
            # an unreadable batch counts for nothing here; the next writer drops it (_drop_damaged_parts)
            n_done = sum(len(_read_json(m).get("clip_ids", [])) for m in partial.glob("part-*.json"))
            rows.append({"path": str(partial.with_suffix(".h5")), "dataset": attrs.get("dataset", "?"),
                         "kind": attrs.get("kind", "?"), "status": "partial", "problem": None, "n_clips": n_done,
                         "shape": None, "params": attrs.get("params", {}),
                         "augmentation": attrs.get("augmentation"),
                         "size_mb": round(sum(p.stat().st_size for p in partial.iterdir()) / 2**20, 1),
                         "created": ""})
        return rows

    def verify(self):
        """Read every complete feature set of the store and check it against its checksums.

        Returns
        -------
        list of dict
            ``{"path": str, "problem": str or None}`` per set, in :meth:`entries` order; ``problem``
            says what is wrong with a damaged set.
        """
        report = []
        for path in sorted((self.root / "features").glob("*/*.h5")):
            try:
                FeatureSet(path).verify()
                report.append({"path": str(path), "problem": None})
            except CorruptFeatureSetError as exc:
                report.append({"path": str(path), "problem": exc.problem})
        return report

    def remove(self, path):
        """Remove the feature set at ``path`` (its ``.h5``, partial batches and lock).

        Raises
        ------
        FeatureStoreError
            If ``path`` is not a feature set of this store, or a writer holds it.
        """
        path = Path(path).resolve()
        if path.suffix == ".partial":
            path = path.with_suffix(".h5")
        if self.root / "features" not in path.parents or path.suffix != ".h5":
            raise FeatureStoreError(f"{path} is not a feature set of the store at {self.root}")
        if not path.exists() and not path.with_suffix(".partial").exists():
            raise FeatureStoreError(f"no feature set at {path}")
        lock = FileLock(str(path.with_suffix(".lock")), timeout=0)
        try:
            with lock:
                path.unlink(missing_ok=True)
                shutil.rmtree(path.with_suffix(".partial"), ignore_errors=True)
        except Timeout:
            raise StoreLockedError(f"feature set {path.name} is being written; not removed") from None
        path.with_suffix(".lock").unlink(missing_ok=True)
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
