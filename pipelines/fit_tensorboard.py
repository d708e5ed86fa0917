"""skorch's TensorBoard callback for fits in worker processes (``--track tensorboard``, see
:mod:`pipelines.tracking`). A module of its own: it imports skorch and torch, which tracking to MLflow
and the command line's error handling do not need."""

import tempfile
from pathlib import Path

from skorch.callbacks import TensorBoard
from skorch.callbacks.logging import rename_tensorboard_key


class FitTensorBoard(TensorBoard):
    """skorch's TensorBoard callback writing each fit's event files to a new folder under ``logdir``.

    skorch's callback takes an open ``SummaryWriter``, which cannot be pickled to a worker process;
    this one opens its writer when a fit starts (in the process that fits) and lets it go when the
    fit ends, so that the net stays picklable before and after.

    Parameters
    ----------
    logdir : str
        Folder of the fits' event folders (``fit-XXXXXXXX``, one per fit).
    writer : None
        Set while a fit runs (skorch lists it among the callback's parameters, so clones take it).
    close_after_train, keys_ignored, key_mapper
        As skorch's.
    """

    def __init__(self, logdir, *, writer=None, close_after_train=True, keys_ignored=None,
                 key_mapper=rename_tensorboard_key):
        super().__init__(writer=writer, close_after_train=close_after_train, keys_ignored=keys_ignored,
                         key_mapper=key_mapper)
        self.logdir = logdir

    def on_train_begin(self, net, **kwargs):
        from torch.utils.tensorboard import SummaryWriter

        Path(self.logdir).mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=tempfile.mkdtemp(prefix="fit-", dir=self.logdir))

    def on_train_end(self, net, **kwargs):
        self.writer.close()
        self.writer = None
