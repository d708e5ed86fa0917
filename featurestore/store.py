"""The feature store: feature sets in HDF5 under ``cache/``, keyed by their full parameters.

Layout under the store's root (``./cache`` by default, ``FEATURESTORE_CACHE`` or ``--cache DIR``)::

    features/<dataset>-<identity[:10]>/<kind>-<key[:12]>.h5       complete feature sets
    features/<dataset>-<identity[:10]>/<kind>-<key[:12]>.partial/  an extraction in progress
    features/<dataset>-<identity[:10]>/<kind>-<key[:12]>-aug<augkey[:8]>.h5   augmented copies
    datasets/                                                      built-in data sets' audio

A feature set is addressed by the data set's identity (its clip table, options and files' sizes and
times) and a stable hash of the feature kind, its version, its full parameters, the audio settings and
the storage dtype. Its HDF5 file holds ``features`` (n_clips, *feature_shape), ``clip_ids`` (n_clips,)
and ``clip_table`` (the JSON clip table it was computed for), with the parameters, library versions,
creation time and skipped clips as attributes.

Augmented copies of a set's clips (see :func:`featurestore.extraction.extract_augmented`) are a
feature set of their own, keyed by the main set's key, the augmentation's bounds, the number of copies
and the seed, so changing the augmentation never touches the main set. Its rows are named
``<clip_id>#aug<k>`` (k = 1 .. copies), and it records each row's source clip and copy number
explicitly (``source_ids`` and ``copy_index``; see :attr:`FeatureSet.sources`).

Crash safety: extraction writes batches into the ``.partial`` folder, each batch an ``.npy`` file of
features and then a ``.json`` file of its clip ids, each under a temporary name and renamed, so a
killed process leaves only whole batches and a rerun resumes from them. The ``.h5`` file appears, by
an atomic rename, only once every clip is computed: a partly written feature set is never read as
complete. A lock file beside it (``<kind>-<key>.lock``) keeps a second writer out; readers need no
lock and open the file themselves (worker processes too).
"""

import hashlib
import json
import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
from filelock import FileLock, Timeout

from featurestore import features
from featurestore.errors import FeatureStoreError, StoreLockedError

ENV_VAR = "FEATURESTORE_CACHE"
STORAGE_DTYPES = ("float32", "float16")
AUGMENT_VERSION = 1  # bump when featurestore.augment changes the copies it computes
_LIBRARIES = ("numpy", "scipy", "librosa", "soundfile", "soxr", "h5py")


def default_root():
    """The store's root: ``$FEATURESTORE_CACHE`` if set, else ``./cache``."""
    return Path(os.environ.get(ENV_VAR) or "cache").expanduser().resolve()


def feature_key(kind, params, audio, dtype="float32"):
    """Stable hash of everything that determines a feature set's values (hex str)."""
    payload = {"kind": kind, "version": features.get(kind).VERSION, "params": params, "audio": audio,
               "dtype": dtype}
    return hashlib.sha1(_canonical_json(payload).encode()).hexdigest()


def augment_key(source_key, augment):
    """Stable hash of an augmented-copies set: its main set's key, bounds, copies and seed (hex str).

    Parameters
    ----------
    source_key : str
        :func:`feature_key` of the main set.
    augment : dict
        ``{**WaveformAugmentation.params(), "copies": int, "seed": int}``.
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


def library_versions():
    """Versions of the libraries that compute features, recorded with every feature set."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class FeatureSet:
    """A complete feature set in the store, read-only.

    Reading loads the whole ``features`` array with one contiguous read (cached per process, keyed
    by the file's path and modification time) and indexes it in memory: h5py's fancy indexing over
    HDF5 data sets is orders of magnitude slower.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.h5`` file.
    """

    _cache = {}  # (path, mtime_ns) -> (clip_ids, index, features) for this process
    _cache_limit_bytes = 4 * 2**30
    _rows_cache = {}  # (path, mtime_ns) -> (source_ids, copy_index, {source: rows by copy})

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FeatureStoreError(f"feature set {self.path} does not exist")
        with h5py.File(self.path, "r") as f:
            self.attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
            self.shape = tuple(f["features"].shape)

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
        return self._load()[0]

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
        index = self._load()[1]
        return np.fromiter((c in index for c in clip_ids), dtype=bool, count=len(clip_ids))

    def index_of(self, clip_ids):
        """Row numbers of ``clip_ids``; KeyError naming the first id the set lacks."""
        index = self._load()[1]
        try:
            return np.fromiter((index[c] for c in clip_ids), dtype=np.intp, count=len(clip_ids))
        except KeyError as exc:
            raise KeyError(f"clip {exc.args[0]!r} is not in feature set {self.path} "
                           f"(skipped at extraction, or another data set)") from None

    def read(self, clip_ids=None):
        """Features of ``clip_ids`` (all clips in storage order when None).

        Returns
        -------
        X : np.ndarray [shape=(n, *feature_shape)], float32
        """
        data = self._load()[2]
        if clip_ids is None:
            return data.astype(np.float32)  # a copy: the cached array must stay untouched
        return data[self.index_of(list(clip_ids))].astype(np.float32, copy=False)

    def clip_table(self):
        """The clip table the set was computed for, as a DataFrame."""
        import pandas as pd

        with h5py.File(self.path, "r") as f:
            return pd.read_json(_StringIO(f["clip_table"][()].decode()), orient="split", dtype=False)

    def _rows(self):
        key = (str(self.path), self.path.stat().st_mtime_ns)
        cached = FeatureSet._rows_cache.get(key)
        if cached is None:
            with h5py.File(self.path, "r") as f:
                if "source_ids" in f:
                    sources = f["source_ids"].asstr()[...]
                    copy_index = f["copy_index"][...].astype(np.int64)
                else:
                    sources = f["clip_ids"].asstr()[...]
                    copy_index = np.zeros(len(sources), dtype=np.int64)
            order = np.lexsort((copy_index, sources))  # rows grouped by source, then by copy
            by_source = {}
            if len(order):
                breaks = np.flatnonzero(sources[order][1:] != sources[order][:-1]) + 1
                for chunk in np.split(order, breaks):
                    by_source[sources[chunk[0]]] = chunk
            cached = (sources, copy_index, by_source)
            if len(FeatureSet._rows_cache) > 64:
                FeatureSet._rows_cache.clear()
            FeatureSet._rows_cache[key] = cached
        return cached

    def _load(self):
        key = (str(self.path), self.path.stat().st_mtime_ns)
        cached = FeatureSet._cache.get(key)
        if cached is None:
            with h5py.File(self.path, "r") as f:
                ids = f["clip_ids"].asstr()[...]
                data = f["features"][...]
            cached = (ids, {c: i for i, c in enumerate(ids)}, data)
            self._remember(key, cached)
        return cached

    @classmethod
    def _remember(cls, key, entry):
        total = sum(e[2].nbytes for e in cls._cache.values())
        while cls._cache and total + entry[2].nbytes > cls._cache_limit_bytes:
            oldest = next(iter(cls._cache))
            total -= cls._cache.pop(oldest)[2].nbytes
        cls._cache[key] = entry


def _StringIO(text):
    import io

    return io.StringIO(text)


def _decode_attr(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


class FeatureSetWriter:
    """Writes one feature set batch by batch; resumable; one writer at a time.

    Use as a context manager (it holds the lock). ``done`` tells which clips are already stored,
    ``write_batch`` stores a batch atomically and ``finalize`` assembles the ``.h5`` file.

    Parameters
    ----------
    path : pathlib.Path
        The final ``.h5`` path.
    attrs : dict
        Attributes to record (kind, params, audio, dataset, ...), JSON-serialisable.
    dtype : {"float32", "float16"}
        Storage dtype.
    """

    def __init__(self, path, attrs, dtype="float32"):
        self.path = Path(path)
        self.partial = self.path.with_suffix(".partial")
        self.attrs = attrs
        self.dtype = dtype
        self._lock = FileLock(str(self.path.with_suffix(".lock")), timeout=0)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"another process is writing feature set {self.path.name} in {self.path.parent} "
                f"(lock {self._lock.lock_file}); wait for it to finish or stop it") from None
        self.partial.mkdir(exist_ok=True)
        meta = self.partial / "attrs.json"
        if not meta.exists():
            _atomic_write_text(meta, _canonical_json(self.attrs))
        return self

    def __exit__(self, *exc_info):
        self._lock.release()
        return False

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

    def done(self):
        """Ids of the clips already stored or skipped in earlier batches: set of str."""
        done = set()
        for clip_ids, skipped, _ in self._parts():
            done.update(clip_ids)
            done.update(s["clip_id"] for s in skipped)
        return done

    def write_batch(self, clip_ids, values, skipped=()):
        """Store one batch atomically.

        Parameters
        ----------
        clip_ids : sequence of str, length n
        values : np.ndarray [shape=(n, *feature_shape)]
        skipped : sequence of dict
            Clips of this batch left out: ``{"clip_id", "path", "reason"}``.
        """
        values = np.asarray(values, dtype=self.dtype)
        if len(values) != len(clip_ids):
            raise ValueError(f"{len(clip_ids)} clip ids but {len(values)} feature rows")
        stem = self.partial / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = self.partial / f".tmp-{uuid.uuid4().hex}.npy"
        np.save(tmp, values)
        os.replace(tmp, stem.with_suffix(".npy"))
        _atomic_write_text(stem.with_suffix(".json"),
                           json.dumps({"clip_ids": list(map(str, clip_ids)), "skipped": list(skipped)}))

    def finalize(self, clip_table):
        """Assemble the parts into the ``.h5`` file, in the clip table's order, and drop the parts.

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
        stored = {clip for clip_ids, _, _ in parts for clip in clip_ids}
        skipped = [s for _, batch_skipped, _ in parts for s in batch_skipped]
        feature_shape = next((np.load(npy, mmap_mode="r").shape[1:] for ids, _, npy in parts if ids), None)
        order = [c for c in clip_table["clip_id"] if c in stored]
        missing = set(clip_table["clip_id"]) - set(stored) - {s["clip_id"] for s in skipped}
        if missing:
            raise FeatureStoreError(f"cannot finalize {self.path.name}: {len(missing)} clips not computed")
        if not order:
            raise FeatureStoreError(f"feature set {self.path.name}: every clip was skipped "
                                    f"(first: {skipped[0]['path']}: {skipped[0]['reason']})")
        position = {c: i for i, c in enumerate(order)}
        tmp = self.path.with_name(f".{self.path.stem}-{uuid.uuid4().hex[:8]}.h5.tmp")
        attrs = {**self.attrs, "skipped": skipped, "created": datetime.now(timezone.utc).isoformat(),
                 "versions": library_versions(), "n_clips": len(order), "dtype": self.dtype}
        with h5py.File(tmp, "w") as f:
            data = f.create_dataset("features", shape=(len(order), *feature_shape), dtype=self.dtype)
            for ids, _, npy in parts:
                if not ids:
                    continue
                values = np.load(npy, mmap_mode="r")
                rows = np.array([position[c] for c in ids])
                for start, stop, src in _runs(rows):
                    data[start:stop] = values[src:src + stop - start]
            f.create_dataset("clip_ids", data=np.array(order, dtype=object), dtype=h5py.string_dtype())
            if "source_id" in clip_table:
                rows = clip_table.set_index("clip_id").loc[order]
                f.create_dataset("source_ids", data=rows["source_id"].to_numpy(dtype=object),
                                 dtype=h5py.string_dtype())
                f.create_dataset("copy_index", data=rows["copy"].to_numpy(dtype=np.int32))
            f.create_dataset("clip_table", data=clip_table.to_json(orient="split", index=False))
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (str, int, float)) else _canonical_json(value)
        os.replace(tmp, self.path)
        shutil.rmtree(self.partial)
        return FeatureSet(self.path)


def _runs(rows):
    """Split destination rows into contiguous runs: yields (start, stop, source_offset)."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i] != rows[i - 1] + 1:
            yield int(rows[start]), int(rows[i - 1]) + 1, start
            start = i


def _atomic_write_text(path, text):
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


class FeatureStore:
    """The store under one root folder.

    Parameters
    ----------
    root : str or pathlib.Path, optional
        Defaults to :func:`default_root`.
    """

    def __init__(self, root=None):
        self.root = Path(root).expanduser().resolve() if root is not None else default_root()

    def __repr__(self):
        return f"FeatureStore({str(self.root)!r})"

    def dataset_dir(self, dataset):
        """Folder of ``dataset``'s feature sets."""
        return self.root / "features" / f"{dataset.name}-{dataset.identity[:10]}"

    def path_for(self, dataset, kind, params, audio, dtype="float32", augment=None):
        """Where the feature set of these parameters lives (whether or not it exists).

        ``augment`` (``{**WaveformAugmentation.params(), "copies", "seed"}``) addresses the set of
        augmented copies of the main set's clips instead.
        """
        key = feature_key(kind, params, audio, dtype)
        suffix = f"-aug{augment_key(key, augment)[:8]}" if augment is not None else ""
        return self.dataset_dir(dataset) / f"{kind}-{key[:12]}{suffix}.h5"

    def get(self, dataset, kind, params, audio, dtype="float32", augment=None):
        """The complete :class:`FeatureSet` of these parameters, or None if not stored."""
        path = self.path_for(dataset, kind, params, audio, dtype, augment)
        return FeatureSet(path) if path.is_file() else None

    def writer(self, dataset, kind, params, audio, dtype="float32", augment=None):
        """A :class:`FeatureSetWriter` for these parameters (of augmented copies with ``augment``)."""
        key = feature_key(kind, params, audio, dtype)
        attrs = {"kind": kind, "params": params, "audio": audio, "dataset": dataset.name,
                 "dataset_options": dataset.options, "dataset_root": str(dataset.root),
                 "dataset_identity": dataset.identity, "key": key, "version": features.get(kind).VERSION}
        if augment is not None:
            attrs.update({"key": augment_key(key, augment), "source_key": key, "augmentation": augment,
                          "augment_version": AUGMENT_VERSION})
        return FeatureSetWriter(self.path_for(dataset, kind, params, audio, dtype, augment), attrs, dtype)

    def entries(self):
        """Every feature set in the store, complete or partial.

        Returns
        -------
        list of dict
            ``path``, ``dataset``, ``kind``, ``status`` ("complete" or "partial"), ``n_clips``,
            ``shape``, ``params``, ``augmentation`` (None for a main set), ``size_mb``, ``created``.
        """
        rows = []
        for path in sorted((self.root / "features").glob("*/*.h5")):
            fs = FeatureSet(path)
            rows.append({"path": str(path), "dataset": fs.attrs["dataset"], "kind": fs.kind,
                         "status": "complete", "n_clips": len(fs), "shape": fs.feature_shape,
                         "params": fs.params, "augmentation": fs.augmentation,
                         "size_mb": round(path.stat().st_size / 2**20, 1),
                         "created": fs.attrs.get("created", "")})
        for partial in sorted((self.root / "features").glob("*/*.partial")):
            meta = partial / "attrs.json"
            attrs = json.loads(meta.read_text()) if meta.exists() else {}
            n_done = sum(len(json.loads(m.read_text())["clip_ids"]) for m in partial.glob("part-*.json"))
            rows.append({"path": str(partial.with_suffix(".h5")), "dataset": attrs.get("dataset", "?"),
                         "kind": attrs.get("kind", "?"), "status": "partial", "n_clips": n_done,
                         "shape": None, "params": attrs.get("params", {}),
                         "augmentation": attrs.get("augmentation"),
                         "size_mb": round(sum(p.stat().st_size for p in partial.iterdir()) / 2**20, 1),
                         "created": ""})
        return rows

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
