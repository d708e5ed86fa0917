"""Temperature scaling (Guo et al., 2017) of a torch net's probabilities, fitted on its validation split.

:class:`TemperatureScaling` is the callback that :class:`~estimators._torch.TorchClassifier` adds
for ``calibrate=True``: at the end of training (after early stopping has restored the best
epoch) it fits one temperature ``T > 0`` that minimises the cross-entropy of
``softmax(z / T)`` on the validation split, where ``z`` are the clip-level outputs (the logits, or
with ``crop`` the log of the mean window probability). Dividing by ``T`` changes no ``argmax``,
so predictions and accuracy stay as they were; only the confidence changes, so that an ensemble
can soft-vote calibrated nets.
"""

import numpy as np
import torch
from skorch.callbacks import Callback

#: Temperatures are searched in ``[exp(-LOG_T_BOUND), exp(LOG_T_BOUND)]``.
LOG_T_BOUND = 5.0


def fit_temperature(outputs, targets, *, n_steps=100):
    """The temperature minimising ``cross_entropy(outputs / T, targets)``.

    Parameters
    ----------
    outputs : torch.Tensor [shape=(n, n_classes)], float
        Clip-level logits (or log-probabilities).
    targets : torch.Tensor [shape=(n,)], int64
        Class indices.
    n_steps : int
        Iterations of L-BFGS on ``log T``.

    Returns
    -------
    float > 0
    """
    outputs = outputs.detach().double()
    targets = targets.detach().long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=n_steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(outputs / log_t.clamp(-LOG_T_BOUND, LOG_T_BOUND).exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(np.exp(np.clip(log_t.item(), -LOG_T_BOUND, LOG_T_BOUND)))


class TemperatureScaling(Callback):
    """At the end of training, set ``net.temperature_`` fitted on the net's validation split.

    Must run after early stopping's restoring of the best weights (the net appends it last).
    The temperature is recorded in the last row of ``history_`` as ``temperature``.
    """

    def on_train_end(self, net, X=None, y=None, **kwargs):
        vars(net).pop("temperature_", None)  # a continued fit: the outputs must be unscaled
        _, valid = net.get_split_datasets(X, y)
        if valid is None or len(valid) == 0:
            return
        outputs = torch.cat([out.detach().cpu() for out in net.forward_iter(valid, training=False)])
        if hasattr(valid, "indices"):  # the usual Subset of the encoded targets
            targets = torch.as_tensor(np.asarray(y)[valid.indices])
        else:
            targets = torch.as_tensor(np.array([int(valid[i][1]) for i in range(len(valid))]))
        net.temperature_ = fit_temperature(outputs, targets)
        net.history.record("temperature", net.temperature_)
