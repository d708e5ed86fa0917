"""PANNs CNN14 embeddings (the 2048-d ``fc1`` output) from the publisher's checkpoint file.

Kong et al.'s CNN14, trained on AudioSet tagging, read from the ``.pth`` file the user downloaded
(``checkpoint=PATH``; nothing is downloaded here). The network is written in plain torch with the
published module names (:mod:`featurestore.features._cnn14`), and the file must load without a
missing or unexpected key.

Input pipeline, as the network was trained (the defaults are the published ``Cnn14``, 32 kHz):

1. each clip (mono float32 at the data set's ``sr``) is resampled to ``sample_rate`` with soxr's
   high-quality filter (the audio loader's resampler); clips shorter than 31 hops are zero-padded;
2. STFT of ``n_fft`` = 1024 samples (read from the checkpoint), Hann window, ``hop_length`` = 320
   (10 ms), frames centred with reflect padding; power spectrum;
3. 64 Slaney mel bands from ``fmin`` = 50 Hz to ``fmax`` = 14 kHz (the checkpoint's own filterbank,
   checked against these settings, so a ``Cnn14_16k`` file with 32 kHz settings is an error),
   ``10 * log10(max(., 1e-10))`` with no floor; then the network's ``bn0`` per mel band (no other
   normalisation: the waveform is not rescaled).

The other published variants need their settings: ``Cnn14_16k`` ``sample_rate=16000,
hop_length=160, fmax=8000``; ``Cnn14_8k`` ``sample_rate=8000, hop_length=80, fmax=4000``.

Embedding: ``relu(fc1(max_t + mean_t of the conv features averaged over mel bands))``, the
2048 values before the AudioSet classifier (``fc_audioset``), in evaluation mode (no dropout).

The store keys the feature set on the checkpoint's SHA-256, not on its path (see
:mod:`featurestore.features._pretrained`): a changed file gives a new set, a moved one reuses the
stored set. Each clip goes through the network alone, so a clip's embedding does not depend on the
batch; across CPUs the values agree to float32 rounding, not bit for bit.

Output: float32 of shape ``(..., embedding_size)``, ``(2048,)`` for the published file.

References
----------
Q. Kong, Y. Cao, T. Iqbal, Y. Wang, W. Wang, M. D. Plumbley, "PANNs: Large-scale pretrained audio
neural networks for audio pattern recognition", IEEE/ACM TASLP 28, 2020.
"""

from functools import lru_cache

from featurestore.errors import ParameterError
from featurestore.features import _common, _pretrained

DEFAULTS = {
    "checkpoint": None,
    "sample_rate": 32000,
    "hop_length": 320,
    "fmin": 50.0,
    "fmax": 14000.0,
}
DESCRIPTION = "PANNs CNN14 embedding (2048-d fc1) from a local checkpoint file (checkpoint=PATH.pth)"
VERSION = 1
#: Parameters naming a user's file: required, and keyed in the store by the file's SHA-256.
FILE_PARAMS = ("checkpoint",)
#: The 8 kHz variant's settings (``Cnn14_8k``): the tests write tiny checkpoints for them.
TEST_PARAMS = {"sample_rate": 8000, "hop_length": 80, "fmax": 4000.0}


def check_params(*, checkpoint, sample_rate, hop_length, fmin, fmax):
    """Checked parameters: ``(path, sample_rate, hop_length, fmin, fmax)``; ParameterError naming the bad one."""
    sample_rate = _common.check_int("sample_rate", sample_rate)
    hop_length = _common.check_int("hop_length", hop_length)
    fmin = _common.check_float("fmin", fmin, minimum=0.0)
    fmax = _common.check_float("fmax", fmax, minimum=0.0)
    if fmax > sample_rate / 2:
        raise ParameterError(f"fmax={fmax!r} must be <= sample_rate/2={sample_rate / 2!r}")
    if fmin >= fmax:
        raise ParameterError(f"fmin={fmin!r} must be < fmax={fmax!r}")
    return _pretrained.check_path("checkpoint", checkpoint), sample_rate, hop_length, fmin, fmax


@lru_cache(maxsize=2)
def _network(digest, path, sample_rate, hop_length, fmin, fmax):
    """The checkpoint's network in evaluation mode, once per content and settings (``digest`` keys it)."""
    from featurestore.features import _cnn14

    return _cnn14.load_checkpoint(path, sr=sample_rate, hop_length=hop_length, fmin=fmin, fmax=fmax)


def network(checkpoint, *, sample_rate=32000, hop_length=320, fmin=50.0, fmax=14000.0):
    """The :class:`~featurestore.features._cnn14.Cnn14` of ``checkpoint`` in evaluation mode (cached).

    Raises
    ------
    ParameterError
        If a parameter is bad, or the file is not a CNN14 checkpoint of these settings.
    """
    path, sample_rate, hop_length, fmin, fmax = check_params(
        checkpoint=checkpoint, sample_rate=sample_rate, hop_length=hop_length, fmin=fmin, fmax=fmax)
    return _network(_pretrained.checkpoint_digest(path), str(path.resolve()), sample_rate, hop_length, fmin, fmax)


def compute(y, *, sr, checkpoint=None, sample_rate=32000, hop_length=320, fmin=50.0, fmax=14000.0, memo=None):
    """CNN14 embeddings of each clip.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y``; clips are resampled to ``sample_rate``.
    checkpoint : str or os.PathLike
        The CNN14 ``.pth`` file (required).
    sample_rate : int > 0
        The network's input rate (32000 for ``Cnn14``).
    hop_length : int > 0
        STFT hop at ``sample_rate`` (320).
    fmin, fmax : float
        Mel filterbank range in Hz (50, 14000), checked against the checkpoint's filterbank.
    memo : Memo or None
        Unused: nothing here is shared with other kinds.

    Returns
    -------
    E : np.ndarray [shape=(..., embedding_size)], float32

    Raises
    ------
    ParameterError
        Naming a bad parameter, a missing file, or a checkpoint that is not CNN14's layout.
    """
    import torch

    sr = _common.check_sr(sr)
    y = _common.as_audio(y)
    net = network(checkpoint, sample_rate=sample_rate, hop_length=hop_length, fmin=fmin, fmax=fmax)

    def embed_one(clip):
        clip = _pretrained.resample_clip(clip, sr, int(sample_rate))
        return net.embed(torch.from_numpy(clip)[None])[0].numpy()

    return _pretrained.embed_clips(y, embed_one, net.fc1.out_features)
