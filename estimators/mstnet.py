"""MSTNet: a learned multi-scale "spectrogram" front end on raw waveforms + PiczakNet.

From the DeepFourier study: conv1d 1 -> 512 (kernel 1024, stride 512, i.e. a learned STFT with
the hop of a 512-sample spectrogram), ReLU, conv1d 512 -> 256 (kernel 3), ReLU, conv1d 256 -> 60
(kernel 3), tanh; the last two keep the number of frames. The ``(60, frames)`` output plays the part
of a 60-band log-mel spectrogram for :class:`~estimators.piczak.PiczakNet` (a one-channel image).
"""

from torch import nn

from estimators._frontend import FrontEndClassifier
from estimators.piczak import FrontEndPiczakNet

SPEC = {
    "class": "MSTNetClassifier",
    "input": "waveform",
    "feature": "raw",
    "feature_params": {},
    "param_grid": {"n_hidden": [1000, 5000]},
    "test_params": {"max_epochs": 2, "n_filters": 4, "n_hidden": 16,
                    "window_length": 256, "hop_length": 128},
    "test_shape": (4000,),
    "description": "MSTNet (DeepFourier): learned STFT-like conv1d front end + PiczakNet",
}


class MSTFrontEnd(nn.Module):
    """Waveforms ``(N, n_samples)`` -> ``n_bands`` learned bands ``(N, n_bands, frames)``.

    ``frames = (n_samples - window) // hop + 1``.
    """

    def __init__(self, *, window=1024, hop=512, n_bands=60):
        super().__init__()
        self.window, self.hop, self.n_bands = window, hop, n_bands
        self.layers = nn.Sequential(
            nn.Conv1d(1, 512, kernel_size=window, stride=hop),
            nn.ReLU(),
            nn.Conv1d(512, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv1d(256, n_bands, kernel_size=3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.layers(x.unsqueeze(1))

    def mel_params(self):
        """The mel spectrogram this front end's output stands for (spectrogram forcing's target):
        ``n_bands`` bands, frames of ``window`` samples every ``hop``."""
        return {"n_mels": self.n_bands, "n_fft": self.window, "hop_length": self.hop}


class MSTNet(FrontEndPiczakNet):
    """:class:`MSTFrontEnd` followed by PiczakNet; returns logits ``(N, n_classes)``.

    Parameters
    ----------
    input_shape : tuple (n_samples,)
    n_classes : int
    n_filters, n_hidden, dropout :
        PiczakNet's (80, 5000, 0.5).
    window_length, hop_length : int
        The front end's first kernel and stride, in samples (1024, 512).
    """

    def __init__(self, input_shape, n_classes, *, n_filters=80, n_hidden=5000, dropout=0.5,
                 window_length=1024, hop_length=512):
        super().__init__()
        self.front_end = MSTFrontEnd(window=window_length, hop=hop_length)
        self._build_classifier(input_shape, n_classes, n_filters=n_filters, n_hidden=n_hidden,
                               dropout=dropout)


class MSTNetClassifier(FrontEndClassifier):
    """:class:`MSTNet` as a scikit-learn classifier of ``(n, n_samples)`` waveforms.

    Parameters
    ----------
    n_filters : int, default=80
        PiczakNet's filters per convolution.
    n_hidden : int, default=5000
        PiczakNet's units per dense layer.
    dropout : float, default=0.5
    window_length : int, default=1024
        The front end's first kernel, in samples.
    hop_length : int, default=512
        Its stride, in samples.
    clip_grad_norm : float or None, default=3.0
        Gradients clipped at a global L2 norm of 3, as in the study.

    Other Parameters
    ----------------
    freeze_front_end, forcing_epochs, icebreaker, lr, max_epochs, random_state, ... :
        Every parameter of :class:`~estimators._frontend.FrontEndClassifier` and
        :class:`~estimators._torch.TorchClassifier`, and skorch's ``optimizer__*``, ...
    """

    module_params = ("n_filters", "n_hidden", "dropout", "window_length", "hop_length")

    def __init__(self, module=MSTNet, *, n_filters=80, n_hidden=5000, dropout=0.5, window_length=1024,
                 hop_length=512, clip_grad_norm=3.0, **kwargs):
        super().__init__(module, clip_grad_norm=clip_grad_norm, **kwargs)
        self.n_filters = n_filters
        self.n_hidden = n_hidden
        self.dropout = dropout
        self.window_length = window_length
        self.hop_length = hop_length
