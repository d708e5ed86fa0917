"""The classical estimators, with their default parameters, learn from real audio features.

MFCCs are computed here with librosa directly (the estimators do not depend on the store): first
on a small synthetic set of three sound classes, then, when the shared copy of the Free Spoken
Digit Dataset is present, on a few hundred recordings cross-validated by speaker.
"""

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy.ndimage import zoom
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score

import estimators

#: The classical estimators: those taking flat vectors (they flatten any sample themselves).
CLASSICAL = tuple(name for name in estimators.available()
                  if estimators.get_spec(name).input == "flat")
SR = 8000
FSDD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fsdd" / "recordings"

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mfcc(y):
    """MFCC of 8 kHz audio: float32 [shape=(20, n_frames)]."""
    coefficients = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20, n_fft=512, hop_length=128, n_mels=40)
    return coefficients.astype(np.float32)


def synth_clip(kind, rng, *, seconds=0.5):
    """A 0.5 s clip at 8 kHz of one of three kinds, with a random pitch, gain and onset."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(150, 600)
    if kind == "tone":  # a harmonic tone: f0 and two overtones
        y = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    elif kind == "chirp":  # a sweep from f0 to 4 f0
        y = np.sin(2 * np.pi * (f0 * t + 1.5 * f0 * t**2 / seconds))
    else:  # a noise burst
        y = rng.standard_normal(len(t))
    envelope = np.zeros_like(t)
    onset = rng.integers(0, len(t) // 4)
    length = rng.integers(len(t) // 2, len(t) - onset)
    envelope[onset:onset + length] = np.hanning(length)
    y = rng.uniform(0.2, 0.9) * envelope * y / np.abs(y).max() + 0.01 * rng.standard_normal(len(t))
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_mfcc():
    """MFCCs of 3 classes x 20 clips: X [shape=(60, 20, 32)], y (str)."""
    rng = np.random.default_rng(0)
    kinds = np.repeat(["tone", "chirp", "noise"], 20)
    return np.stack([mfcc(synth_clip(kind, rng)) for kind in kinds]), kinds


@pytest.mark.parametrize("name", CLASSICAL)
def test_beats_chance_on_synthetic_sounds(name, synthetic_mfcc):
    X, y = synthetic_mfcc
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    accuracy = cross_val_score(estimators.build(name), X, y, cv=cv).mean()
    assert accuracy > 0.8  # chance: 1/3


@pytest.fixture(scope="module")
def spoken_digits():
    """MFCCs of 300 FSDD recordings (6 speakers x 10 digits x takes 0-4).

    Leading and trailing silence is trimmed and each MFCC resized to 16 frames (the words last
    0.1 to 2 s), as the store resizes spectrograms. Returns X [shape=(300, 20, 16)], float32,
    y (the digit, str) and groups (the speaker).
    """
    if not FSDD.is_dir():
        pytest.skip(f"the Free Spoken Digit Dataset is not at {FSDD}")
    paths = sorted(p for p in FSDD.glob("*.wav") if int(p.stem.rsplit("_", 1)[1]) < 5)
    X, y, groups = [], [], []
    for path in paths:
        audio, sr = sf.read(path, dtype="float32")
        assert sr == SR
        coefficients = mfcc(librosa.effects.trim(audio, top_db=30)[0])
        X.append(zoom(coefficients, (1, 16 / coefficients.shape[1]), order=1)[:, :16])
        digit, speaker, _ = path.stem.split("_")
        y.append(digit)
        groups.append(speaker)
    return np.stack(X), np.array(y), np.array(groups)


@pytest.mark.parametrize("name", CLASSICAL)
def test_beats_chance_on_unseen_speakers(name, spoken_digits):
    X, y, groups = spoken_digits
    assert X.shape == (300, 20, 16) and len(np.unique(groups)) == 6
    # Train on 4 speakers, test on the other 2. Chance is 0.1; the defaults score about 0.5
    # (svm, xgboost) to 0.7 (softmax) in this speaker-independent protocol.
    accuracy = cross_val_score(estimators.build(name), X, y, groups=groups, cv=GroupKFold(3)).mean()
    assert accuracy > 0.35
