"""Audio Spectrogram Transformer (AST) embeddings from a local Hugging Face folder.

Gong et al.'s AST, through Hugging Face ``transformers`` (optional extra ``transformers``:
``pip install '.[transformers]'``), read from a folder in the publisher's Hugging Face layout
(``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``preprocessor_config.json``),
for example a local copy of ``MIT/ast-finetuned-audioset-10-10-0.4593``; nothing is downloaded
(``local_files_only=True``). The folder's weights must load into ``ASTModel`` without a missing
key; the only keys allowed to be left over are the AudioSet classifier's (``classifier.*``) of an
``ASTForAudioClassification`` folder, as published.

Input pipeline, all of it from the folder's ``preprocessor_config.json`` (``ASTFeatureExtractor``;
the published values in brackets):

1. each clip (mono float32 at the data set's ``sr``) is resampled to the extractor's
   ``sampling_rate`` (16 kHz) with soxr's high-quality filter, not rescaled;
2. Kaldi-style log-mel filter bank: 25 ms Hann frames (400 samples, 512-point FFT) every 10 ms,
   DC offset removed, pre-emphasis 0.97, ``num_mel_bins`` (128) bands, natural log with a floor of
   float32's epsilon. ``transformers`` computes it with ``torchaudio.compliance.kaldi.fbank`` when
   torchaudio is installed and with its own numpy code otherwise; the two agree to float32 rounding
   but not bit for bit, so install the same packages wherever a store is shared;
3. padded with zeros or cut to ``max_length`` frames (1024 frames: 10.24 s), then normalised as
   ``(x - mean) / (2 * std)`` with AudioSet's statistics (mean -4.27, std 4.57).

Embedding: ``pooler_output`` of ``ASTModel``, the mean of the final layer-normalised [CLS] and
distillation tokens (768 values for the published model), in evaluation mode.

The store keys the feature set on the SHA-256 of the folder's files and their names, not on its
path (see :mod:`featurestore.features._pretrained`). Each clip goes through the network alone.

Output: float32 of shape ``(..., hidden_size)``.

References
----------
Y. Gong, Y.-A. Chung, J. Glass, "AST: Audio Spectrogram Transformer", Interspeech 2021.
"""

import warnings
from contextlib import contextmanager
from functools import lru_cache

from featurestore.errors import ParameterError
from featurestore.features import _common, _pretrained

DEFAULTS = {"checkpoint": None}
DESCRIPTION = "Audio Spectrogram Transformer embedding (pooled output) from a local Hugging Face folder"
VERSION = 1
#: Parameters naming a user's folder: required, and keyed in the store by its files' SHA-256.
FILE_PARAMS = ("checkpoint",)
TEST_PARAMS = {}

#: Keys of a published folder that ASTModel does not use: the AudioSet classification head.
_HEAD_PREFIX = "classifier."


@lru_cache(maxsize=2)
def _network(digest, path):
    """``(feature_extractor, model)`` of the folder, once per content (``digest`` keys it)."""
    try:
        from transformers import ASTConfig, ASTFeatureExtractor, ASTModel
    except ImportError:
        raise ParameterError("feature kind 'ast' needs the transformers package: pip install '.[transformers]'") \
            from None
    where = f"checkpoint={path!r}"
    try:
        with _quiet():
            config = ASTConfig.from_pretrained(path, local_files_only=True)
            extractor = ASTFeatureExtractor.from_pretrained(path, local_files_only=True)
            model, info = ASTModel.from_pretrained(path, config=config, local_files_only=True,
                                                   output_loading_info=True)
    except (OSError, ValueError) as exc:  # no config, no weights, unreadable files
        raise ParameterError(f"{where} is not a Hugging Face AST folder: {exc}") from None
    missing = sorted(info["missing_keys"])
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.startswith(_HEAD_PREFIX))
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    if missing or unexpected or mismatched:
        raise ParameterError(f"{where} does not have ASTModel's layout: missing keys {missing[:5]}, "
                             f"unexpected keys {unexpected[:5]}, mismatched {mismatched[:5]}")
    if extractor.max_length != config.max_length or extractor.num_mel_bins != config.num_mel_bins:
        raise ParameterError(f"{where}: preprocessor_config.json (max_length={extractor.max_length}, num_mel_bins="
                             f"{extractor.num_mel_bins}) does not match config.json (max_length={config.max_length}, "
                             f"num_mel_bins={config.num_mel_bins})")
    return extractor, model.eval()


@contextmanager
def _quiet():
    """transformers' loading report, progress bars and the published extractor's warning, silenced.

    The keys are checked here instead; the warning ("a mel filter has all zero values") comes from
    the published 128 bands on a 512-point FFT, which AST was trained with.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def network(checkpoint):
    """``(ASTFeatureExtractor, ASTModel)`` of the folder ``checkpoint``, the model in evaluation mode (cached).

    Raises
    ------
    ParameterError
        If the folder is missing, incomplete, or not in ``ASTModel``'s layout.
    """
    path = _pretrained.check_path("checkpoint", checkpoint, folder=True)
    return _network(_pretrained.checkpoint_digest(path), str(path.resolve()))


def compute(y, *, sr, checkpoint=None, memo=None):
    """AST embeddings of each clip.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)], floating
        One clip or a batch of equal-length clips.
    sr : number > 0
        Sampling rate of ``y``; clips are resampled to the extractor's ``sampling_rate``.
    checkpoint : str or os.PathLike
        The Hugging Face folder (required).
    memo : Memo or None
        Unused: nothing here is shared with other kinds.

    Returns
    -------
    E : np.ndarray [shape=(..., hidden_size)], float32

    Raises
    ------
    ParameterError
        Naming a bad parameter, a missing folder, or weights not in AST's layout.
    """
    import torch

    sr = _common.check_sr(sr)
    y = _common.as_audio(y)
    extractor, model = network(checkpoint)
    rate = extractor.sampling_rate

    def embed_one(clip):
        clip = _pretrained.resample_clip(clip, sr, rate)
        inputs = extractor(clip, sampling_rate=rate, return_tensors="np")["input_values"]  # (1, frames, mels)
        return model(torch.from_numpy(inputs)).pooler_output[0].numpy()

    return _pretrained.embed_clips(y, embed_one, model.config.hidden_size)
