"""Host-to-device copies of the torch nets' batches: pinned memory and non-blocking copies on CUDA.

On a CUDA device, a copy from pageable host memory blocks the host until it is done, and the next
batch cannot be prepared meanwhile. The data loaders of :class:`TorchClassifier` therefore collate
batches into page-locked ("pinned") memory, and the training, validation and prediction steps copy
them with ``non_blocking=True``: the copy is queued on the current stream, ahead of the forward pass
that reads it, and the host goes on. skorch's ``to_tensor`` copies without ``non_blocking``, so the
steps copy the batch themselves first (skorch's ``to_tensor`` then finds it on the device already).

On the CPU nothing changes: no pinning, and the batch is converted exactly as skorch does.
"""

from collections.abc import Mapping

import torch
from skorch.utils import to_tensor
from torch.utils.data import DataLoader


def is_cuda(device):
    """Whether ``device`` (a resolved torch device or its name) is a CUDA device."""
    return torch.device(device).type == "cuda"


def pins_memory(device, iterator):
    """Whether the data loader class ``iterator`` should pin its batches for ``device``.

    Only for a CUDA device and for torch's :class:`~torch.utils.data.DataLoader` (and its
    subclasses), which take ``pin_memory``; a custom iterator is left as the user wrote it.
    """
    return is_cuda(device) and isinstance(iterator, type) and issubclass(iterator, DataLoader)


def to_device(data, device):
    """``data`` (a batch: array, tensor, or a dict, list or tuple of them) as tensors on ``device``.

    On CUDA, tensors are copied with ``non_blocking=True`` (asynchronous from pinned memory, an
    ordinary copy from pageable memory); elsewhere this is skorch's ``to_tensor``.

    Parameters
    ----------
    data : np.ndarray, torch.Tensor, or a dict, list or tuple of them
    device : str or torch.device

    Returns
    -------
    torch.Tensor, or a dict or list of them (skorch's ``to_tensor`` makes lists of tuples)
    """
    if not is_cuda(device):
        return to_tensor(data, device=device)
    return _copy(data, torch.device(device))


def _copy(data, device):
    if isinstance(data, torch.Tensor):  # already there: no copy
        return data.to(device, non_blocking=True)
    if isinstance(data, Mapping):
        return {key: _copy(value, device) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_copy(value, device) for value in data]
    tensor = to_tensor(data, device="cpu")  # an array (a view of it, no copy), a scalar, ...
    return tensor.to(device, non_blocking=True) if isinstance(tensor, torch.Tensor) else tensor
