"""Helpers of the feature kinds computed by pretrained networks (``panns``, ``ast``).

Private (the leading underscore keeps it out of the registry); nothing is downloaded: every
network is read from a file or folder the user gives.

Identity of a checkpoint
------------------------
A kind names its checkpoint by a path parameter (listed in its ``FILE_PARAMS``), but the store
keys the feature set on the checkpoint's content: :func:`checkpoint_digest`, the SHA-256 of the
file (of every file of a folder, with their relative names). A changed file therefore gives a new
feature set, and a moved or copied one reuses the stored set. Digests are cached per process on
the file's path, size, modification time and inode, so the 300 MB of a CNN14 checkpoint are hashed
once per process (about 1 s).

Reproducibility
---------------
Each clip goes through the network on its own (a batch of one, with shapes that depend on the clip
alone), in evaluation mode (no dropout, batch normalisation with its running statistics) under
``torch.inference_mode``, so a clip's embedding does not depend on the batch around it, and on one
torch thread (:func:`one_torch_thread`), so it does not depend on the machine's core count or on
threads computing beside it. Across CPUs, oneDNN and MKL pick kernels by instruction set, so
embeddings agree to float32 rounding but are not promised bit for bit (unlike ``raw``, ``stft``,
``mel`` ...).
"""

import hashlib
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from featurestore.errors import ParameterError

#: Bytes read at a time while hashing.
_BLOCK = 1 << 22


def _identity(path):
    """What the digest cache is keyed on: the resolved path, size, mtime and inode of every file."""
    path = Path(path).resolve()
    # hidden entries (the Hub's .cache/ of download metadata, .git/) are not the checkpoint's content
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(path).parts)) if path.is_dir() else [path]
    return tuple((str(f.relative_to(path)) if path.is_dir() else "", f.stat().st_size, f.stat().st_mtime_ns,
                  f.stat().st_ino) for f in files), str(path)


def check_path(name, value, *, folder=False):
    """``value`` as a :class:`Path` to an existing file (a folder when ``folder``), or ParameterError.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : str or os.PathLike or None
    folder : bool or None
        Whether a folder is expected instead of a file; None accepts either.
    """
    what = {True: "folder", False: "file", None: "file or folder"}[folder]
    if value is None:
        raise ParameterError(f"{name}=None: give the path of the publisher's checkpoint {what} "
                             f"(nothing is downloaded; see docs/tutorials/transfer.md)")
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterError(f"{name}={value!r} must be the path of a checkpoint {what}")
    path = Path(value).expanduser()
    if not (path.is_dir() if folder else path.is_file() if folder is False else path.exists()):
        raise ParameterError(f"{name}={str(value)!r}: no such {what}")
    return path


def checkpoint_digest(path):
    """SHA-256 (hex str) of a checkpoint file, or of a folder's files and their relative names.

    A folder's hidden files and folders (names starting with ".", such as the Hugging Face Hub's
    ``.cache/`` of download metadata) are left out.

    Cached per process on the files' resolved path, size, modification time and inode.

    Parameters
    ----------
    path : str or os.PathLike
        An existing file or folder.

    Returns
    -------
    digest : str
        64 hexadecimal characters.
    """
    return _digest(_identity(path))


@lru_cache(maxsize=64)
def _digest(identity):
    entries, root = identity
    h = hashlib.sha256()
    for relative, *_ in entries:
        f = Path(root, relative) if relative else Path(root)
        if relative:  # a folder: its files' names are part of its content
            h.update(relative.encode() + b"\0")
        with open(f, "rb") as stream:
            while block := stream.read(_BLOCK):
                h.update(block)
    return h.hexdigest()


def resample_clip(y, sr, target_sr):
    """One clip ``y`` [shape=(n,)] at ``sr`` resampled to the network's ``target_sr`` (soxr HQ).

    The same resampler as the audio loading (:func:`featurestore.audio.resample`), so a data set
    decoded at the network's rate (``--set audio.sr=32000``) gives the same samples as one
    resampled here.
    """
    from featurestore.audio import resample

    if float(sr) == float(target_sr):
        return y
    # soxr wants integral rates as ints for its exact ratio; sr is a checked positive number
    return resample(np.ascontiguousarray(y), int(sr) if float(sr).is_integer() else float(sr), target_sr)


def embed_clips(y, embed_one, size):
    """``embed_one`` applied to each clip of ``y`` under ``torch.inference_mode``, stacked.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], float32
    embed_one : callable
        Maps one clip [shape=(n_samples,)], float32, to a float32 vector of ``size`` values.
    size : int

    Returns
    -------
    E : np.ndarray [shape=(..., size)], float32
    """
    import torch

    from featurestore.features._common import map_clips

    with one_torch_thread(), torch.inference_mode():
        return map_clips(y, embed_one, (size,))


#: Serialises the network calls of a process: torch's thread count is process-wide.
_THREADS_LOCK = threading.Lock()


@contextmanager
def one_torch_thread():
    """Run the block on one torch thread, holding a process-wide lock; restore the count after.

    torch's convolutions and products split their sums differently with another number of threads
    (with 3 or 4 threads CNN14's embedding changed in the last bits), so an embedding computed on 2
    cores would differ from one computed on 16. One thread gives the same bits whatever the
    machine's core count; the lock keeps two extraction threads from changing the count under each
    other. Parallel extraction of these kinds therefore gains from worker processes
    (``backend="loky"``), not threads.
    """
    import torch

    with _THREADS_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
