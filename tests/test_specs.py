"""Feature requests and augmented copies as frozen, validated specifications with their store keys."""

import dataclasses
import doctest
import pickle

import pytest

from featurestore import ParameterError, WaveformAugmentation, features, specs
from featurestore.audio import AUDIO_DEFAULTS
from featurestore.registry import UnknownNameError
from featurestore.specs import AugmentSpec, FeatureRequest

AUDIO = dict(AUDIO_DEFAULTS)  # sr=22050, duration=4.0, pad_mode="zero", normalize=False
AUDIO_8K = {**AUDIO, "sr": 8000, "duration": 1.0}

# Keys computed by featurestore.store.feature_key / augment_key before the specs existed (commit
# 7306cf3), pasted as literals: a spec must address exactly the sets already stored.
MEL_KEY = "7d92b3f4a69a11b24811ae9bbbe9c48f43b2e795"  # mel, its defaults, AUDIO, float32
MFCC_KEY = "a1fd3d8846e1ed85e184f92fdc38c89773460efa"  # mfcc n_mfcc=13, AUDIO_8K, float16
PITCH_KEY = "06b6c05518e801c0c232299e6871a8efe3d29248"  # MEL_KEY's copies: pitch_shift=2, 2 copies, seed 0
MIXED_KEY = "308eee869bd7f0911b81093476bd51e12cceb205"  # time_stretch=0.1, noise_snr=20, 1 copy, seed 7


def test_store_keys_are_unchanged():
    assert FeatureRequest("mel", {}, AUDIO).key == MEL_KEY
    assert FeatureRequest("mel", features.resolve_params("mel"), AUDIO).key == MEL_KEY  # full or overrides
    assert FeatureRequest("mfcc", {"n_mfcc": 13}, AUDIO_8K, "float16").key == MFCC_KEY
    assert AugmentSpec(WaveformAugmentation(pitch_shift=2), copies=2, seed=0).key(MEL_KEY) == PITCH_KEY
    mixed = AugmentSpec(WaveformAugmentation(time_stretch=0.1, noise_snr=20), copies=1, seed=7)
    assert mixed.key(MEL_KEY) == MIXED_KEY


def test_keys_follow_every_field():
    base = FeatureRequest("mel", {}, AUDIO)
    others = [FeatureRequest("mel", {"n_mels": 61}, AUDIO), FeatureRequest("mel", {}, {**AUDIO, "sr": 22051}),
              FeatureRequest("mel", {}, AUDIO, "float16"), FeatureRequest("stft", {}, AUDIO)]
    assert len({base.key, *(o.key for o in others)}) == 5
    copies = AugmentSpec(WaveformAugmentation(gain_db=3), copies=1, seed=0)
    assert len({copies.key(MEL_KEY), dataclasses.replace(copies, seed=1).key(MEL_KEY),
                dataclasses.replace(copies, copies=2).key(MEL_KEY), copies.key(MFCC_KEY)}) == 4


def test_request_is_frozen_complete_and_comparable():
    request = FeatureRequest("mel", {"n_mels": 40}, AUDIO)
    assert request.params == {**features.resolve_params("mel"), "n_mels": 40}
    assert request == FeatureRequest("mel", request.params, AUDIO) and hash(request) == hash(request.key)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.kind = "mfcc"
    assert pickle.loads(pickle.dumps(request)) == request


@pytest.mark.parametrize("kind, params, audio, dtype, error, message", [
    ("mell", {}, AUDIO, "float32", UnknownNameError, "unknown feature kind 'mell'. Did you mean 'mel'"),
    ("mel", {"n_mel": 3}, AUDIO, "float32", UnknownNameError, "Did you mean 'n_mels'"),
    ("mel", {}, {"sr": 8000}, "float32", ParameterError, "audio settings lack duration, pad_mode, normalize"),
    ("mel", {}, {**AUDIO, "rate": 1}, "float32", UnknownNameError, "unknown audio parameter 'rate'"),
    ("mel", {}, {**AUDIO, "sr": 0}, "float32", ParameterError, "sr=0"),
    ("mel", {}, AUDIO, "float64", ParameterError, "dtype='float64' must be one of float32, float16"),
    ("mel", {"fmax": object()}, AUDIO, "float32", ParameterError, "not JSON-serialisable"),
])
def test_request_is_checked_once_when_made(kind, params, audio, dtype, error, message):
    with pytest.raises(error, match=message):
        FeatureRequest(kind, params, audio, dtype)


def test_request_for_a_dataset_takes_its_audio_defaults(urbansound_root):
    from featurestore import load_dataset

    ds = load_dataset("urbansound8k", urbansound_root)
    request = FeatureRequest.for_dataset(ds, "mfcc", audio={"sr": 8000})
    assert request.audio == {**AUDIO, "duration": 4.0, "sr": 8000}


@pytest.mark.parametrize("kwargs, message", [
    ({"augmentation": {"pitch_shift": 2}}, "must be a WaveformAugmentation"),
    ({"augmentation": WaveformAugmentation()}, "every bound off"),
    ({"augmentation": WaveformAugmentation(gain_db=1), "copies": 0}, "copies=0 must be a positive integer"),
    ({"augmentation": WaveformAugmentation(gain_db=1), "copies": True}, "copies=True"),
    ({"augmentation": WaveformAugmentation(gain_db=1), "seed": -1}, "seed=-1 must be an integer >= 0"),
])
def test_augment_spec_is_checked_once_when_made(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        AugmentSpec(**kwargs)


def test_augment_spec_records_the_settings_the_store_stored():
    spec = AugmentSpec(WaveformAugmentation(pitch_shift=2), copies=2, seed=0)
    assert spec.settings() == {"time_stretch": 0.0, "pitch_shift": 2.0, "noise_snr": None, "gain_db": 0.0,
                               "time_shift": 0.0, "copies": 2, "seed": 0}


def test_docstring_examples():
    failed, attempted = doctest.testmod(specs, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0
