"""HeuriNet: a hand-sized ("heuristic") 1-D convolutional front end on raw waveforms + PiczakNet.

From the DeepFourier study of learnable front ends: conv1d 1 -> 80 (kernel 155, stride 10), ReLU,
max-pool 9 / 3, conv1d 80 -> 60 (kernel 15, stride 4), ReLU, max-pool 9 / 4. Its ``(60, T')``
output is a one-channel 60 x T' image for :class:`~estimators.piczak.PiczakNet`. At 22,050 Hz the
front end's hop is 480 samples (~22 ms), close to a 512-sample spectrogram hop; PiczakNet needs
T' >= 20, i.e. waveforms of at least 10,735 samples.
"""

from torch import nn

from estimators._frontend import FrontEndClassifier
from estimators.piczak import FrontEndPiczakNet

SPEC = {
    "class": "HeuriNetClassifier",
    "input": "waveform",
    "feature": "raw",
    "feature_params": {},
    "param_grid": {"n_hidden": [1000, 5000]},
    "test_params": {"max_epochs": 2, "n_filters": 4, "n_hidden": 16},
    "test_shape": (11025,),
    "description": "HeuriNet (DeepFourier): two strided conv1d layers on the waveform + PiczakNet",
}


class HeuriFrontEnd(nn.Module):
    """Waveforms ``(N, n_samples)`` -> 60 learned bands ``(N, 60, T')``."""

    n_bands = 60

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv1d(1, 80, kernel_size=155, stride=10),
            nn.ReLU(),
            nn.MaxPool1d(kernel_size=9, stride=3),
            nn.Conv1d(80, self.n_bands, kernel_size=15, stride=4),
            nn.ReLU(),
            nn.MaxPool1d(kernel_size=9, stride=4),
        )

    def forward(self, x):
        return self.layers(x.unsqueeze(1))

    def mel_params(self):
        """The mel spectrogram this front end's output stands for (spectrogram forcing's target):
        its 60 bands, 1024-point frames and its hop of 480 samples."""
        return {"n_mels": self.n_bands, "n_fft": 1024, "hop_length": 480}


class HeuriNet(FrontEndPiczakNet):
    """:class:`HeuriFrontEnd` followed by PiczakNet; returns logits ``(N, n_classes)``.

    Parameters
    ----------
    input_shape : tuple (n_samples,)
    n_classes : int
    n_filters, n_hidden, dropout :
        PiczakNet's (80, 5000, 0.5).
    """

    def __init__(self, input_shape, n_classes, *, n_filters=80, n_hidden=5000, dropout=0.5):
        super().__init__()
        self.front_end = HeuriFrontEnd()
        self._build_classifier(input_shape, n_classes, n_filters=n_filters, n_hidden=n_hidden,
                               dropout=dropout)


class HeuriNetClassifier(FrontEndClassifier):
    """:class:`HeuriNet` as a scikit-learn classifier of ``(n, n_samples)`` waveforms.

    Parameters
    ----------
    n_filters : int, default=80
        PiczakNet's filters per convolution.
    n_hidden : int, default=5000
        PiczakNet's units per dense layer.
    dropout : float, default=0.5
    clip_grad_norm : float or None, default=3.0
        Gradients clipped at a global L2 norm of 3, as in the study.

    Other Parameters
    ----------------
    freeze_front_end, forcing_epochs, icebreaker, lr, max_epochs, random_state, ... :
        Every parameter of :class:`~estimators._frontend.FrontEndClassifier` and
        :class:`~estimators._torch.TorchClassifier`, and skorch's ``optimizer__*``, ...
    """

    module_params = ("n_filters", "n_hidden", "dropout")

    def __init__(self, module=HeuriNet, *, n_filters=80, n_hidden=5000, dropout=0.5, clip_grad_norm=3.0,
                 **kwargs):
        super().__init__(module, clip_grad_norm=clip_grad_norm, **kwargs)
        self.n_filters = n_filters
        self.n_hidden = n_hidden
        self.dropout = dropout
