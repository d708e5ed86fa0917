"""Phased training of networks with a front end, as skorch callbacks.

:class:`FreezeSchedule` freezes groups of a network's parameters phase by phase (a frozen front
end for the first N epochs, the IceBreaker's phases 1 to 3); :class:`PhasedEarlyStopping` lets
early stopping stop only once the last phase has begun. :func:`parameter_groups` names the groups.
:class:`~estimators._frontend.FrontEndClassifier` adds both callbacks from its parameters.

Frozen parameters get ``requires_grad=False`` at the start of each epoch of their phase (they are
not detached, so gradients still flow back through them to the layers before); skorch's
``zero_grad`` sets their gradients to None, so the optimizer leaves them, and their moments,
untouched. Epochs are counted from the network's initialisation (``len(net.history)``), so
``partial_fit`` and ``warm_start`` continue a schedule rather than restart it.
"""

import math

from skorch.callbacks import Callback, EarlyStopping
from torch import nn

#: Parameter groups that a phase can freeze (see :func:`parameter_groups`).
GROUPS = ("front_end", "backbone_first_conv", "backbone_rest")


def parameter_groups(module):
    """Names of ``module``'s parameters in each group that a schedule can freeze.

    Parameters
    ----------
    module : torch.nn.Module
        A network with a sub-module ``front_end`` and, for the backbone groups, the class
        attribute ``backbone_name`` naming its backbone sub-module.

    Returns
    -------
    groups : dict
        ``"front_end"``: those of ``front_end``; ``"backbone_first_conv"``: the backbone's first
        convolution (its first ``nn.Conv1d``/``Conv2d``/``Conv3d``); ``"backbone_rest"``: the rest
        of the backbone (empty lists without ``backbone_name``). Other parameters are never frozen.
    """
    names = [name for name, _ in module.named_parameters()]
    groups = {"front_end": [n for n in names if n.startswith("front_end.")],
              "backbone_first_conv": [], "backbone_rest": []}
    backbone = getattr(type(module), "backbone_name", None)
    if backbone is not None:
        first = _first_conv(getattr(module, backbone))
        first = f"{backbone}.{first}." if first is not None else None
        for name in names:
            if name.startswith(f"{backbone}."):
                key = "backbone_first_conv" if first and name.startswith(first) else "backbone_rest"
                groups[key].append(name)
    return groups


def _first_conv(module):
    """Name of the first convolution among ``module``'s sub-modules, or None."""
    for name, sub in module.named_modules():
        if isinstance(sub, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return name
    return None


class FreezeSchedule(Callback):
    """Freeze groups of the network's parameters phase by phase.

    At the start of each epoch, the parameters of the groups frozen in that epoch's phase get
    ``requires_grad=False`` and all others ``True``; ``history`` records ``frozen`` (the frozen
    groups) and, for labelled phases, ``phase``. At the end of training every parameter is
    trainable again.

    Parameters
    ----------
    phases : sequence of (int or math.inf, tuple of str, object)
        Rows ``(last_epoch, frozen_groups, label)`` in order: a phase lasts up to epoch
        ``last_epoch`` (1-based, inclusive); ``frozen_groups`` are keys of
        :func:`parameter_groups`; ``label`` (None for none) is recorded as ``phase``. After the
        last row nothing is frozen.

    Examples
    --------
    A front end frozen for 2 epochs: ``FreezeSchedule([(2, ("front_end",), None)])``.
    """

    def __init__(self, phases):
        self.phases = phases

    def phase(self, epoch):
        """``(frozen_groups, label)`` of 1-based ``epoch``."""
        for last, frozen, label in self.phases:
            if epoch <= last:
                return frozen, label
        return (), None

    def on_epoch_begin(self, net, **kwargs):
        frozen, label = self.phase(len(net.history))
        groups = parameter_groups(net.module_)
        frozen_names = {name for group in frozen for name in groups[group]}
        for name, param in net.module_.named_parameters():
            param.requires_grad_(name not in frozen_names)
        net.history.record("frozen", list(frozen))
        if label is not None:
            net.history.record("phase", label)

    def on_train_end(self, net, **kwargs):
        for param in net.module_.parameters():
            param.requires_grad_(True)


class PhasedEarlyStopping(EarlyStopping):
    """skorch's ``EarlyStopping`` that may stop only from epoch ``start`` on.

    Before epoch ``start`` (1-based, counted in ``net.history``) it records the best epoch (and
    its weights, with ``load_best``) as usual, but epochs without improvement do not count
    towards ``patience``. :class:`~estimators._frontend.FrontEndClassifier` uses it so that a
    phased fit reaches its last phase (everything trainable) before it can stop.
    """

    def __init__(self, monitor="valid_loss", patience=5, threshold=1e-4, threshold_mode="rel",
                 lower_is_better=True, sink=print, load_best=False, start=1):
        super().__init__(monitor=monitor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, lower_is_better=lower_is_better,
                         sink=sink, load_best=load_best)
        self.start = start

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) >= self.start:
            return super().on_epoch_end(net, **kwargs)
        # An improvement is recorded by EarlyStopping itself (misses_ back to 0, so it cannot
        # stop); a miss is not counted.
        if self._is_score_improved(net.history[-1, self.monitor]):
            super().on_epoch_end(net, **kwargs)
        return None


def stop_start(phases):
    """First epoch at which early stopping may stop: the first after the last phase that freezes
    something (1 when there is none, or when that phase never ends)."""
    last = max((last for last, frozen, _ in phases if frozen), default=0)
    return 1 if last == math.inf else last + 1
