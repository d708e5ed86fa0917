"""Learning-rate factors by epoch, for ``torch.optim.lr_scheduler.LambdaLR``.

Classes rather than lambdas, so that a fitted net (whose scheduler holds the function) pickles.
"""

import math


class WarmupCosine:
    """Linear warm-up over ``warmup_epochs``, then a cosine decay to 0 over the other epochs.

    The factor of 0-based epoch ``e`` (multiplying the optimizer's ``lr``) is
    ``(e + 1) / (warmup_epochs + 1)`` for ``e < warmup_epochs``, then
    ``0.5 * (1 + cos(pi * (e - warmup_epochs) / (epochs - warmup_epochs)))``: 1 at the first
    epoch after the warm-up, near 0 (never 0) at the last of ``epochs``. Epochs past ``epochs``
    (a continued fit) keep the last factor's floor, ``1 / (epochs - warmup_epochs)`` of a
    half-cosine step, rather than rising again.

    Parameters
    ----------
    epochs : int >= 1
        The horizon: epochs of one fit.
    warmup_epochs : int >= 0

    Examples
    --------
    >>> schedule = WarmupCosine(6, 2)
    >>> [round(schedule(e), 3) for e in range(6)]
    [0.333, 0.667, 1.0, 0.854, 0.5, 0.146]
    """

    def __init__(self, epochs, warmup_epochs=0):
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs

    def __call__(self, epoch):
        warmup = min(self.warmup_epochs, max(self.epochs - 1, 0))
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        decay = max(self.epochs - warmup, 1)
        progress = min(epoch - warmup, decay - 1) / decay
        return 0.5 * (1.0 + math.cos(math.pi * progress))
