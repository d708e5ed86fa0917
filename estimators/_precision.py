"""Mixed-precision training of the torch nets: the ``precision`` parameter of :class:`TorchClassifier`.

The names are Lightning's: ``"32"`` (float32 throughout, the default), ``"bf16-mixed"`` and
``"16-mixed"``. A mixed precision runs the module's forward passes under :func:`torch.autocast` with
bfloat16 or float16 as the lower precision (autocast picks, op by op, which run in it: convolutions and
matrix products do, reductions and losses stay in float32); the module's weights, its gradients and the
optimizer's state stay float32. float16's range is narrow, so ``"16-mixed"`` also scales the loss
(:class:`torch.amp.GradScaler`): gradients are computed for ``loss * scale``, unscaled before anything
reads them (clipping), and a step whose gradients hold an inf or a NaN is skipped while the scale
backs off. bfloat16 has float32's range and needs no scaling.

Why not skorch's own route, :class:`skorch.hf.AccelerateMixin`: it needs the ``accelerate`` package,
wants ``device=None`` (accelerate places the tensors, where this toolkit's ``device="auto"`` does), and
a net is picklable only after it is unwrapped at the end of training. The few lines here do the same
with torch alone, in skorch's own hooks (``infer``, ``train_step_single``, ``_step_optimizer``).

On the CPU, torch 2.13 runs both lower precisions, and its :class:`~torch.amp.GradScaler` works there
too. bfloat16 is the CPU's useful one (recent CPUs compute in it natively); float16 is accepted there
as well, which is how the loss-scaling path is tested without a GPU, but it is slower than float32 on
most CPUs, and torch's oneDNN LSTM has no float16 kernel on the CPU (refused at fit, see
:func:`check_module_support`).
"""

import contextlib

import torch

#: ``precision`` -> the lower-precision dtype of autocast (None: no autocast).
PRECISIONS = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def check_precision(precision):
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError naming the parameter.

    Parameters
    ----------
    precision : str

    Returns
    -------
    str
    """
    if not (isinstance(precision, str) and precision in PRECISIONS):
        raise ValueError(f"precision={precision!r} must be one of {', '.join(map(repr, PRECISIONS))} "
                         "(float32; bfloat16 or float16 autocast, as Lightning names them)")
    return precision


def check_device_support(precision, device):
    """Raise a ValueError when ``device`` cannot run ``precision``; a GPU before Ampere has no bfloat16.

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS`.
    device : str or torch.device
        The resolved device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    """
    device = torch.device(device)
    if precision != "bf16-mixed" or device.type != "cuda" or not torch.cuda.is_available():
        return  # without CUDA, placing the module on "cuda" fails with torch's own error
    if not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise ValueError(f"precision='bf16-mixed': {name} ({device}) has no native bfloat16 (compute "
                         "capability 8.0 or later, Ampere on, has); use precision='16-mixed'")


def check_module_support(precision, device, module):
    """Raise a ValueError when ``module`` cannot run ``precision`` on ``device``: torch's CPU LSTM
    (oneDNN) has no float16 kernel, and would fail in ``forward`` with an opaque oneDNN error.

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS`.
    device : str or torch.device
    module : torch.nn.Module
        The built network.
    """
    if precision != "16-mixed" or torch.device(device).type != "cpu":
        return
    lstm = next((m for m in module.modules() if isinstance(m, torch.nn.LSTM)), None)
    if lstm is not None:
        raise ValueError(f"precision='16-mixed' on the CPU: {type(module).__name__} has an LSTM, which torch "
                         "cannot run in float16 on the CPU; use precision='bf16-mixed' there, or a CUDA device")


def autocast(precision, device):
    """The autocast context of ``precision`` on ``device``: :func:`torch.autocast` or nothing.

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS`.
    device : str or torch.device
        The device the forward pass runs on; autocast is set up for its type.

    Returns
    -------
    context manager

    Examples
    --------
    >>> layer = torch.nn.Linear(4, 2)
    >>> with autocast("bf16-mixed", "cpu"):
    ...     layer(torch.ones(3, 4)).dtype
    torch.bfloat16
    >>> with autocast("32", "cpu"):
    ...     layer(torch.ones(3, 4)).dtype
    torch.float32
    """
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(precision, device):
    """A new loss scaler for ``precision`` on ``device``: a :class:`torch.amp.GradScaler` for
    ``"16-mixed"``, None for the others (float32 and bfloat16 need none).

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS`.
    device : str or torch.device

    Returns
    -------
    torch.amp.GradScaler or None
    """
    if check_precision(precision) != "16-mixed":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def to_float32(output):
    """The module's output in float32: a floating tensor of lower precision cast up, others as they are.

    Under autocast the logits come out in bfloat16 or float16; the loss, the softmax of
    ``predict_proba``, the window averaging of crops and the temperature are then computed in float32.
    A tuple (or list) of outputs is cast element by element.

    Parameters
    ----------
    output : torch.Tensor or tuple of torch.Tensor

    Returns
    -------
    Same structure as ``output``.
    """
    if isinstance(output, torch.Tensor):
        is_low = output.is_floating_point() and output.dtype in (torch.bfloat16, torch.float16)
        return output.float() if is_low else output
    if isinstance(output, (tuple, list)):
        return type(output)(to_float32(item) for item in output)
    return output
