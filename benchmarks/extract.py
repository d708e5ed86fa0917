"""Extraction speed: the project's store versus a plain per-file librosa loop, in one run.

Generates N four-second clips at 44.1 kHz, stereo, 16-bit (like UrbanSound8K's files), then times

(a) the project's extraction of ``mel`` and ``mfcc`` into a fresh store (parallel, batched), and
(b) a plain loop: ``librosa.load(sr=22050)``, then ``melspectrogram`` and ``mfcc`` per file,

checks that both give the same features (within a stated tolerance), checks that the stored features
are bit-identical to the same kinds computed one clip at a time (a feature set does not depend on the
batching), and prints clips per second for both and their ratio. The target is a ratio of at least 8
on 2 cores.

    python benchmarks/extract.py [--n-clips 1000] [--n-jobs 2]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# librosa's defaults, i.e. what `melspectrogram(y=y, sr=sr)` and `mfcc(y=y, sr=sr)` compute in the
# plain loop. With equal STFT and filterbank parameters the store computes the log-mel once per
# clip for both kinds (one featurestore.features.Memo per batch).
MEL = {"n_mels": 128, "n_fft": 2048, "hop_length": 512, "delta": False}
MFCC = {"n_mfcc": 20, "n_fft": 2048, "hop_length": 512, "n_mels": 128}
SR = 22050
# dB features of identical audio through two resampling calls agree far below this; differences come
# only from float32 rounding in the FFT/mel products (and the dB floor of near-silent bins).
TOLERANCE_DB = 0.05


def make_clips(folder, n_clips, seed=0):
    """Write ``n_clips`` 4 s stereo 16-bit 44.1 kHz WAVs (noisy chirps) and a CSV manifest."""
    rng = np.random.default_rng(seed)
    t = np.arange(4 * 44100) / 44100
    rows = []
    audio_dir = folder / "audio"
    audio_dir.mkdir(parents=True)
    for i in range(n_clips):
        f0 = rng.uniform(100, 2000)
        y = 0.3 * np.sin(2 * np.pi * (f0 + rng.uniform(-50, 50) * t) * t) + 0.05 * rng.standard_normal(len(t))
        stereo = np.stack([y, np.roll(y, 7) * 0.8], axis=1)
        sf.write(audio_dir / f"clip{i:05d}.wav", stereo, 44100, subtype="PCM_16")
        rows.append({"path": f"audio/clip{i:05d}.wav", "label": f"c{i % 10}", "fold": i % 5 + 1})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def plain_loop(paths):
    """The baseline: what a user writes without the store."""
    import librosa

    mels, mfccs = [], []
    for path in paths:
        y, sr = librosa.load(path, sr=SR)
        y = librosa.util.fix_length(y, size=4 * SR)
        mel = librosa.feature.melspectrogram(y=y, sr=sr)
        mels.append(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0))
        mfccs.append(librosa.feature.mfcc(y=y, sr=sr))
    return np.stack(mels), np.stack(mfccs)


def one_clip_at_a_time(paths):
    """The store's features recomputed clip by clip, outside extraction (no batches, no sharing)."""
    from featurestore import audio, features

    mels, mfccs = [], []
    for path in paths:
        y = audio.load_clip(path, sr=SR, duration=4.0)
        mels.append(features.compute("mel", y, sr=SR, **MEL))
        mfccs.append(features.compute("mfcc", y, sr=SR, **MFCC))
    return np.stack(mels), np.stack(mfccs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-clips", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--baseline-clips", type=int, default=None,
                        help="time the plain loop on this many clips only (default: all)")
    args = parser.parse_args(argv)

    from featurestore import FeatureStore, extract, load_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        start = time.perf_counter()
        manifest = make_clips(work / "data", args.n_clips)
        print(f"generated {args.n_clips} clips (4 s, 44.1 kHz, stereo, 16-bit) in {time.perf_counter() - start:.1f} s")
        dataset = load_dataset("csv", manifest)
        paths = dataset.clips["path"].tolist()
        for p in paths:  # warm the page cache for both contenders alike
            Path(p).read_bytes()

        start = time.perf_counter()
        sets = extract(dataset, {"mel": MEL, "mfcc": MFCC}, store=FeatureStore(work / "cache"),
                       audio={"sr": SR, "duration": 4.0}, n_jobs=args.n_jobs, batch_size=args.batch_size,
                       progress=False)
        project_time = time.perf_counter() - start
        project_rate = args.n_clips / project_time

        n_base = args.baseline_clips or args.n_clips
        start = time.perf_counter()
        base_mel, base_mfcc = plain_loop(paths[:n_base])
        base_time = time.perf_counter() - start
        base_rate = n_base / base_time

        ids = dataset.clips["clip_id"].tolist()[:n_base]
        stored_mel, stored_mfcc = sets["mel"].read(ids), sets["mfcc"].read(ids)
        mel_diff = float(np.abs(stored_mel[:, 0] - base_mel).max())
        mfcc_diff = float(np.abs(stored_mfcc - base_mfcc).max())
        single_mel, single_mfcc = one_clip_at_a_time(paths[:n_base])
        exact = np.array_equal(stored_mel, single_mel) and np.array_equal(stored_mfcc, single_mfcc)
        agree = mel_diff <= TOLERANCE_DB and mfcc_diff <= TOLERANCE_DB and exact
        print(f"project extraction (mel+mfcc into the store, n_jobs={args.n_jobs}): "
              f"{project_time:.2f} s, {project_rate:.0f} clips/s")
        print(f"plain librosa loop ({n_base} clips): {base_time:.2f} s, {base_rate:.0f} clips/s")
        print(f"max abs difference: mel {mel_diff:.2e} dB, mfcc {mfcc_diff:.2e} "
              f"(tolerance {TOLERANCE_DB}): {'agree' if agree else 'DISAGREE'}")
        print(f"stored (batches of {args.batch_size}, n_jobs={args.n_jobs}) vs one clip at a time "
              f"({n_base} clips): {'bit-identical' if exact else 'DIFFERENT'}")
        print(f"speed-up: {project_rate / base_rate:.1f}x (target 8x on 2 cores; cores here: {os.cpu_count()})")
        return 0 if agree else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
