import inspect
import os

import pandas as pd
import pytest

from featurestore import DatasetError, MissingFilesError, ParameterError, load_dataset
from featurestore.audio import AUDIO_DEFAULTS
from featurestore.datasets import available, get_module
from featurestore.registry import UnknownNameError


def test_registry_lists_every_layout():
    assert set(available()) >= {"urbansound8k", "esc50", "folder", "csv", "demo"}


@pytest.mark.parametrize("name", available())
def test_module_contract(name):
    """Every registered data set declares what :func:`load_dataset` and ``cli.py datasets`` read."""
    module = get_module(name)
    assert module.NAME == name
    assert isinstance(module.DESCRIPTION, str) and module.DESCRIPTION
    assert set(module.AUDIO_DEFAULTS) <= set(AUDIO_DEFAULTS)
    signature = inspect.signature(module.load_table)
    assert list(signature.parameters)[0] == "root"
    # every option is a keyword-only parameter of load_table with the declared default
    options = {k: p.default for k, p in signature.parameters.items() if p.kind == p.KEYWORD_ONLY}
    assert options == module.OPTIONS
    assert set(getattr(module, "SOURCE_COLUMNS", {})) <= {"clip_id", "path", "label", "fold", "group"}


def test_unknown_data_set_is_the_registry_error():
    with pytest.raises(UnknownNameError, match="unknown data set 'esc05'. Did you mean 'esc50'"):
        get_module("esc05")


def test_urbansound8k_layout(urbansound_root):
    ds = load_dataset("urbansound8k", urbansound_root)
    assert len(ds.clips) == 36 and ds.has_folds and ds.folds == [1, 2, 3]
    row = ds.clips.iloc[0]
    assert row["label"] == row["class"] and row["group"] == str(row["fsID"])
    assert os.path.isfile(row["path"]) and f"fold{row['fold']}" in row["path"]
    assert ds.audio_defaults["duration"] == 4.0
    # start/end describe the source recording and are kept as the data set's own columns
    assert {"start", "end", "salience", "classID"} <= set(ds.clips.columns)


def test_esc50_and_esc10(esc50_root):
    full = load_dataset("esc50", esc50_root)
    esc10 = load_dataset("esc50", esc50_root, esc10=True)
    assert len(full.clips) == 30 and full.folds == [1, 2, 3, 4, 5]
    assert set(esc10.clips["label"]) == {"low", "high"} and len(esc10.clips) == 20
    assert full.identity != esc10.identity
    assert (full.clips["group"] == full.clips["src_file"].astype(str)).all()


def test_folder_layout_has_no_folds_and_optional_groups(folder_root):
    ds = load_dataset("folder", folder_root)
    assert not ds.has_folds and sorted(ds.clips["label"].unique()) == ["high", "low", "mid"]
    assert ds.clips["group"].nunique() == len(ds.clips)
    grouped = load_dataset("folder", folder_root, group_pattern=r"^\d+_([a-z]+)_")
    assert set(grouped.clips["group"]) == {"aspk", "bspk"}


def test_csv_manifest(tmp_path, folder_root):
    manifest = tmp_path / "list.csv"
    paths = sorted(p.relative_to(tmp_path).as_posix() for p in folder_root.rglob("*.*"))
    pd.DataFrame({"path": paths, "label": [p.split("/")[1] for p in paths],
                  "fold": [i % 2 + 1 for i in range(len(paths))]}).to_csv(manifest, index=False)
    ds = load_dataset("csv", manifest)
    assert ds.folds == [1, 2] and all(os.path.isabs(p) and os.path.isfile(p) for p in ds.clips["path"])
    with pytest.raises(DatasetError, match="manifest CSV file"):
        load_dataset("csv", tmp_path)


def test_missing_files_error_and_skip(urbansound_root):
    victims = sorted((urbansound_root / "audio" / "fold2").glob("*.wav"))[:3]
    for v in victims:
        v.unlink()
    with pytest.raises(MissingFilesError, match=r"3 of 36 audio files .* missing, e\.g\. .*fold2"):
        load_dataset("urbansound8k", urbansound_root)
    with pytest.warns(UserWarning, match="skipping 3 of 36"):
        ds = load_dataset("urbansound8k", urbansound_root, skip_missing=True)
    assert len(ds.clips) == 33 and len(ds.skipped) == 3
    assert {s["path"] for s in ds.skipped} == {str(v) for v in victims}


def test_bad_names_and_roots(tmp_path, esc50_root):
    with pytest.raises(ParameterError, match="Did you mean 'esc50'"):
        load_dataset("esc05", esc50_root)
    with pytest.raises(ParameterError, match="no option 'esc11'"):
        load_dataset("esc50", esc50_root, esc11=True)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("urbansound8k", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="needs a root"):
        load_dataset("esc50")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold\nx.wav,1\n")
    with pytest.raises(DatasetError, match="lacks column"):
        load_dataset("esc50", tmp_path)


def test_identity_tracks_file_changes(esc50_root):
    first = load_dataset("esc50", esc50_root).identity
    assert load_dataset("esc50", esc50_root).identity == first
    path = next((esc50_root / "audio").glob("*.wav"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_dataset("esc50", esc50_root).identity != first


def test_demo_is_made_on_first_use_and_reused(tmp_path):
    ds = load_dataset("demo", tmp_path / "demo")
    assert len(ds.clips) == 320 and ds.folds == [1, 2, 3, 4, 5] and ds.clips["label"].nunique() == 8
    assert ds.audio_defaults["duration"] == 2.0 and all(os.path.isfile(p) for p in ds.clips["path"][:10])
    manifest = tmp_path / "demo" / "manifest.csv"
    before = manifest.stat().st_mtime_ns
    assert load_dataset("demo", tmp_path / "demo").identity == ds.identity
    assert manifest.stat().st_mtime_ns == before  # not generated again


def _write_silence(path, seconds, sr=8000):
    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(round(seconds * sr)), dtype="float32"), sr)


@pytest.mark.parametrize("lengths, expected", [
    ([0.3] * 18 + [0.62, 2.5], 1.0),       # short clips: the shortest duration
    ([1.2] * 19 + [9.0], 1.5),             # 95 % hold whole, rounded up to 0.5 s; the one long file is cut
    ([1.0] * 20, 1.0),                     # exactly a multiple of 0.5 s is kept
    ([1.5] * 20, 1.5),                     # (above the shortest duration too)
    ([3.0] * 10 + [4.6] * 10, 4.0),        # never longer than the fixed 4 s of before
])
def test_folder_and_csv_take_the_duration_from_their_files(tmp_path, lengths, expected):
    for i, seconds in enumerate(lengths):
        _write_silence(tmp_path / "data" / "ab"[i % 2] / f"{i}.wav", seconds)
    folder = load_dataset("folder", tmp_path / "data")
    assert folder.audio_defaults == {"duration": expected}
    pd.DataFrame({"path": folder.describe_table()["path"],
                  "label": folder.clips["label"]}).to_csv(tmp_path / "data" / "list.csv", index=False)
    assert load_dataset("csv", tmp_path / "data" / "list.csv").audio_defaults == {"duration": expected}


def test_clip_duration_leaves_unreadable_files_to_extraction(tmp_path):
    from featurestore.datasets._clip_length import clip_duration

    _write_silence(tmp_path / "a.wav", 0.4)
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    assert clip_duration([tmp_path / "a.wav", tmp_path / "broken.wav"], longest=4.0) == 1.0
    assert clip_duration([tmp_path / "broken.wav"], longest=4.0) == 4.0  # nothing readable: the longest


def test_the_duration_read_from_the_files_reaches_the_features_and_can_be_overridden(tmp_path):
    from featurestore.specs import resolve_audio_params

    for i in range(4):
        _write_silence(tmp_path / "data" / "ab"[i % 2] / f"{i}.wav", 0.5)
    ds = load_dataset("folder", tmp_path / "data")
    assert resolve_audio_params(ds)["duration"] == 1.0
    assert resolve_audio_params(ds, {"duration": 4.0})["duration"] == 4.0
