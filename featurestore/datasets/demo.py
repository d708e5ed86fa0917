"""The built-in demo data set: short instrument notes and drum hits rendered from a General MIDI SoundFont.

:func:`generate` writes a small data set in the spirit of instrument-recognition corpora, made on the
spot, with no network, from the same seed always the same bytes. Eight classes (:data:`LABELS`):
``guitar``, ``piano``, ``violin``, ``saxophone`` and ``flute`` (pitched notes), and ``kick``, ``snare``
and ``hihat`` (drum hits), each with ``clips_per_class`` clips (40 by default: 320 clips, about 17 MB),
spread over 5 folds.

How the sounds are made
-----------------------
The sound source is ``TimGM6mb.sf2``, the General MIDI SoundFont that ships inside the ``pretty-midi``
package (``pretty_midi/TimGM6mb.sf2``), so nothing is downloaded. A SoundFont holds short *recorded*
samples of real instruments plus instructions for playing them (the sample's root key, loop points,
tuning, gain, envelope). The file is parsed with ``sf2utils`` and each note is rendered the way a
sample-based synthesizer does it, in a simplified form:

1. For the preset (General MIDI program, or drum kit in bank 128), key and velocity, every matching
   preset zone and instrument zone is found; instrument-level generators override the instrument's
   global zone and preset-level generators are added to them, as the SoundFont 2.01 specification says.
2. Each zone's sample is pitch-shifted from its root key to the requested key (plus the zone's coarse
   and fine tuning, the sample's pitch correction and the session's tuning) by resampling with
   ``soxr``; a sample with loop points is looped so that a sustained note lasts as long as needed.
3. The zone's volume envelope (delay, attack, hold, decay, sustain, release; key-scaled hold and
   decay) shapes the note, with the note released before the clip ends, and the zone's attenuation
   applies. Filters, LFOs, modulation envelopes, chorus, reverb and panning are not rendered.
4. The note's peak level follows its velocity (``40 log10(velocity / 127)`` dB, the General MIDI
   convention) on top of a per-session recording level, and background noise (white, pink, brown or
   mains hum) is added at a drawn signal-to-noise ratio between 10 and 40 dB. The clip is scaled down
   if needed so that its peak stays below 0.99 (no clipping) and written as mono 16-bit PCM WAV at
   22050 Hz.

Each class draws from several presets of the font (four pianos, four guitars, four saxophones, four
flutes; the violin, viola and fiddle programs, which share the font's violin samples with different
tuning and envelopes; five or six drum kits), and from a range of keys sensible for the instrument
(for drums: kick keys 35/36, snare 38/40, hi-hat 42/44/46). Each session detunes its notes by up to
20 cents (drums: up to 1.5 semitones). Note lengths are 0.3 to 2.0 s, with 0 to 50 ms of background before the onset.

Sessions, groups and folds
--------------------------
Clips are recorded in *sessions* of about four clips: one preset, one noise colour, one recording
level, one tuning and a typical SNR per session. The ``group`` column names the session (class,
session index, preset), and all clips of a session share one fold, so cross-validation by ``fold``
never puts two clips of a session on both sides of a split. Every fold holds two sessions of every
class at the default size (one session per fold and class at the smallest size), so the folds are
balanced to within one clip per class. Presets rotate over sessions, so a test fold holds presets
also seen in training, but never the same session.

The manifest ``manifest.csv`` lists one clip per row: ``path`` (relative to the manifest, with
``/``), ``label``, ``fold`` (1 to 5) and ``group``, then ``preset`` (the font's preset name),
``bank`` and ``program`` (General MIDI bank and program; bank 128 is the drum kits), ``midi_pitch``
(the key played), ``velocity`` (40 to 127), ``tuning_cents`` (the session's detuning; the sounding pitch
is ``midi_pitch + tuning_cents / 100``), ``duration_s``, ``onset_s``, ``snr_db`` and ``noise``.

License of the sounds
---------------------
TimGM6mb.sf2 (about 6 MB) is a General MIDI SoundFont by Tim Brechbill, distributed with MuseScore and
packaged by Debian (``timgm6mb-soundfont``) under the GNU General Public License, version 2. It ships
inside the ``pretty-midi`` package, which uses it to synthesize MIDI files; pretty-midi's own MIT
license does not cover it, and neither pretty-midi's metadata nor the font's INFO chunk states its
license, so the GPL-2 attribution above comes from MuseScore and Debian. This module only reads the
file from the installed package and does not redistribute it. The clips that :func:`generate` writes
are renderings of its samples: treat them as derived from a GPL-2 work if you publish them, and
regenerate them (which takes seconds) rather than distributing them.
"""

import contextlib
import csv
import importlib.util
import logging
import math
import os
import re
import tempfile
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
import soxr

from featurestore.errors import DatasetError, ParameterError

SAMPLE_RATE = 22050
"""Sample rate of the generated WAV files, in Hz."""

N_FOLDS = 5
"""Number of predefined folds; fold numbers are 1 to 5."""

MANIFEST_NAME = "manifest.csv"
"""File name of the manifest that :func:`generate` writes last."""

COLUMNS = ("path", "label", "fold", "group", "preset", "bank", "program", "midi_pitch", "velocity",
           "tuning_cents", "duration_s", "onset_s", "snr_db", "noise")
"""Columns of the manifest, in order."""

NOISE_KINDS = ("white", "pink", "brown", "hum")
"""Background noise kinds; one per session."""

DURATION_RANGE_S = (0.3, 2.0)
SNR_RANGE_DB = (10.0, 40.0)
MAX_ONSET_S = 0.05
CLIPS_PER_SESSION = 4
PEAK_LIMIT = 0.99


@dataclass(frozen=True)
class _Source:
    """One preset of the font that a class draws from, with the keys it may play."""

    bank: int
    program: int
    keys: tuple


@dataclass(frozen=True)
class _ClassSpec:
    """How to make the clips of one class."""

    label: str
    sources: tuple
    max_tuning_cents: float


def _melodic(program, low, high):
    return _Source(0, program, tuple(range(low, high + 1)))


def _kit(program, *keys):
    return _Source(128, program, keys)


# Key ranges are the instruments' usual ranges, clipped to the font's zones; keys without a zone (the
# alto sax lacks key 64) are skipped. Kits: 0 Standard, 8 Room, 16 Power, 24 Electronic, 25 TR-808,
# 32 Jazz, 40 Brush, 48 Orchestra. Room is left out of the snares (it layers a bass drum on keys
# 36-41), Brush's key 40 (a brush swirl) too.
_CLASSES = (
    _ClassSpec("guitar", (_melodic(24, 40, 81), _melodic(25, 40, 81), _melodic(26, 40, 79),
                         _melodic(27, 40, 81)), 20.0),
    _ClassSpec("piano", (_melodic(0, 33, 96), _melodic(1, 33, 96), _melodic(2, 33, 96),
                        _melodic(3, 40, 88)), 20.0),
    _ClassSpec("violin", (_melodic(40, 55, 96), _melodic(41, 48, 88), _melodic(110, 55, 93)), 20.0),
    _ClassSpec("saxophone", (_melodic(64, 56, 87), _melodic(65, 49, 80), _melodic(66, 44, 75),
                            _melodic(67, 36, 69)), 20.0),
    _ClassSpec("flute", (_melodic(73, 60, 96), _melodic(72, 74, 103), _melodic(74, 60, 91),
                        _melodic(75, 60, 91)), 20.0),
    _ClassSpec("kick", (_kit(0, 35, 36), _kit(8, 35, 36), _kit(16, 35, 36), _kit(24, 35, 36),
                       _kit(25, 35, 36), _kit(32, 35, 36)), 150.0),
    _ClassSpec("snare", (_kit(0, 38, 40), _kit(16, 38, 40), _kit(24, 38, 40), _kit(25, 38, 40),
                        _kit(32, 38, 40), _kit(40, 38)), 150.0),
    _ClassSpec("hihat", (_kit(0, 42, 44, 46), _kit(24, 42, 44, 46), _kit(25, 42, 44, 46),
                        _kit(32, 42, 44, 46), _kit(48, 42, 44, 46)), 150.0),
)

LABELS = tuple(spec.label for spec in _CLASSES)
"""The class labels, in the order clips are generated."""


def generate(directory, *, seed=0, clips_per_class=40):
    """Write the demo data set into ``directory`` and return the path of its manifest.

    Writes ``directory/audio/<label>/<label>_<NNN>.wav`` (mono, 16-bit PCM, 22050 Hz) and then,
    last and atomically, ``directory/manifest.csv``, so a directory holding ``manifest.csv`` is
    complete. An existing manifest is removed first; existing WAV files of the same names are
    overwritten. The output depends only on ``seed`` and ``clips_per_class`` (and on the installed
    SoundFont and resampler): the same arguments give identical files.

    Parameters
    ----------
    directory : str or os.PathLike
        Where to write; created if missing.
    seed : int, default=0
        Seed of :func:`numpy.random.default_rng`; a non-negative integer.
    clips_per_class : int, default=40
        Clips of each of the :data:`LABELS`; at least 5 (:data:`N_FOLDS`), so that every fold holds
        every class. The default gives 320 clips, 10 sessions per class.

    Returns
    -------
    manifest : pathlib.Path
        ``directory/manifest.csv``, with the columns of :data:`COLUMNS`.

    Raises
    ------
    ParameterError
        If ``seed`` or ``clips_per_class`` is not valid.
    DatasetError
        If the SoundFont cannot be found or read, or a preset yields no sound.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    if (isinstance(clips_per_class, bool) or not isinstance(clips_per_class, (int, np.integer))
            or clips_per_class < N_FOLDS):
        raise ParameterError(f"clips_per_class={clips_per_class!r} must be an integer >= {N_FOLDS}, "
                             "so that every fold holds every class")
    directory = Path(directory)
    manifest = directory / MANIFEST_NAME
    directory.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)

    font = _SoundFont.load(soundfont_path())
    rows = []
    for class_index, spec in enumerate(_CLASSES):
        (directory / "audio" / spec.label).mkdir(parents=True, exist_ok=True)
        rows.extend(_generate_class(font, spec, class_index, int(seed), int(clips_per_class), directory))
    _write_manifest(manifest, rows)
    return manifest


# --------------------------------------------------------------------------- the data set registry entry
NAME = "demo"
DESCRIPTION = ("built in: 8 instrument classes rendered from the TimGM6mb SoundFont, 320 clips of "
               "0.3-2 s, 5 folds; made on first use in <store>/datasets/demo")
AUDIO_DEFAULTS = {"duration": 2.0}
OPTIONS = {}
CREATES_ROOT = True
SOURCE_COLUMNS = {"clip_id": "path"}


def default_root():
    """``<store root>/datasets/demo``: the demo's audio lives beside the features made from it."""
    from featurestore.store import default_root as store_root

    return store_root() / "datasets" / "demo"


def load_table(root):
    """Clip table of the demo data set in ``root``, generating it there first if needed."""
    from filelock import FileLock

    from featurestore.datasets import read_metadata_csv

    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".generate.lock")):  # two first uses at once generate it once
            if not manifest.is_file():
                generate(root)
    table = read_metadata_csv(manifest, ("path", "label", "fold", "group"), NAME,
                              text=("path", "label", "fold", "group"))
    table.insert(0, "clip_id", table["path"].map(lambda p: Path(p).stem))
    table["path"] = [os.path.join(root, p) for p in table["path"]]
    return table

def soundfont_path():
    """Path of ``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package (not imported).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    DatasetError
        If ``pretty_midi`` is not installed or the file is not in it.
    """
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        raise DatasetError("the demo data set needs the SoundFont of the 'pretty-midi' package: "
                           "pip install pretty-midi")
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise DatasetError(f"the demo data set needs {path}, which this pretty-midi install lacks; "
                           "reinstall pretty-midi>=0.2.10")
    return path


# --------------------------------------------------------------------------- sessions and clips

def _generate_class(font, spec, class_index, seed, clips_per_class, directory):
    """Render and write the clips of one class; return their manifest rows."""
    n_sessions = N_FOLDS * max(1, round(clips_per_class / (N_FOLDS * CLIPS_PER_SESSION)))
    # Sessions s and s + 5, s + 10, ... share fold s % 5 + 1; the clips left over after an even split
    # go to sessions that start at a different fold for each class, so the folds' totals stay even.
    extra = clips_per_class % n_sessions
    sizes = [clips_per_class // n_sessions + ((s - class_index) % n_sessions < extra)
             for s in range(n_sessions)]
    class_rng = np.random.default_rng([seed, class_index])
    first_source = int(class_rng.integers(len(spec.sources)))
    rows = []
    clip_index = 0
    for session in range(n_sessions):
        source = spec.sources[(first_source + session) % len(spec.sources)]
        keys = [k for k in source.keys if font.zones(source.bank, source.program, k, 100)]  # skip gaps
        rng = np.random.default_rng([seed, class_index, session])
        noise = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
        snr_centre = rng.uniform(SNR_RANGE_DB[0] + 2.0, SNR_RANGE_DB[1] - 2.0)
        level_db = rng.uniform(-18.0, -3.0)
        tuning = float(np.round(rng.uniform(-spec.max_tuning_cents, spec.max_tuning_cents), 1))
        preset_name = font.preset_name(source.bank, source.program)
        group = f"{spec.label}-s{session + 1:02d}-{_slug(preset_name)}"
        for _ in range(sizes[session]):
            key = int(rng.choice(keys))
            velocity = int(rng.integers(40, 128))
            n_samples = int(round(rng.uniform(*DURATION_RANGE_S) * SAMPLE_RATE))
            onset = int(round(rng.uniform(0.0, MAX_ONSET_S) * SAMPLE_RATE))
            release_at = onset + int(round(rng.uniform(0.6, 0.9) * (n_samples - onset)))
            snr_db = float(np.round(np.clip(snr_centre + rng.uniform(-2.0, 2.0), *SNR_RANGE_DB), 1))
            note = font.render(source.bank, source.program, key, velocity, n_samples - onset,
                               release_at - onset, tuning)
            y = np.zeros(n_samples)
            y[onset:] = note
            peak_db = level_db + 40.0 * math.log10(velocity / 127.0)
            y *= 10.0 ** (peak_db / 20.0) / np.max(np.abs(y))
            y = _add_noise(y, rng, noise, snr_db, onset)
            y *= min(1.0, PEAK_LIMIT / np.max(np.abs(y)))
            _check_clip(y, spec.label, clip_index)
            relative = f"audio/{spec.label}/{spec.label}_{clip_index:03d}.wav"
            _write_wav(directory / relative, y)
            rows.append({
                "path": relative, "label": spec.label, "fold": session % N_FOLDS + 1, "group": group,
                "preset": preset_name, "bank": source.bank, "program": source.program,
                "midi_pitch": key, "velocity": velocity, "tuning_cents": f"{tuning:.1f}",
                "duration_s": f"{n_samples / SAMPLE_RATE:.6f}", "onset_s": f"{onset / SAMPLE_RATE:.6f}",
                "snr_db": f"{snr_db:.1f}", "noise": noise,
            })
            clip_index += 1
    return rows


def _slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _add_noise(y, rng, kind, snr_db, onset):
    """``y`` plus background noise of ``kind`` at ``snr_db`` dB below the note's power.

    The note's power is measured from its onset over the span that holds 95 % of its energy, so that
    a short drum hit and a held note of equal loudness get equally loud noise.
    """
    note = y[onset:]
    energy = np.cumsum(note ** 2)
    span = int(np.searchsorted(energy, 0.95 * energy[-1])) + 1
    power = energy[span - 1] / span
    noise = _noise(rng, kind, len(y))
    return y + noise * math.sqrt(power / 10.0 ** (snr_db / 10.0))


def _noise(rng, kind, n):
    """Unit-power noise of ``kind`` (one of :data:`NOISE_KINDS`), float64 of shape ``(n,)``."""
    n_fft = scipy.fft.next_fast_len(n, real=True)  # noise is shaped in a longer, fast-to-transform frame
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    spectrum = scipy.fft.rfft(rng.standard_normal(n_fft))
    if kind == "hum":  # mains hum: a few harmonics of 50 or 60 Hz over a faint brown floor
        t = np.arange(n) / SAMPLE_RATE
        mains = 50.0 if rng.random() < 0.5 else 60.0
        hum = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * h * mains * t + rng.uniform(0, 2 * np.pi))
                  for h in range(1, 8))
        floor = scipy.fft.irfft(spectrum / np.maximum(freqs, 20.0), n_fft)[:n]
        noise = hum / np.std(hum) + 0.3 * floor / np.std(floor)
    else:
        exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f ** -exponent
        noise = scipy.fft.irfft(spectrum / np.maximum(freqs, 20.0) ** exponent, n_fft)[:n]
    return noise / np.sqrt(np.mean(noise ** 2))


def _check_clip(y, label, index):
    if not np.all(np.isfinite(y)):
        raise DatasetError(f"demo data set: clip {index} of {label!r} has non-finite samples")
    if np.max(np.abs(y)) < 1e-3:
        raise DatasetError(f"demo data set: clip {index} of {label!r} is silent")


def _write_wav(path, y):
    """Write ``y`` (floats in [-1, 1]) as a mono 16-bit PCM WAV file with a plain 44-byte header."""
    pcm = np.round(np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with wave.open(str(temporary), "wb") as file:
            file.setnchannels(1)
            file.setsampwidth(2)
            file.setframerate(SAMPLE_RATE)
            file.writeframes(pcm.tobytes())
        os.replace(temporary, path)  # a reader never sees a half-written file
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _write_manifest(path, rows):
    handle, temporary = tempfile.mkstemp(prefix=".manifest-", suffix=".csv.tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# --------------------------------------------------------------------------- SoundFont rendering

# SoundFont 2.01 generator numbers used here, with their defaults.
_GEN_DEFAULTS = {
    0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 12: 0, 45: 0, 50: 0,  # sample address offsets
    33: -12000, 34: -12000, 35: -12000, 36: -12000, 37: 0, 38: -12000,  # volume envelope
    39: 0, 40: 0,  # key number to volume envelope hold / decay
    48: 0,  # initial attenuation, centibels
    51: 0, 52: 0,  # coarse tune (semitones), fine tune (cents)
    54: 0,  # sample modes: 0 no loop, 1 loop, 3 loop until release
    56: 100,  # scale tuning, cents per key
    58: -1,  # overriding root key
}
_NOT_ADDITIVE = {0, 1, 2, 3, 4, 12, 45, 50, 54, 58}  # generators a preset zone may not offset
_GEN_INSTRUMENT, _GEN_KEY_RANGE, _GEN_VEL_RANGE, _GEN_SAMPLE = 41, 43, 44, 53


@dataclass(frozen=True)
class _Zone:
    """One sample as played by one instrument zone: its data and the generators that apply."""

    data: np.ndarray  # float32 in [-1, 1)
    rate: int
    loop: tuple  # (start, end) of the sample's loop, relative to ``data``
    original_pitch: int
    pitch_correction: int
    gens: dict


class _SoundFont:
    """The zones of a SoundFont, read once with ``sf2utils`` into plain arrays and dicts."""

    def __init__(self, presets, names):
        self._presets = presets  # (bank, program) -> [(key range, vel range, [(key, vel, _Zone)])]
        self._names = names

    @classmethod
    def load(cls, path):
        """Parse the SoundFont at ``path``; :class:`DatasetError` if it cannot be read."""
        try:
            with _quiet_sf2utils(), open(path, "rb") as file:
                from sf2utils.sf2parse import Sf2File

                return cls._from_sf2(Sf2File(file))
        except (OSError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise DatasetError(f"cannot read the SoundFont {path}: {exc}") from exc

    @classmethod
    def _from_sf2(cls, sf2):
        samples = {}

        def sample(index):
            if index not in samples:
                header = sf2.samples[index]
                if header.sample_width != 2:
                    raise DatasetError(f"SoundFont sample {header.name!r} is not 16-bit")
                raw = np.frombuffer(header.raw_sample_data, dtype="<i2")
                samples[index] = (raw.astype(np.float32) / 32768.0, header)
            return samples[index]

        wanted = {(s.bank, s.program) for spec in _CLASSES for s in spec.sources}
        presets, names = {}, {}
        for preset in sf2.presets:
            if preset.name == "EOP" or (preset.bank, preset.preset) not in wanted:
                continue
            names[(preset.bank, preset.preset)] = preset.name
            global_gens, zones = _split_global(preset.bags, _GEN_INSTRUMENT)
            layers = []
            for bag in zones:
                preset_gens = {**global_gens, **_gens(bag)}
                instrument = sf2.instruments[bag.gens[_GEN_INSTRUMENT].word]
                inst_global, inst_zones = _split_global(instrument.bags, _GEN_SAMPLE)
                instrument_zones = []
                for inst_bag in inst_zones:
                    gens = {**_GEN_DEFAULTS, **inst_global, **_gens(inst_bag)}
                    for oper, amount in preset_gens.items():
                        if oper in _GEN_DEFAULTS and oper not in _NOT_ADDITIVE:
                            gens[oper] += amount
                    data, header = sample(inst_bag.gens[_GEN_SAMPLE].word)
                    loop = (int(header.start_loop), int(header.end_loop))
                    zone = _Zone(data, int(header.sample_rate), loop, int(header.original_pitch),
                                 int(header.pitch_correction), gens)
                    ranges = (_range(inst_bag, _GEN_KEY_RANGE), _range(inst_bag, _GEN_VEL_RANGE))
                    instrument_zones.append((*ranges, zone))
                layers.append((_range(bag, _GEN_KEY_RANGE), _range(bag, _GEN_VEL_RANGE), instrument_zones))
            presets[(preset.bank, preset.preset)] = layers
        missing = sorted(wanted - set(presets))
        if missing:
            raise DatasetError(f"the SoundFont lacks the preset(s) (bank, program) {missing}")
        return cls(presets, names)

    def preset_name(self, bank, program):
        """The font's name of preset ``program`` in ``bank``."""
        return self._names[(bank, program)]

    def zones(self, bank, program, key, velocity):
        """The zones that sound for ``key`` at ``velocity``."""
        found = []
        for key_range, vel_range, instrument_zones in self._presets[(bank, program)]:
            if not (_within(key, key_range) and _within(velocity, vel_range)):
                continue
            found.extend(zone for zkeys, zvels, zone in instrument_zones
                         if _within(key, zkeys) and _within(velocity, zvels))
        return found

    def render(self, bank, program, key, velocity, n_samples, release_at, tuning_cents=0.0):
        """Render one note, float64 of shape ``(n_samples,)`` at :data:`SAMPLE_RATE`.

        The note starts at sample 0 and is released at sample ``release_at``; the last 5 ms fade
        out, and a 20 Hz high-pass removes the DC offset that some of the font's loops carry. The
        scale is arbitrary (the caller normalizes).

        Raises
        ------
        DatasetError
            If no zone of the preset sounds for ``key``, or the rendered note is silent.
        """
        import scipy.signal  # imported here: it takes most of a second, and only rendering needs it

        zones = self.zones(bank, program, key, velocity)
        if not zones:
            raise DatasetError(f"SoundFont preset {self.preset_name(bank, program)!r} has no zone for "
                               f"key {key}")
        y = np.zeros(n_samples)
        for zone in zones:
            y += _render_zone(zone, key, n_samples, release_at, tuning_cents)
        # Some loops of the font carry a DC offset; a causal 20 Hz high-pass removes it.
        y = scipy.signal.sosfilt(scipy.signal.butter(2, 20.0, "highpass", fs=SAMPLE_RATE, output="sos"), y)
        fade = min(n_samples, int(0.005 * SAMPLE_RATE))
        y[n_samples - fade:] *= np.linspace(1.0, 0.0, fade)
        if not np.max(np.abs(y)) > 0:
            raise DatasetError(f"SoundFont preset {self.preset_name(bank, program)!r} is silent at key {key}")
        return y


def _split_global(bags, terminal):
    """(generators of the global zone, the other zones): a first zone without ``terminal`` is global."""
    if bags and terminal not in bags[0].gens:
        return _gens(bags[0]), [b for b in bags[1:] if terminal in b.gens]
    return {}, [b for b in bags if terminal in b.gens]


def _gens(bag):
    return {oper: gen.short for oper, gen in bag.gens.items()
            if oper not in (_GEN_KEY_RANGE, _GEN_VEL_RANGE, _GEN_INSTRUMENT, _GEN_SAMPLE)}


def _range(bag, oper):
    gen = bag.gens.get(oper)
    return (0, 127) if gen is None else (gen.word & 0xFF, gen.word >> 8)


def _within(value, bounds):
    return bounds[0] <= value <= bounds[1]


def _seconds(timecents):
    return 2.0 ** (timecents / 1200.0)


def _render_zone(zone, key, n_samples, release_at, tuning_cents):
    """One zone's contribution to a note: pitch-shifted, looped, enveloped and attenuated."""
    g = zone.gens
    data = zone.data
    start = g[0] + 32768 * g[4]
    end = len(data) + g[1] + 32768 * g[12]
    loop_start = zone.loop[0] + g[2] + 32768 * g[45]
    loop_end = zone.loop[1] + g[3] + 32768 * g[50]
    start, end = max(0, start), min(len(data), max(end, start + 1))
    root = g[58] if 0 <= g[58] <= 127 else zone.original_pitch
    cents = (key - root) * g[56] + 100 * g[51] + g[52] + zone.pitch_correction + tuning_cents
    in_rate = zone.rate * 2.0 ** (cents / 1200.0)  # the rate at which the sample is played
    needed = int(math.ceil(n_samples * in_rate / SAMPLE_RATE)) + 64
    looped = g[54] in (1, 3) and start <= loop_start < loop_end - 1 and loop_end <= end
    if looped:
        head = data[start:loop_end]
        loop = data[loop_start:loop_end]
        repeats = max(0, int(math.ceil((needed - len(head)) / len(loop))))
        source = np.concatenate([head, np.tile(loop, repeats)])[:max(needed, len(head))]
    else:
        source = data[start:end]
    y = soxr.resample(source, in_rate, SAMPLE_RATE, quality="HQ").astype(np.float64)
    if len(y) < n_samples:
        y = np.pad(y, (0, n_samples - len(y)))
    y = y[:n_samples]
    gain = 10.0 ** (-max(0, g[48]) / 200.0)  # centibels of attenuation
    return y * gain * _envelope(g, key, n_samples, release_at)


def _envelope(g, key, n_samples, release_at):
    """SoundFont volume envelope (DAHDSR) as amplitude, float64 of shape ``(n_samples,)``.

    Attack rises linearly in amplitude; decay and release fall linearly in decibels, at 100 dB per
    decay (release) time, the decay stopping at the sustain level. The release time is kept
    between 30 ms and 1 s, so that a released note dies away within its clip rather than ringing on
    (a long SoundFont release would otherwise turn every note into a drone).
    """
    t = np.arange(n_samples) / SAMPLE_RATE
    delay = _seconds(g[33])
    attack = max(_seconds(g[34]), 0.001)
    hold = _seconds(g[35] + g[39] * (60 - key))
    decay = max(_seconds(g[36] + g[40] * (60 - key)), 0.001)
    sustain_db = min(max(g[37], 0), 1000) / 10.0
    release = min(max(_seconds(g[38]), 0.03), 1.0)
    decay_start = delay + attack + hold
    level_db = -np.minimum(np.maximum(t - decay_start, 0.0) * 100.0 / decay, sustain_db)
    amplitude = np.clip((t - delay) / attack, 0.0, 1.0) * 10.0 ** (level_db / 20.0)
    if release_at < n_samples:
        after = t[release_at:] - t[release_at]
        amplitude[release_at:] = amplitude[release_at] * 10.0 ** (-after * 100.0 / release / 20.0)
    return amplitude


@contextlib.contextmanager
def _quiet_sf2utils():
    """Silence sf2utils while it parses: its import warns (``audioop`` is deprecated), and it logs
    dozens of harmless sample warnings through the root logger, which would otherwise configure
    logging for the whole program."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)  # keeps logging.warning() from calling basicConfig()

    def not_sf2utils(record):
        return "sf2utils" not in record.pathname

    root.addFilter(not_sf2utils)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        root.removeFilter(not_sf2utils)
        if placeholder is not None:
            root.removeHandler(placeholder)
