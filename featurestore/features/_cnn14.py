"""PANNs CNN14 in plain torch, with the module names of the published checkpoints.

Kong et al.'s ``Cnn14`` (github.com/qiuqiangkong/audioset_tagging_cnn, ``pytorch/models.py``),
written again here so that the publishers' ``.pth`` files load with ``load_state_dict(strict=True)``:
the same parameter names and shapes, the same computation in evaluation mode. The network knows
nothing of files or the store: :func:`load_checkpoint` reads a file, :class:`Cnn14` maps waveforms
to embeddings or logits.

Front end (torchlibrosa's ``Spectrogram`` and ``LogmelFilterBank``, whose weights are part of the
state dict): the STFT is a strided ``conv1d`` with the real and imaginary parts of a Hann-windowed
DFT as kernels (``spectrogram_extractor.stft.conv_real.weight``, ``...conv_imag.weight``,
shape ``(n_fft // 2 + 1, 1, n_fft)``), after reflect-padding ``n_fft // 2`` samples on each side
(``center=True``); power = real² + imag²; ``logmel_extractor.melW`` [shape=(n_fft // 2 + 1, n_mels)]
is librosa's Slaney mel filterbank, transposed; log = ``10 * log10(max(mel, 1e-10))`` (no top_db).
We write this front end ourselves rather than depend on torchlibrosa: its weights come from the
checkpoint anyway, so the computation is a convolution, a square and a product, and torchlibrosa
(unmaintained since 2022) would still constrain the module names we must match.

Body: ``bn0`` normalises each mel band; six ``conv_block``s (two 3 x 3 convolutions without bias,
each followed by batch norm and ReLU, then 2 x 2 average pooling, none after the sixth); mean over
the mel axis, then max + mean over time; ``fc1`` + ReLU gives the 2048-d embedding; ``fc_audioset``
the 527 AudioSet logits (the published model applies a sigmoid). Dropout (0.2 after each block, 0.5
around ``fc1``), SpecAugment and mixup act in training only.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from featurestore.errors import ParameterError

#: Output channels of the six conv blocks of the published CNN14.
WIDTHS = (64, 128, 256, 512, 1024, 2048)
#: Settings of the published ``Cnn14`` (32 kHz); ``Cnn14_16k`` uses 16000/512/160/50/8000 and
#: ``Cnn14_8k`` 8000/256/80/50/4000.
SAMPLE_RATE, N_FFT, HOP_LENGTH, N_MELS, FMIN, FMAX = 32000, 1024, 320, 64, 50.0, 14000.0
#: 5 time poolings of 2: fewer frames than this leave nothing to pool.
MIN_FRAMES = 32
AMIN = 1e-10


def dft_kernels(n_fft):
    """torchlibrosa's STFT kernels: real and imaginary parts of the Hann-windowed DFT.

    Returns
    -------
    real, imag : np.ndarray [shape=(n_fft // 2 + 1, 1, n_fft)], float32
    """
    import scipy.signal

    window = scipy.signal.get_window("hann", n_fft, fftbins=True)  # periodic, as librosa's
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    W = np.exp(-2j * np.pi * k * n / n_fft) * window  # (n_freq, n_fft)
    return W.real.astype(np.float32)[:, None, :], W.imag.astype(np.float32)[:, None, :]


def mel_weights(sr, n_fft, n_mels, fmin, fmax):
    """torchlibrosa's ``melW``: ``librosa.filters.mel(...).T`` [shape=(n_fft // 2 + 1, n_mels)], float32."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T.astype(np.float32)


class _STFT(nn.Module):
    def __init__(self, n_fft, hop_length):
        super().__init__()
        n_freq = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_freq, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, n_freq, n_fft, stride=hop_length, bias=False)
        real, imag = dft_kernels(n_fft)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))
        for conv in (self.conv_real, self.conv_imag):  # frozen, as torchlibrosa's freeze_parameters=True
            conv.weight.requires_grad_(False)


class _Spectrogram(nn.Module):
    """Power spectrogram: ``(N, n_samples)`` -> ``(N, 1, T, n_fft // 2 + 1)``."""

    def __init__(self, n_fft, hop_length):
        super().__init__()
        self.n_fft = n_fft
        self.stft = _STFT(n_fft, hop_length)

    def forward(self, x):
        x = F.pad(x[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real, imag = self.stft.conv_real(x), self.stft.conv_imag(x)  # (N, n_freq, T)
        return (real**2 + imag**2).transpose(1, 2)[:, None]


class _LogmelFilterBank(nn.Module):
    """``(N, 1, T, n_freq)`` power -> ``(N, 1, T, n_mels)`` log-mel in dB."""

    def __init__(self, sr, n_fft, n_mels, fmin, fmax):
        super().__init__()
        self.melW = nn.Parameter(torch.from_numpy(mel_weights(sr, n_fft, n_mels, fmin, fmax)), requires_grad=False)

    def forward(self, x):
        return 10.0 * torch.log10(torch.clamp(x @ self.melW, min=AMIN))


class _ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x, pool):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool != (1, 1) else x


class Cnn14(nn.Module):
    """PANNs CNN14 on waveforms at the network's rate.

    Parameters
    ----------
    sr : int
        Sampling rate the mel filterbank is built for (32000 for the published ``Cnn14``).
    n_fft, hop_length, n_mels : int
        STFT size, hop and mel bands (1024, 320, 64).
    fmin, fmax : float
        Mel filterbank range in Hz (50, 14000).
    widths : tuple of 6 ints
        Output channels of the conv blocks (:data:`WIDTHS`).
    embedding_size : int
        Units of ``fc1`` (2048).
    n_classes : int
        Outputs of ``fc_audioset`` (527 AudioSet classes).

    Notes
    -----
    A new network gets the published front end (DFT kernels, mel filterbank) and PyTorch's default
    initialisation elsewhere; :func:`load_checkpoint` replaces every weight by the checkpoint's.
    """

    def __init__(self, *, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS, fmin=FMIN,
                 fmax=FMAX, widths=WIDTHS, embedding_size=2048, n_classes=527):
        super().__init__()
        self.spectrogram_extractor = _Spectrogram(n_fft, hop_length)
        self.logmel_extractor = _LogmelFilterBank(sr, n_fft, n_mels, fmin, fmax)
        self.bn0 = nn.BatchNorm2d(n_mels)
        channels = (1, *widths)
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", _ConvBlock(channels[i], channels[i + 1]))
        self.fc1 = nn.Linear(widths[-1], embedding_size)
        self.fc_audioset = nn.Linear(embedding_size, n_classes)
        self.min_samples = (MIN_FRAMES - 1) * hop_length

    def embed(self, waveform):
        """The ``fc1`` embedding: ``(N, n_samples)`` float32 -> ``(N, embedding_size)``.

        Clips shorter than 31 hops (0.31 s at 32 kHz) are zero-padded to that length, the least the
        five time poolings need.
        """
        if waveform.shape[-1] < self.min_samples:
            waveform = F.pad(waveform, (0, self.min_samples - waveform.shape[-1]))
        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # (N, 1, T, n_mels)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # batch norm per mel band
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, (2, 2) if i < 6 else (1, 1))
            x = F.dropout(x, p=0.2, training=self.training)
        x = x.mean(dim=3)  # over mel bands: (N, C, T')
        x = x.max(dim=2).values + x.mean(dim=2)  # (N, C)
        x = F.dropout(x, p=0.5, training=self.training)
        return F.relu(self.fc1(x))

    def forward(self, waveform):
        """AudioSet logits ``(N, n_classes)`` (the published model's output before its sigmoid).

        As published, ``fc_audioset`` reads the ``fc1`` output without the dropout that the
        published code applies to the embedding it returns.
        """
        return self.fc_audioset(self.embed(waveform))


def read_state_dict(path):
    """The state dict of a CNN14 checkpoint file: ``torch.load(path)["model"]``, or a bare state dict.

    Loaded with ``weights_only=True`` (tensors and plain containers only: no code runs).

    Raises
    ------
    ParameterError
        If the file is not a torch checkpoint or holds no state dict.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: say which file and why
        raise ParameterError(f"checkpoint={str(path)!r} is not a readable torch checkpoint: {exc}") from None
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ParameterError(f"checkpoint={str(path)!r} holds no state dict (the PANNs files hold one "
                             f"under the key 'model')")
    return state


def shapes_from_state_dict(state, path):
    """The architecture of ``state``: ``n_fft``, ``n_mels``, ``widths``, ``embedding_size``, ``n_classes``.

    Read from the shapes of the front-end and conv weights, so checkpoints of other widths in the
    same layout (and the tests' tiny ones) load too.
    """
    def shape(key):
        if key not in state:
            raise ParameterError(f"checkpoint={str(path)!r} is not a PANNs CNN14 state dict: no {key!r}")
        return tuple(state[key].shape)

    n_freq, _, n_fft = shape("spectrogram_extractor.stft.conv_real.weight")
    return {
        "n_fft": n_fft,
        "n_mels": shape("logmel_extractor.melW")[1],
        "widths": tuple(shape(f"conv_block{i}.conv1.weight")[0] for i in range(1, 7)),
        "embedding_size": shape("fc1.weight")[0],
        "n_classes": shape("fc_audioset.weight")[0],
    }


def load_checkpoint(path, *, sr, hop_length, fmin, fmax):
    """A :class:`Cnn14` with every weight of the checkpoint at ``path``, in evaluation mode.

    Parameters
    ----------
    path : str or os.PathLike
        The published ``.pth`` file (a dict whose ``"model"`` is the state dict) or a bare state dict.
    sr, hop_length, fmin, fmax :
        The input settings the checkpoint was trained with, which its weights do not record
        (``fmin``/``fmax`` and ``sr`` are checked against its mel filterbank).

    Raises
    ------
    ParameterError
        If a key is missing or unexpected (listing them), a shape does not fit, or the checkpoint's
        mel filterbank is not the one of ``sr``, ``fmin`` and ``fmax``.
    """
    state = read_state_dict(path)
    arch = shapes_from_state_dict(state, path)
    if arch["n_fft"] > sr:
        raise ParameterError(f"checkpoint={str(path)!r} has n_fft={arch['n_fft']}, more than one second at sr={sr}")
    net = Cnn14(sr=sr, hop_length=hop_length, fmin=fmin, fmax=fmax, n_mels=arch["n_mels"], n_fft=arch["n_fft"],
                widths=arch["widths"], embedding_size=arch["embedding_size"], n_classes=arch["n_classes"])
    expected = net.logmel_extractor.melW.detach().numpy().copy()
    missing, unexpected = _key_differences(net, state)
    if missing or unexpected:
        raise ParameterError(f"checkpoint={str(path)!r} does not have CNN14's layout: missing keys "
                             f"{missing[:5] or 'none'}, unexpected keys {unexpected[:5] or 'none'}")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ParameterError(f"checkpoint={str(path)!r} does not fit CNN14: {exc}") from None
    if not np.allclose(state["logmel_extractor.melW"].numpy(), expected, rtol=1e-4, atol=1e-6):
        raise ParameterError(
            f"checkpoint={str(path)!r}: its mel filterbank (logmel_extractor.melW) is not the one of "
            f"sample_rate={sr}, fmin={fmin}, fmax={fmax}; give the settings it was trained with "
            f"(Cnn14: 32000, 320, 50, 14000; Cnn14_16k: 16000, 160, 50, 8000; Cnn14_8k: 8000, 80, 50, 4000)")
    return net.eval()


def _key_differences(net, state):
    own = set(net.state_dict())
    return sorted(own - set(state)), sorted(set(state) - own)


def write_random_checkpoint(path, *, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS, fmin=FMIN,
                            fmax=FMAX, widths=WIDTHS, embedding_size=2048, n_classes=527, seed=0):
    """Write a CNN14 checkpoint in the published layout with random weights, for tests and tutorials.

    The file is what the published ``.pth`` files are, ``torch.save({"model": state_dict}, path)``,
    with the published front end (DFT kernels, mel filterbank of ``sr``, ``fmin``, ``fmax``) and
    seeded random weights, biases and batch-norm statistics elsewhere. Its embeddings mean nothing:
    real use needs the published file (Zenodo record 3987831, ``Cnn14_mAP=0.431.pth``).

    Parameters
    ----------
    path : str or os.PathLike
    sr, n_fft, hop_length, n_mels, fmin, fmax, widths, embedding_size, n_classes :
        As :class:`Cnn14`; the defaults are the published model's (80 M parameters, 327 MB).
    seed : int

    Returns
    -------
    path : str or os.PathLike
        ``path``.
    """
    generator = torch.Generator().manual_seed(seed)
    net = Cnn14(sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, widths=widths,
                embedding_size=embedding_size, n_classes=n_classes)
    state = net.state_dict()
    for key, value in state.items():
        if key.startswith(("spectrogram_extractor.", "logmel_extractor.")) or key.endswith("num_batches_tracked"):
            continue  # the front end is fixed; counters stay counters
        if key.endswith("running_var"):
            value.copy_(0.5 + torch.rand(value.shape, generator=generator))
        elif value.ndim > 1:  # weights: unit variance at the output, as trained nets roughly keep
            fan_in = value[0].numel()
            value.copy_(torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        elif key.endswith(".weight"):  # batch-norm scales around 1
            value.copy_(1.0 + 0.1 * torch.randn(value.shape, generator=generator))
        else:
            value.copy_(0.1 * torch.randn(value.shape, generator=generator))
    torch.save({"model": state}, path)
    return path
