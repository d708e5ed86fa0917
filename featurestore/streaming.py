"""Feature sets larger than memory: the memory budget, rows read on demand, background prefetch.

A process holds a feature set's features whole only while they fit its memory budget
(:func:`memory_budget`); past it, :class:`~featurestore.store.FeatureSet` reads the rows asked for,
as sorted contiguous runs of the file, and an experiment's ``FeatureLoader`` hands its estimator a
:class:`StoredRows` (the rows of a fold, read on demand) instead of an array. Torch nets train
from it batch by batch (``estimators/_stream_data.py``); the summaries of classical models
(``features="stats"``) are computed batch by batch; a model that needs the whole matrix gets a
:class:`~featurestore.errors.MemoryBudgetError` naming the size and the budget.

The budget is ``FEATURESTORE_MEMORY_BUDGET`` (bytes, or ``"512M"``, ``"4G"``...), else a quarter of
the machine's physical memory, or of a Dask worker's ``memory_limit`` inside a worker. The total,
not the free memory, so that the same machine always takes the same path: whether a net's fit
streams decides the order of its training batches (see ``estimators/_stream_data.py``).

This module needs numpy only.
"""

import os
import queue
import re
import sys
import threading

import numpy as np

from featurestore.errors import MemoryBudgetError, ParameterError

ENV_VAR = "FEATURESTORE_MEMORY_BUDGET"
#: Share of the machine's memory (or of a Dask worker's limit) that one process's features may take.
DEFAULT_FRACTION = 0.25
#: Bytes of features per batch of :meth:`StoredRows.iter_batches` when no batch size is given.
BLOCK_BYTES = 64 * 2**20
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(value, *, name=ENV_VAR):
    """A number of bytes from an int or a text such as ``"512M"``, ``"4G"``, ``"1.5GiB"`` (binary units).

    Raises
    ------
    ParameterError
        Naming ``name`` and the value when it is not a positive size.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*", str(value), flags=re.IGNORECASE)
    size = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else 0
    if not size >= 1:
        raise ParameterError(f"{name}={value!r} must be a positive number of bytes, such as 536870912, 512M or 4G")
    return int(size)


def memory_budget(budget=None):
    """Bytes of features that one process may hold whole (see the module docstring).

    Parameters
    ----------
    budget : int or str, optional
        Wins over the environment and the default.

    Returns
    -------
    int
    """
    if budget is not None:
        return parse_bytes(budget, name="memory_budget")
    if os.environ.get(ENV_VAR):
        return parse_bytes(os.environ[ENV_VAR])
    return int(DEFAULT_FRACTION * _memory_limit())


def _memory_limit():
    """The memory this process may use: a Dask worker's ``memory_limit``, else the machine's memory."""
    if "distributed" in sys.modules:  # never import Dask just to ask
        try:
            limit = sys.modules["distributed"].get_worker().memory_manager.memory_limit
        except (ValueError, AttributeError):  # not inside a worker
            limit = None
        if limit:
            return int(limit)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        return 8 * 2**30


def format_bytes(n):
    """``n`` bytes in binary units, e.g. ``"6.4 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def contiguous_runs(rows):
    """Split a sequence of row numbers into runs of consecutive ascending rows.

    Parameters
    ----------
    rows : sequence of int [shape=(n,)]

    Yields
    ------
    start, stop, offset : int
        Rows ``start:stop`` are ``rows[offset:offset + stop - start]``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for first, last in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
        yield int(rows[first]), int(rows[last - 1]) + 1, int(first)


def prefetch(items, depth=2):
    """Iterate ``items`` with a background thread running ``depth`` items ahead.

    The thread computes the next items (reading HDF5, converting) while the caller works on this
    one; numpy, h5py's reads and torch release the GIL for their work. An exception of the thread
    is raised in the caller; a caller that stops early stops the thread.

    Parameters
    ----------
    items : iterable
        Consumed in the background thread only.
    depth : int >= 1
        Items computed ahead (each held in memory until taken).

    Yields
    ------
    The items of ``items``, in order.
    """
    done, stop = object(), threading.Event()
    buffer = queue.Queue(maxsize=depth)

    def put(item):
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put((None, exc))

    thread = threading.Thread(target=produce, name="featurestore-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class StoredRows:
    """Rows of a stored feature set, read on demand: an estimator's ``X`` larger than memory.

    What :class:`~pipelines.loader.FeatureLoader` gives instead of an array when the rows of a
    fold exceed the memory budget. It has an array's ``shape``, ``ndim``, ``dtype`` and ``len``;
    torch nets and the summarising reshape of classical models read it batch by batch; turning
    it into an array (``np.asarray``, which scikit-learn's input checks do) reads every row,
    and raises :class:`~featurestore.errors.MemoryBudgetError` when they exceed the budget.

    Parameters
    ----------
    feature_set : featurestore.store.FeatureSet
    rows : array-like of int [shape=(n,)]
        Row numbers of the set, in the order of ``X``.
    transform : callable, optional
        Applied to every batch read, ``(b, *feature_shape)`` float32 to the estimator's input
        layout (e.g. ``functools.partial(adapt_input, layout="image")``); picklable, so that the
        rows can be sent to a worker process.
    memory_budget : int or str, optional
        See :func:`memory_budget`.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from featurestore import FeatureStore, extract, load_dataset
    >>> from featurestore.datasets import demo
    >>> root = tempfile.mkdtemp()
    >>> _ = demo.generate(f"{root}/demo", clips_per_class=5)
    >>> ds = load_dataset("demo", f"{root}/demo")
    >>> fs = extract(ds, {"mfcc": {}}, store=FeatureStore(f"{root}/cache"), progress=False)["mfcc"]
    >>> X = StoredRows(fs, fs.index_of(ds.clips["clip_id"][:10]))
    >>> X.shape, [b.shape[0] for b in X.iter_batches(4)]
    ((10, 40, 87), [4, 4, 2])
    >>> shutil.rmtree(root)
    """

    dtype = np.dtype(np.float32)

    def __init__(self, feature_set, rows, *, transform=None, memory_budget=None):
        self.feature_set = feature_set
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self.transform = transform
        self.memory_budget = memory_budget
        example = self._apply(np.zeros((1, *feature_set.feature_shape), np.float32))
        self.shape = (len(self.rows), *example.shape[1:])

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nbytes(self):
        """Bytes of all the rows as float32 arrays in the estimator's layout."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def row_bytes(self):
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"StoredRows({len(self)} rows of {self.feature_set.path.name}, shape {self.shape})"

    def _apply(self, values):
        return values if self.transform is None else self.transform(values)

    def read(self, positions=None):
        """The rows at ``positions`` of ``X`` (all when None), in that order.

        Returns
        -------
        np.ndarray [shape=(n, *shape[1:])], float32
        """
        rows = self.rows if positions is None else self.rows[np.asarray(positions, dtype=np.int64)]
        return np.asarray(self._apply(self.feature_set.read_at(rows)), dtype=np.float32)

    def __getitem__(self, key):
        """``X[key]``: one row (an int) as an array; the rows of a slice, a boolean mask or an array of
        positions as :class:`StoredRows` (so that scikit-learn's splitters and searches can index it)."""
        if isinstance(key, (int, np.integer)):
            return self.read([key])[0]
        return self.subset(np.arange(len(self))[key])

    def subset(self, positions):
        """The rows at ``positions`` of ``X``, still read on demand: a :class:`StoredRows`."""
        return StoredRows(self.feature_set, self.rows[np.asarray(positions, dtype=np.int64)],
                          transform=self.transform, memory_budget=self.memory_budget)

    def batch_rows(self, batch_size=None):
        """Rows per batch of :meth:`iter_batches`: ``batch_size``, or as many as fill 64 MiB."""
        if batch_size is None:
            return max(1, BLOCK_BYTES // max(1, self.row_bytes))
        if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
            raise ParameterError(f"batch_size={batch_size!r} must be a positive integer")
        return int(batch_size)

    def iter_batches(self, batch_size=None, *, prefetch_depth=2):
        """The rows in order, ``batch_size`` at a time (as many as fill 64 MiB when None), each
        read by sorted contiguous runs while the caller works on the previous one.

        Yields
        ------
        np.ndarray [shape=(<= batch_size, *shape[1:])], float32
        """
        step = self.batch_rows(batch_size)
        batches = (self.read(np.arange(start, min(start + step, len(self))))
                   for start in range(0, len(self), step))
        return prefetch(batches, prefetch_depth)

    def check_budget(self, what="An array of StoredRows"):
        """Raise :class:`MemoryBudgetError` unless all the rows fit the memory budget at once."""
        budget = memory_budget(self.memory_budget)
        if self.nbytes > budget:
            raise MemoryBudgetError(
                f"{what} needs the whole matrix in memory: {len(self)} rows of {self.feature_set.path.name} "
                f"of shape {self.shape[1:]} take {format_bytes(self.nbytes)} as float32, more than the memory "
                f"budget of {format_bytes(budget)} ({ENV_VAR}, default a quarter of the machine's memory). "
                "Raise the budget, use a summarising reshape (features='stats' or 'summary'), or a torch "
                "net, which trains batch by batch")

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("StoredRows are read from the store: an array of them is always a copy")
        self.check_budget()
        values = self.read()
        return values if dtype is None else values.astype(dtype, copy=False)
