"""DeepFourier: a learnable log-mel front end on raw waveforms, initialised exactly at the mel
transform, followed by PiczakNet or the small CNN.

The DeepFourier study proposed starting a learned front end at the mel transform and letting
training move it: a strided ``conv1d`` whose kernels are the windowed Fourier basis (real and
imaginary parts, window ``n_fft``, stride ``hop_length``), the squared magnitude (or magnitude),
a ``1 x 1`` convolution initialised with the triangular mel filters, and a log in dB. At
initialisation :class:`LearnableMel` reproduces the store's ``mel`` feature kind (channel 0,
``delta=False``) to within 0.01 dB (measured: at most 1.5e-3 dB on tones in noise and
silence-padded clips at 8 to 22.05 kHz, 6e-4 dB on 300 FSDD recordings; float32 convolution
against the store's float32 FFT, largest near the 80 dB floor; see ``tests/test_frontend.py``).
Both layers are ordinary trainable parameters.

Network: ``front_end`` (:class:`MelFrontEnd`: the learnable mel, then a
:class:`~estimators._frontend.DataScaler`) and ``backbone`` (PiczakNet or SmallCNN on the
one-channel ``n_mels x frames`` image). Freeze or pre-train by name prefix: ``front_end.`` and
``backbone.`` (see :class:`~estimators._frontend.FrontEndClassifier`).

Input scaling: the estimator does not standardise the waveforms (``standardize=False``: that would
shift the dB values away from the store's); instead the front end's ``DataScaler`` maps its dB
output to ``(dB - mean) / (max - min)``, with the mean and range of the training clips' log-mel
computed at fit in one pass, which is exactly how spectrogram forcing and IceBreaker phase 0
normalise their targets: at initialisation the front end's output *is* their target. Measured on
FSDD digits (PiczakNet with 256 hidden units on the store's 60-band log-mel of 0.6 s clips, 4
training speakers, 2 unseen test speakers, 10 seeds): range scaling, scaling by the standard
deviation and raw dB reached the same test accuracy within the (large) spread between seeds
(means 0.29, 0.31, 0.31; chance 0.1), but raw dB needed about twice the epochs (median best
epoch 24 against 10).
"""

import math

import numpy as np
import scipy.signal
import torch
from torch import nn

from estimators._frontend import DataScaler, FrontEndClassifier
from estimators._torch import _is_integer as _is_int, _is_real, output_shape
from estimators.cnn import SmallCNN
from estimators.piczak import PiczakNet
from featurestore.features.mel import mel_basis

SPEC = {
    "class": "DeepFourierClassifier",
    "input": "waveform",
    "feature": "raw",
    "feature_params": {},
    "param_grid": {"freeze_front_end": [False, True], "backbone": ["piczak", "cnn"]},
    "test_params": {"max_epochs": 2, "n_fft": 256, "hop_length": 128,
                    "n_mels": 16, "n_filters": 4, "n_hidden": 16},
    "test_shape": (2560,),
    "description": "DeepFourier: learnable log-mel front end (the store's mel at init) + PiczakNet or CNN",
}

BACKBONES = ("piczak", "cnn")
#: ``10 * log10(max(S, AMIN))`` for power (librosa.power_to_db); magnitudes use its square root.
AMIN = 1e-10
TOP_DB = 80.0


class LearnableMel(nn.Module):
    """Log-mel spectrogram in dB as two trainable convolutions, initialised at the store's ``mel``.

    ``forward`` computes, for waveforms ``x`` of shape ``(N, n_samples)``:

    1. zero padding of ``n_fft // 2`` samples on each side (``center=True``, as librosa and the
       store);
    2. ``fourier``: ``conv1d`` with ``2 * (n_fft // 2 + 1)`` kernels of ``n_fft`` samples, stride
       ``hop_length``, no bias: the periodic Hann window (``scipy.signal.get_window("hann",
       n_fft)``, librosa's) times ``cos(2 pi k n / n_fft)`` (the first half) and
       ``-sin(2 pi k n / n_fft)`` (the second half), ``k = 0 .. n_fft // 2``;
    3. ``P = re**2 + im**2`` (``power=2``), or ``sqrt(P)`` (``power=1``);
    4. ``filterbank``: ``1 x 1`` ``conv1d`` from the ``n_fft // 2 + 1`` bins to ``n_mels`` bands, no
       bias, initialised with ``featurestore.features.mel.mel_basis`` (librosa's Slaney mel
       filters with Slaney area normalisation);
    5. ``power=2``: ``10 * log10(max(S, 1e-10))``; ``power=1``: ``20 * log10(max(S, 1e-5))``
       (librosa's ``power_to_db`` and ``amplitude_to_db`` with ``ref=1``), then the floor
       ``max - 80`` dB taken per clip (over its bands and frames).

    With ``power=2`` this is the store's ``mel`` kind (channel 0, ``delta=False``) to within
    0.01 dB at initialisation. Training moves both convolutions freely (the filterbank may lose
    its triangular shape or its sign; negative band energies are floored like silence).

    Parameters
    ----------
    sr : number > 0, default=22050
        Sampling rate in Hz (for the mel filters).
    n_fft : int >= 2, default=1024
        Window length of the Fourier kernels.
    hop_length : int >= 1, default=512
        Their stride.
    n_mels : int >= 1, default=60
    fmin : float >= 0, default=0.0
    fmax : float or None, default=None
        At most ``sr / 2`` (None).
    power : {2, 1}, default=2
        2 for the power spectrum (the store's), 1 for the magnitude.

    Shapes
    ------
    ``(N, n_samples)`` float32 -> ``(N, n_mels, 1 + n_samples // hop_length)`` float32 (dB).
    """

    def __init__(self, *, sr=22050, n_fft=1024, hop_length=512, n_mels=60, fmin=0.0, fmax=None,
                 power=2):
        super().__init__()
        _check_mel(sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin,
                   fmax=fmax, power=power)
        self.sr, self.n_fft, self.hop_length, self.n_mels = sr, n_fft, hop_length, n_mels
        self.fmin, self.fmax, self.power = float(fmin), fmax, int(power)
        n_bins = n_fft // 2 + 1
        window = scipy.signal.get_window("hann", n_fft, fftbins=True)
        angle = 2 * np.pi * np.outer(np.arange(n_bins), np.arange(n_fft)) / n_fft
        basis = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])
        self.fourier = nn.Conv1d(1, 2 * n_bins, kernel_size=n_fft, stride=hop_length, bias=False)
        self.filterbank = nn.Conv1d(n_bins, n_mels, kernel_size=1, bias=False)
        filters = mel_basis(sr, n_fft, n_mels, float(fmin), float(sr / 2 if fmax is None else fmax))
        with torch.no_grad():
            self.fourier.weight.copy_(torch.as_tensor(basis[:, np.newaxis, :], dtype=torch.float32))
            self.filterbank.weight.copy_(torch.as_tensor(np.array(filters[:, :, np.newaxis])))

    def forward(self, x):
        pad = self.n_fft // 2
        spectrum = self.fourier(nn.functional.pad(x, (pad, pad)).unsqueeze(1))
        real, imag = spectrum.chunk(2, dim=1)
        S = real.square() + imag.square()
        if self.power == 1:
            S = S.clamp(min=AMIN**2).sqrt()  # the clamp keeps the gradient of sqrt finite at 0
        S = self.filterbank(S)
        amin, scale = (AMIN, 10.0) if self.power == 2 else (math.sqrt(AMIN), 20.0)
        db = scale * torch.log10(S.clamp(min=amin))
        return torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - TOP_DB)

    def mel_params(self):
        """The store's ``mel`` parameters this front end starts at (without ``sr``)."""
        return {"n_mels": self.n_mels, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "fmin": self.fmin, "fmax": self.fmax}


class MelFrontEnd(nn.Module):
    """:class:`LearnableMel` (``mel``) then a :class:`~estimators._frontend.DataScaler`
    (``scaler``): waveforms ``(N, n_samples)`` -> scaled log-mel ``(N, n_mels, frames)``.

    The scaler is the identity until :class:`~estimators._frontend.FrontEndClassifier` sets it
    at fit (mean and range of the training clips' log-mel). Parameters: :class:`LearnableMel`'s.
    """

    def __init__(self, **mel):
        super().__init__()
        self.mel = LearnableMel(**mel)
        self.scaler = DataScaler()

    def forward(self, x):
        return self.scaler(self.mel(x))

    def mel_params(self):
        return self.mel.mel_params()


class DeepFourierNet(nn.Module):
    """:class:`MelFrontEnd` (``front_end``) followed by a backbone (``backbone``); returns logits.

    Parameters
    ----------
    input_shape : tuple (n_samples,)
        PiczakNet needs at least 20 frames (``n_samples >= 19 * hop_length``), SmallCNN 8.
    n_classes : int
    sr, n_fft, hop_length, n_mels, fmin, fmax, power :
        The front end's (:class:`LearnableMel`); the estimator sets ``sr`` from its own ``sr``.
    backbone : {"piczak", "cnn"}, default="piczak"
        :class:`~estimators.piczak.PiczakNet` or :class:`~estimators.cnn.SmallCNN` on the
        ``(1, n_mels, frames)`` image.
    n_hidden : int or None, default=None
        Dense units of the backbone; None for its default (PiczakNet 5000, SmallCNN 128).
    dropout : float, default=0.5
    n_filters : int, default=80
        PiczakNet only: filters of each convolution.
    kernel_height : int or None, default=None
        PiczakNet only: height of its first convolution; None for ``n_mels - 3`` (57 of 60 bands,
        as in Piczak's paper). At most ``n_mels``.
    channels : tuple of 3 ints, default=(16, 32, 64)
        SmallCNN only.
    batch_norm : bool, default=False
        SmallCNN only.
    """

    input_kinds = ("waveform",)
    backbone_name = "backbone"

    def __init__(self, input_shape, n_classes, *, sr=22050, n_fft=1024, hop_length=512,
                 n_mels=60, fmin=0.0, fmax=None, power=2, backbone="piczak", n_hidden=None,
                 dropout=0.5, n_filters=80, kernel_height=None, channels=(16, 32, 64),
                 batch_norm=False):
        super().__init__()
        if not (isinstance(backbone, str) and backbone in BACKBONES):
            raise ValueError(f"DeepFourierNet: backbone={backbone!r} must be one of {BACKBONES}")
        self.front_end = MelFrontEnd(sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                                     fmin=fmin, fmax=fmax, power=power)
        bands, frames = output_shape(self.front_end, input_shape)
        image = (1, bands, frames)
        hidden = {} if n_hidden is None else {"n_hidden": n_hidden}
        if backbone == "piczak":
            height = n_mels - 3 if kernel_height is None else kernel_height
            if not (_is_int(height) and 1 <= height <= n_mels):
                raise ValueError(f"DeepFourierNet: kernel_height={kernel_height!r} must be an "
                                 f"integer in [1, n_mels={n_mels}] or None (n_mels - 3)")
            if frames < 20:
                raise ValueError(
                    f"DeepFourierNet: input of per-sample shape {tuple(input_shape)} gives "
                    f"{frames} frames at hop_length={hop_length}; the piczak backbone needs at "
                    "least 20 (longer clips or a smaller hop_length)"
                )
            self.backbone = PiczakNet(image, n_classes, n_filters=n_filters, dropout=dropout,
                                      kernel_height=height, **hidden)
        else:
            self.backbone = SmallCNN(image, n_classes, channels=channels, dropout=dropout,
                                     batch_norm=batch_norm, **hidden)

    def forward(self, x):
        return self.backbone(self.front_end(x).unsqueeze(1))


def _check_mel(*, sr, n_fft, hop_length, n_mels, fmin, fmax, power):
    def fail(name, value, must):
        raise ValueError(f"LearnableMel: {name}={value!r} must be {must}")

    if not (_is_real(sr) and 0 < sr < math.inf):
        fail("sr", sr, "a positive number (Hz)")
    for name, value, least in (("n_fft", n_fft, 2), ("hop_length", hop_length, 1),
                               ("n_mels", n_mels, 1)):
        if not (_is_int(value) and value >= least):
            fail(name, value, f"an integer >= {least}")
    if not (_is_real(fmin) and 0 <= fmin < math.inf):
        fail("fmin", fmin, "a finite number >= 0")
    top = sr / 2 if fmax is None else fmax
    if fmax is not None and not (_is_real(fmax) and 0 < fmax <= sr / 2):
        fail("fmax", fmax, f"None or a number in (0, sr/2={sr / 2}]")
    if fmin >= top:
        fail("fmin", fmin, f"below fmax={top}")
    if not (_is_real(power) and power in (1, 2)):
        fail("power", power, "1 (magnitude) or 2 (power)")


class DeepFourierClassifier(FrontEndClassifier):
    """:class:`DeepFourierNet` as a scikit-learn classifier of ``(n, n_samples)`` waveforms.

    The inputs are not standardised (``standardize=False``): the front end scales its own output
    (see the module's docstring).

    Parameters
    ----------
    n_fft, hop_length, n_mels, fmin, fmax, power :
        The learnable mel's (:class:`LearnableMel`): 1024, 512, 60, 0.0, None, 2. Its sampling
        rate is the estimator's ``sr`` (a run setting: the feature set's).
    backbone : {"piczak", "cnn"}, default="piczak"
        PiczakNet or SmallCNN on the ``(1, n_mels, frames)`` image.
    n_hidden : int or None, default=None
        Dense units of the backbone; None for its default (PiczakNet 5000, SmallCNN 128).
    dropout : float, default=0.5
    n_filters : int, default=80
        PiczakNet only: filters of each convolution.
    kernel_height : int or None, default=None
        PiczakNet only: height of its first convolution; None for ``n_mels - 3``.
    channels : tuple of 3 ints, default=(16, 32, 64)
        SmallCNN only.
    batch_norm : bool, default=False
        SmallCNN only.
    standardize : bool, default=False

    Other Parameters
    ----------------
    freeze_front_end, forcing_epochs, icebreaker, lr, max_epochs, random_state, ... :
        Every parameter of :class:`~estimators._frontend.FrontEndClassifier` and
        :class:`~estimators._torch.TorchClassifier`, and skorch's ``optimizer__*``, ...
    """

    module_params = ("sr", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "power", "backbone", "n_hidden",
                     "dropout", "n_filters", "kernel_height", "channels", "batch_norm")

    def __init__(self, module=DeepFourierNet, *, n_fft=1024, hop_length=512, n_mels=60, fmin=0.0, fmax=None,
                 power=2, backbone="piczak", n_hidden=None, dropout=0.5, n_filters=80, kernel_height=None,
                 channels=(16, 32, 64), batch_norm=False, standardize=False, **kwargs):
        super().__init__(module, standardize=standardize, **kwargs)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.power = power
        self.backbone = backbone
        self.n_hidden = n_hidden
        self.dropout = dropout
        self.n_filters = n_filters
        self.kernel_height = kernel_height
        self.channels = channels
        self.batch_norm = batch_norm
