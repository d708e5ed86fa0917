"""Fine-tuning PANNs CNN14 on waveforms: the published network with a new head, frozen or not.

The network is :class:`featurestore.features._cnn14.Cnn14` (the published module names), read from
the user's checkpoint file (``checkpoint=PATH``, as the ``panns`` feature kind reads it; nothing is
downloaded), or built with random weights when ``checkpoint`` is None (training from scratch). Its
AudioSet classifier ``fc_audioset`` is dropped; a new linear head, ``fc_transfer``, sized from the
classes, reads the 2048-d ``fc1`` embedding through dropout 0.5, as the publishers'
``Transfer_Cnn14`` does. ``freeze`` says what trains:

``"all"``: nothing of CNN14 (a linear probe on the embedding, trained on waveforms, so that batch
augmentation applies); ``"partial"``: ``conv_block5``, ``conv_block6`` and ``fc1`` train, the front
end, ``bn0`` and ``conv_block1``-``4`` stay; ``"none"``: every layer trains. The STFT kernels and the
mel filterbank never train (they are fixed in the published model too). A frozen part keeps its
batch-normalisation statistics: it stays in evaluation mode while the rest trains.

Input: waveforms ``(n, n_samples)`` (the ``raw`` feature kind) at the network's ``sample_rate``:
extract them with ``--set audio.sr=32000`` for the published ``Cnn14`` (``fit`` says so when ``sr``
differs, rather than resampling on every batch). They are not standardised (``standardize=False``),
as the network was trained on unscaled waveforms.
"""

from torch import nn
from torch.nn import functional as F

from estimators._torch import TorchClassifier
from featurestore.features import _cnn14

SPEC = {
    "class": "PANNsClassifier",
    "input": "waveform",
    "feature": "raw",
    "feature_params": {},
    "param_grid": {"freeze": ["all", "partial"], "lr": [1e-4, 1e-3]},
    "test_params": {"max_epochs": 2, "freeze": "none", "sr": 8000, "sample_rate": 8000, "hop_length": 80, "fmax": 4000.0,
                    "widths": (2, 4, 4, 8, 8, 8), "embedding_size": 8},
    "test_shape": (4000,),
    "description": "PANNs CNN14 from a local checkpoint, fine-tuned with a new head (freeze all/partial/none)",
}

FREEZE = ("all", "partial", "none")
#: What ``freeze="partial"`` keeps fixed: the front end, the first batch norm and four conv blocks.
_PARTIAL = ("spectrogram_extractor", "logmel_extractor", "bn0", "conv_block1", "conv_block2", "conv_block3",
            "conv_block4")


class PANNsNet(nn.Module):
    """CNN14 (from a checkpoint or random) with a new head ``fc_transfer``; returns logits.

    Parameters
    ----------
    input_shape : tuple (n_samples,)
    n_classes : int
    checkpoint : str or os.PathLike or None
        The CNN14 ``.pth`` file; None builds CNN14 with random weights.
    sample_rate, hop_length, fmin, fmax :
        The network's input settings (:func:`featurestore.features._cnn14.load_checkpoint`).
    widths, embedding_size : tuple of 6 ints, int, or None
        The architecture without a checkpoint (None: the published 64 ... 2048 and 2048); with one,
        None or the checkpoint's own.
    freeze : {"all", "partial", "none"}
    dropout : float
        Before the head.
    """

    input_kinds = ("waveform",)

    def __init__(self, input_shape, n_classes, *, checkpoint=None, sample_rate=_cnn14.SAMPLE_RATE,
                 hop_length=_cnn14.HOP_LENGTH, fmin=_cnn14.FMIN, fmax=_cnn14.FMAX, widths=None, embedding_size=None,
                 freeze="partial", dropout=0.5):
        super().__init__()
        if freeze not in FREEZE:
            raise ValueError(f"freeze={freeze!r} must be one of {', '.join(map(repr, FREEZE))}")
        if checkpoint is None:
            if freeze != "none":
                raise ValueError(f"freeze={freeze!r} keeps random weights fixed: give a checkpoint, or "
                                 f"freeze='none' to train CNN14 from scratch")
            self.base = _cnn14.Cnn14(sr=sample_rate, hop_length=hop_length, fmin=fmin, fmax=fmax,
                                     widths=tuple(widths or _cnn14.WIDTHS), embedding_size=embedding_size or 2048)
        else:
            self.base = _cnn14.load_checkpoint(checkpoint, sr=sample_rate, hop_length=hop_length, fmin=fmin,
                                               fmax=fmax)
            if widths is not None and tuple(widths) != tuple(_block_widths(self.base)):
                raise ValueError(f"widths={widths!r} differ from the checkpoint's {_block_widths(self.base)}: "
                                 f"leave them None")
            if embedding_size is not None and embedding_size != self.base.fc1.out_features:
                raise ValueError(f"embedding_size={embedding_size!r} differs from the checkpoint's "
                                 f"{self.base.fc1.out_features}: leave it None")
        del self.base.fc_audioset  # the AudioSet classifier: replaced by fc_transfer
        self.fc_transfer = nn.Linear(self.base.fc1.out_features, n_classes)
        self.dropout = dropout
        self.frozen = [] if freeze == "none" else [n for n, _ in self.base.named_children()] if freeze == "all" \
            else list(_PARTIAL)
        for name in self.frozen:
            getattr(self.base, name).requires_grad_(False)

    def train(self, mode=True):
        """nn.Module's, but the frozen parts stay in evaluation mode (their batch-norm statistics fixed)."""
        super().train(mode)
        for name in self.frozen:
            getattr(self.base, name).eval()
        return self

    def forward(self, x):
        embedding = self.base.embed(x)
        return self.fc_transfer(F.dropout(embedding, p=self.dropout, training=self.training))


def _block_widths(net):
    return [getattr(net, f"conv_block{i}").conv1.out_channels for i in range(1, 7)]


class PANNsClassifier(TorchClassifier):
    """PANNs CNN14 fine-tuned as a scikit-learn classifier of ``(n, n_samples)`` waveforms.

    Parameters
    ----------
    checkpoint : str or os.PathLike or None, default=None
        The published CNN14 ``.pth`` file (``Cnn14_mAP=0.431.pth`` for 32 kHz); None trains CNN14
        from random weights (then ``freeze`` must be "none").
    freeze : {"all", "partial", "none"}, default="partial"
        What of CNN14 stays fixed: everything (only the new head trains), the front end, ``bn0``
        and ``conv_block1``-``4`` (blocks 5-6 and ``fc1`` train), or nothing.
    sample_rate, hop_length, fmin, fmax : default=32000, 320, 50.0, 14000.0
        The checkpoint's input settings (``Cnn14_16k``: 16000, 160, 50, 8000). The waveforms'
        ``sr`` must equal ``sample_rate``.
    widths, embedding_size : default=None
        Architecture when training from scratch (None: the published one); with a checkpoint,
        None (it is read from the checkpoint).
    dropout : float, default=0.5
        Before the new head.
    lr : float, default=1e-4
        Adam's learning rate (small: the published weights are a good start).
    standardize : bool, default=False
        Waveforms go in unscaled, as CNN14 was trained.

    Other Parameters
    ----------------
    max_epochs, batch_size, device, random_state, batch_augment, ... :
        Every parameter of :class:`~estimators._torch.TorchClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((12, 4000)).astype(np.float32)
    >>> y = np.repeat(["kick", "snare", "hat"], 4)
    >>> net = PANNsClassifier(freeze="none", sr=8000, sample_rate=8000, hop_length=80, fmax=4000.0,
    ...                       widths=(2, 4, 4, 8, 8, 8), embedding_size=8, max_epochs=1, random_state=0)
    >>> net.fit(X, y).predict_proba(X).shape
    (12, 3)
    """

    module_params = ("checkpoint", "sample_rate", "hop_length", "fmin", "fmax", "widths", "embedding_size",
                     "freeze", "dropout")

    def __init__(self, module=PANNsNet, *, checkpoint=None, freeze="partial", sample_rate=_cnn14.SAMPLE_RATE,
                 hop_length=_cnn14.HOP_LENGTH, fmin=_cnn14.FMIN, fmax=_cnn14.FMAX, widths=None,
                 embedding_size=None, dropout=0.5, lr=1e-4, standardize=False, **kwargs):
        super().__init__(module, lr=lr, standardize=standardize, **kwargs)
        self.checkpoint = checkpoint
        self.freeze = freeze
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.widths = widths
        self.embedding_size = embedding_size
        self.dropout = dropout

    def initialize_module(self):
        """TorchClassifier's, after checking that the waveforms are at the network's rate."""
        if self.sr != self.sample_rate:
            raise ValueError(f"{type(self).__name__} needs waveforms at sample_rate={self.sample_rate} Hz, the "
                             f"checkpoint's; got sr={self.sr}: extract them with --set audio.sr={self.sample_rate}")
        return super().initialize_module()

    def get_all_learnable_params(self):
        """skorch's, without the frozen parameters (the optimizer never sees them)."""
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

