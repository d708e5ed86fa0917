"""Per-epoch progress of a torch net's refit on all clips, told to a :class:`~pipelines.reporter.Reporter`.

The final fit of a net can take minutes after the cross-validation's progress bar has ended. During
:meth:`Experiment._refit <pipelines.experiment.Experiment>` each skorch net of the model gets one
more callback, :class:`EpochProgress`, which tells the listeners of :func:`listening` of every epoch.
The callback holds only the run's label, so that ``clone`` (inside a ``SegmentClassifier`` or an
ensemble) copies no reporter; outside :func:`listening` it does nothing. This module imports skorch
(and torch): only a run with a net imports it.
"""

import time
from contextlib import contextmanager

from skorch.callbacks import Callback

_LISTENERS = []


class EpochProgress(Callback):
    """A skorch callback that tells the listeners of :func:`listening` of each epoch's end.

    Parameters
    ----------
    label : str
        The run's name (``cnn``, ``soft-svm+cnn``), passed on to the listeners.
    """

    def __init__(self, label="net"):
        self.label = label

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.start_ = time.perf_counter()

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        row = net.history[-1]
        for listener in _LISTENERS:
            listener(self.label, int(row["epoch"]), int(net.max_epochs), time.perf_counter() - self.start_,
                     row.get("train_loss"), row.get("valid_acc"))


def _nets(estimator):
    """``(key, net)`` of the skorch nets among ``estimator``'s parameters (itself as key ``""``)."""
    from skorch import NeuralNet

    params = {"": estimator, **estimator.get_params(deep=True)}
    return [(key, value) for key, value in params.items() if isinstance(value, NeuralNet)]


@contextmanager
def listening(estimator, label, listener):
    """While inside, every skorch net of ``estimator`` (an unfitted pipeline or ensemble) calls
    ``listener(label, epoch, max_epochs, seconds, train_loss, valid_acc)`` at the end of each epoch.

    On leaving, the nets get their own ``callbacks`` back (a net fitted in place keeps no trace;
    the copies an ensemble or segment vote fitted keep a callback that does nothing from then on).
    """
    nets = _nets(estimator)
    own = {key: net.callbacks for key, net in nets}
    for key, net in nets:
        net.set_params(callbacks=[*(own[key] or []), ("refit_progress", EpochProgress(label))])
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)
        for key, net in nets:
            net.set_params(callbacks=own[key])
