"""Torch nets trained from rows read on demand from the store: bounded memory, whatever the set's size.

When an experiment's rows exceed the memory budget, :class:`~pipelines.loader.FeatureLoader` gives
the net a :class:`~featurestore.streaming.StoredRows` instead of an array.
:class:`~estimators._torch.TorchClassifier` then

- validates it and computes the standardisation statistics in one streamed pass over the
  training rows (:func:`check_stored`; Chan et al.'s pairwise update, in float64, in batches of
  a quarter of ``BUFFER_BYTES``);
- wraps it in a :class:`StreamDataset`, which skorch's validation split, ``predict_proba`` and
  temperature scaling use as any dataset (``Subset`` s of it included);
- iterates it with a :class:`BatchStream` instead of a ``DataLoader``: training batches come in
  a chunk-aware shuffled order, read by a background thread ``PREFETCH`` batches ahead.

Chunk-aware shuffling: the rows, in storage order, are cut into chunks of about ``CHUNK_BYTES``
of consecutive stored rows; the chunks are shuffled; consecutive shuffled chunks fill a buffer of
about ``BUFFER_BYTES``, read by sorted contiguous runs, whose rows are shuffled and cut into
batches (the rows left over join the next buffer). Reads are large and sequential, as HDF5 (and a
shared filesystem) wants, and memory is a buffer, its leftovers and the prefetched batches. The
order is drawn from torch's generator, as ``RandomSampler``'s is (two draws per epoch, the
number a shuffled ``DataLoader`` takes), so the net's ``random_state`` makes it repeatable.

It is not the order of an in-memory fit (a random permutation of all rows), so a streamed fit
and an in-memory fit of the same data differ as two shuffles do; with one batch per epoch
(``batch_size`` at least the training rows) and no random draw of its own per row (no dropout,
``crop`` or batch augmentation) they are the same fit up to float rounding.
Crops and batch augmentation apply to streamed batches as to any others.
"""

import math

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from featurestore.streaming import StoredRows, prefetch

#: Bytes of consecutive stored rows shuffled as one chunk.
CHUNK_BYTES = 2**20
#: Bytes of rows shuffled together (the shuffle buffer).
BUFFER_BYTES = 64 * 2**20
#: Batches read ahead by the background thread.
PREFETCH = 2


def is_stored(X):
    """Whether ``X`` is read on demand from the store (:class:`StoredRows`)."""
    return isinstance(X, StoredRows)


def materialise(X, what):
    """``X`` as an array: read whole when it is :class:`StoredRows` within the memory budget.

    For estimators that need every row at once (``what`` names them in the error).

    Raises
    ------
    MemoryBudgetError
        Naming the size of the rows and the budget, when they exceed it.
    """
    if not is_stored(X):
        return X
    X.check_budget(what)
    return X.read()


class StreamDataset(Dataset):
    """A net's training or prediction rows read on demand: :class:`StoredRows`, standardised.

    Parameters
    ----------
    X : featurestore.streaming.StoredRows
        ``(n, *sample_shape)`` in the net's layout.
    y : np.ndarray [shape=(n,)], int64, optional
        Class indices.
    mean, std : np.ndarray or None
        Standardisation, broadcastable against a batch (``TorchClassifier.input_mean_``).
    add_channel : bool
        Give 3-D images their channel axis: ``(b, H, W)`` becomes ``(b, 1, H, W)``.
    """

    def __init__(self, X, y=None, *, mean=None, std=None, add_channel=False):
        self.X, self.y = X, None if y is None else np.asarray(y)
        self.mean, self.std, self.add_channel = mean, std, add_channel
        self.shape = (len(X), *((1,) if add_channel else ()), *X.shape[1:])

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def with_targets(self, y):
        """This dataset with targets ``y`` (itself when ``y`` is None)."""
        if y is None:
            return self
        return StreamDataset(self.X, y, mean=self.mean, std=self.std, add_channel=self.add_channel)

    def subset(self, positions):
        """The rows at ``positions``: a :class:`StreamDataset`."""
        positions = np.asarray(positions, dtype=np.int64)
        return StreamDataset(self.X.subset(positions), None if self.y is None else self.y[positions],
                             mean=self.mean, std=self.std, add_channel=self.add_channel)

    def prepare(self, values):
        """A batch as read, ``(b, *X.shape[1:])``, as the net takes it: channel axis, standardised.

        Raises
        ------
        ValueError
            When a row holds NaN or infinity: every batch is checked, at prediction too (the fit's
            streamed statistics checked its training rows only), as ``_check_X`` checks an array.
        """
        finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not finite.all():
            raise ValueError(f"NaN or infinite values in {np.count_nonzero(~finite)} of the {len(values)} "
                             f"rows of a batch read from {self.X.feature_set.path}")
        if self.add_channel:
            values = values[:, np.newaxis]
        if self.mean is not None:
            values = (values - self.mean) / self.std
        return np.ascontiguousarray(values, dtype=np.float32)

    def batch(self, positions, values=None):
        """``(X, y)`` tensors of the rows at ``positions`` (``values``: their rows, already read).

        ``y`` is a tensor of zeros when the dataset has no targets (prediction), as skorch's is.
        """
        positions = np.asarray(positions, dtype=np.int64)
        values = self.X.read(positions) if values is None else values
        Xb = torch.from_numpy(self.prepare(values))
        yb = torch.zeros(len(positions), dtype=torch.int64) if self.y is None else torch.from_numpy(
            self.y[positions].astype(np.int64))
        return Xb, yb

    def __getitem__(self, i):
        Xb, yb = self.batch([i])
        return Xb[0], yb[0]


def unwrap(dataset):
    """The :class:`StreamDataset` that ``dataset`` is, or is a (nested) ``Subset`` of; else None."""
    positions = None
    while isinstance(dataset, Subset):
        indices = np.asarray(dataset.indices, dtype=np.int64)
        positions = indices if positions is None else indices[positions]
        dataset = dataset.dataset
    if not isinstance(dataset, StreamDataset):
        return None
    return dataset if positions is None else dataset.subset(positions)


def check_stored(net, X, *, reset):
    """``X`` (:class:`StoredRows`) validated for ``net``, as ``TorchClassifier._check_X`` does arrays.

    With ``reset``, sets ``n_features_in_``, ``input_shape_`` and the standardisation statistics,
    computed (and every value checked finite) in one streamed pass over ``X``.

    Returns
    -------
    StreamDataset
    """
    n_features = X.shape[1] if X.ndim > 1 else None
    kinds = net._input_kinds()
    add_channel = False
    if kinds:
        from estimators._torch import INPUT_KINDS

        if not any(X.ndim in INPUT_KINDS[kind][0] for kind in kinds):
            raise ValueError(net._shape_error(X.shape, kinds))
        add_channel = "image" in kinds and X.ndim == 3
    elif X.ndim < 2:
        raise ValueError(f"{net._net_name()} expects an array of samples; got shape {X.shape}")
    dataset = StreamDataset(X, add_channel=add_channel)
    if reset:
        net.n_features_in_ = n_features
        net.input_shape_ = tuple(dataset.shape[1:])
        net.input_mean_, net.input_std_ = streamed_statistics(dataset, net._net_name(), net.standardize)
    dataset.mean = getattr(net, "input_mean_", None)
    dataset.std = getattr(net, "input_std_", None) if dataset.mean is not None else None
    return dataset


def streamed_statistics(dataset, name, standardize=True):
    """Mean and standard deviation of a :class:`StreamDataset`'s rows, as ``_input_statistics``
    computes them on an array (over all axes but the channel or feature one), in one streamed pass
    that also checks that every value is finite.

    Returns
    -------
    mean, std : np.ndarray, float32, or None, None without ``standardize``

    Raises
    ------
    ValueError
        Naming how many rows hold NaN or infinity.
    """
    ndim = dataset.ndim
    axes = {4: (0, 2, 3), 3: (0, 1)}.get(ndim, tuple(range(ndim)))
    X = dataset.X.subset(np.argsort(dataset.X.rows, kind="stable"))  # storage order: long runs
    count, mean, m2, bad = 0, 0.0, 0.0, 0
    for values in X.iter_batches(max(1, BUFFER_BYTES // 4 // max(1, X.row_bytes))):
        values = values[:, np.newaxis] if dataset.add_channel else values
        finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        bad += int(np.count_nonzero(~finite))
        if bad or not standardize:
            continue
        n = int(np.prod([values.shape[a] for a in axes]))  # values per statistic in this batch
        batch_mean = values.mean(axis=axes, keepdims=True, dtype=np.float64)
        batch_m2 = np.square(values - batch_mean, dtype=np.float64).sum(axis=axes, keepdims=True)
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + batch_m2 + delta**2 * (count * n / total)
        count = total
    if bad:
        raise ValueError(f"{name} does not accept NaN or infinite values in X; {bad} of {len(X)} samples have some")
    if not standardize:
        return None, None
    std = np.sqrt(m2 / count)
    return np.asarray(mean, dtype=np.float32), np.maximum(std, 1e-6).astype(np.float32)


class BatchStream:
    """Batches of a :class:`StreamDataset`, read by a background thread: what ``get_iterator``
    gives for one (see the module docstring for the training order).

    Parameters
    ----------
    dataset : StreamDataset
    batch_size : int
    shuffle : bool
        Chunk-aware shuffled order (training); else the rows in order.
    drop_last : bool
        Leave out a last batch smaller than ``batch_size``.
    sampler : torch.utils.data.Sampler, optional
        Row positions to draw instead (``balanced_batches``): read batch by batch, in its order.
    """

    def __init__(self, dataset, batch_size, *, shuffle=False, drop_last=False, sampler=None):
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last, self.sampler = shuffle, drop_last, sampler
        self.chunk_rows = max(1, CHUNK_BYTES // max(1, dataset.X.row_bytes))
        self.buffer_rows = max(self.batch_size, BUFFER_BYTES // max(1, dataset.X.row_bytes))

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # as a DataLoader does: its base seed, then (shuffled) the RandomSampler's seed
        torch.empty((), dtype=torch.int64).random_()
        if self.sampler is not None:
            positions = np.fromiter(iter(self.sampler), dtype=np.int64)
            batches = self._in_order(positions)
        elif self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item()) % 2**63
            batches = self._shuffled(np.random.default_rng(seed))
        else:
            batches = self._in_order(np.arange(len(self.dataset)))
        return prefetch(batches, PREFETCH)

    def _in_order(self, positions):
        stop = len(self) * self.batch_size if self.drop_last else len(positions)
        for start in range(0, stop, self.batch_size):
            yield self.dataset.batch(positions[start:min(start + self.batch_size, stop)])

    def chunks(self):
        """Positions of the rows in chunks of consecutive stored rows: list of arrays."""
        by_storage = np.argsort(self.dataset.X.rows, kind="stable")
        chunk = self.dataset.X.rows[by_storage] // self.chunk_rows
        return np.split(by_storage, np.flatnonzero(np.diff(chunk)) + 1)

    def _shuffled(self, rng):
        chunks = self.chunks()
        order = rng.permutation(len(chunks))
        windows, current, size = [], [], 0
        for c in order:
            current.append(chunks[c])
            size += len(chunks[c])
            if size >= self.buffer_rows:
                windows.append(np.concatenate(current))
                current, size = [], 0
        if current:
            windows.append(np.concatenate(current))
        sample_shape = self.dataset.X.shape[1:]
        carry_positions = np.empty(0, dtype=np.int64)
        carry_values = np.empty((0, *sample_shape), dtype=np.float32)
        for window in windows:
            positions = np.concatenate([carry_positions, window])
            values = np.concatenate([carry_values, self.dataset.X.read(window)])
            perm = rng.permutation(len(positions))
            full = len(perm) // self.batch_size * self.batch_size
            for start in range(0, full, self.batch_size):
                take = perm[start:start + self.batch_size]
                yield self.dataset.batch(positions[take], values[take])
            carry_positions, carry_values = positions[perm[full:]], values[perm[full:]]
        if len(carry_positions) and not self.drop_last:
            yield self.dataset.batch(carry_positions, carry_values)
