"""Metadata checks of the shared loader: each bad row is an error naming the file, the line and the column;
one audio file under two spellings is an error naming both rows; the optional content fingerprint."""

import os
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from featurestore import load_dataset
from featurestore.errors import DatasetError, MetadataError


@pytest.fixture
def good(tmp_path):
    """Four real 0.1 s clips in ``tmp_path/good``; the manifests are written per test."""
    (tmp_path / "good").mkdir()
    t = np.arange(800) / 8000
    for i, freq in enumerate([220, 230, 1760, 1800]):
        sf.write(tmp_path / "good" / f"{i}.wav", 0.5 * np.sin(2 * np.pi * freq * t), 8000, subtype="PCM_16")
    return tmp_path


def write_manifest(folder, text):
    """Write ``text`` (the header on line 1) as ``folder/list.csv`` and return its path."""
    path = folder / "list.csv"
    path.write_text(text)
    return path


def where(manifest, *lines, column):
    """The part of a message naming the rows and the column, as a regular expression."""
    plural = "s" if len(lines) > 1 else ""
    rows = " and ".join(map(str, lines))
    return re.escape(f"{manifest}, line{plural} {rows}, column {column!r}")


GOOD_ROWS = "good/0.wav,low,1\ngood/1.wav,low,2\ngood/2.wav,high,1\ngood/3.wav,high,2\n"


def test_a_good_manifest_keeps_labels_and_folds_as_written(good):
    manifest = write_manifest(good, "path,label,fold,snr\n" + GOOD_ROWS.replace("low,1", "NA,1.0,3")
                              .replace("low,2", "NA,2,4").replace("high,1", "high,1,5").replace("high,2", "high,2,6"))
    ds = load_dataset("csv", manifest)
    assert ds.clips["label"].tolist() == ["NA", "NA", "high", "high"]  # "NA" is a label, not a missing value
    assert ds.clips["fold"].tolist() == [1, 2, 1, 2] and ds.clips["fold"].dtype == "Int64"
    assert ds.clips["snr"].tolist() == [3, 4, 5, 6]  # the data set's own columns keep pandas' types
    assert ds.clips.index.tolist() == [0, 1, 2, 3] and ds.clips.attrs == {}


@pytest.mark.parametrize(("rows", "line", "column", "problem"), [
    ("good/0.wav,,1\ngood/1.wav,low,2\n", 2, "label", "the label is empty"),
    ("good/0.wav,low,1\ngood/1.wav,  ,2\n", 3, "label", "the label is empty"),
    ("good/0.wav,low\ngood/1.wav,low,2\n", 2, "fold", "no fold, while other rows have one"),
    ("good/0.wav,low,1\ngood/1.wav,low,1.5\n", 3, "fold", "'1.5' is not an integer fold number"),
    ("good/0.wav,low,1\ngood/1.wav,low,2\ngood/2.wav,high,two\n", 4, "fold", "'two' is not an integer"),
    (",low,1\ngood/1.wav,low,2\n", 2, "path", "the path is empty"),
])
def test_a_bad_row_names_the_file_line_and_column(good, rows, line, column, problem):
    manifest = write_manifest(good, "path,label,fold\n" + rows)
    with pytest.raises(MetadataError, match=where(manifest, line, column=column) + ": " + re.escape(problem)):
        load_dataset("csv", manifest)


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(good):
    manifest = write_manifest(good, 'path,label,note\n\ngood/0.wav,low,"two\nlines"\n\ngood/1.wav,,x\n')
    with pytest.raises(MetadataError, match=where(manifest, 6, column="label")):
        load_dataset("csv", manifest)


def test_an_empty_group_is_an_error_when_the_column_exists(good):
    manifest = write_manifest(good, "path,label,group\ngood/0.wav,low,a\ngood/1.wav,low,\ngood/2.wav,high,\n")
    with pytest.raises(MetadataError, match=where(manifest, 3, column="group") + r": .*empty \(and 1 more row\)"):
        load_dataset("csv", manifest)


@pytest.mark.parametrize(("first", "second"), [("1", "1.0"), ("1", "01"), ("dog", "dog ")])
def test_labels_differing_only_in_how_they_are_written_are_an_error(good, first, second):
    manifest = write_manifest(good, f"path,label\ngood/0.wav,{first}\ngood/1.wav,x\ngood/2.wav,{second}\n")
    message = where(manifest, 2, 4, column="label") + f": {first!r} and {second!r} differ only in how"
    with pytest.raises(MetadataError, match=message):
        load_dataset("csv", manifest)


def test_labels_are_text_so_numbers_stay_distinct_classes(good):
    manifest = write_manifest(good, "path,label\ngood/0.wav,1\ngood/1.wav,2\ngood/2.wav,10\n")
    assert load_dataset("csv", manifest).clips["label"].tolist() == ["1", "2", "10"]


@pytest.mark.parametrize("spelling", ["./good/0.wav", "good/../good/0.wav", "link/0.wav"])
def test_one_file_under_two_spellings_is_an_error_naming_both_rows(good, spelling):
    (good / "link").symlink_to(good / "good")
    manifest = write_manifest(good, f"path,label,fold\ngood/0.wav,low,1\ngood/1.wav,low,2\n{spelling},low,2\n")
    message = where(manifest, 2, 4, column="path") + re.escape(f": 'good/0.wav' and '{spelling}' are one audio file "
                                                            f"({good}/good/0.wav)")
    with pytest.raises(MetadataError, match=message):
        load_dataset("csv", manifest)


def test_the_same_row_twice_is_an_error(good):
    manifest = write_manifest(good, "path,label\ngood/0.wav,low\ngood/1.wav,low\ngood/0.wav,low\n")
    with pytest.raises(MetadataError, match=where(manifest, 2, 4, column="path")):
        load_dataset("csv", manifest)


def test_esc50_names_its_own_columns(esc50_root):
    meta = esc50_root / "meta" / "esc50.csv"
    table = pd.read_csv(meta)
    table.loc[4, "category"] = ""
    table.to_csv(meta, index=False)
    with pytest.raises(MetadataError, match=where(meta, 6, column="category") + ": the label is empty"):
        load_dataset("esc50", esc50_root)
    table.loc[4, "category"] = table.loc[3, "category"]
    table.loc[7, "filename"] = "./" + table.loc[2, "filename"]
    table.to_csv(meta, index=False)
    with pytest.raises(MetadataError, match=where(meta, 4, 9, column="filename") + ".* are one audio file"):
        load_dataset("esc50", esc50_root)


def test_esc10_rows_keep_their_line_numbers(esc50_root):
    meta = esc50_root / "meta" / "esc50.csv"
    table = pd.read_csv(meta)
    after = table.index[table["category"] == "mid"][-1] + 1  # after the rows left out of ESC-10
    table["fold"] = table["fold"].astype(object)
    table.loc[after, "fold"] = 2.5
    table.to_csv(meta, index=False)
    with pytest.raises(MetadataError, match=where(meta, after + 2, column="fold") + ": '2.5'"):
        load_dataset("esc50", esc50_root, esc10=True)


def test_urbansound8k_names_its_fold_column(urbansound_root):
    meta = urbansound_root / "metadata" / "UrbanSound8K.csv"
    table = pd.read_csv(meta)
    table["fold"] = table["fold"].astype(str)
    table.loc[10, "fold"] = "three"
    table.to_csv(meta, index=False)
    with pytest.raises(MetadataError, match=where(meta, 12, column="fold") + ": 'three' is not an integer"):
        load_dataset("urbansound8k", urbansound_root)


def test_folder_layout_names_the_file_when_there_is_no_metadata(folder_root):
    (folder_root / "mid" / "copy.wav").symlink_to(folder_root / "low" / "0_aspk_0.wav")
    with pytest.raises(MetadataError, match=r"low/0_aspk_0\.wav and .*mid/copy\.wav, column 'path'"):
        load_dataset("folder", folder_root)


def test_a_row_with_more_values_than_the_header_is_an_error(good):
    manifest = write_manifest(good, "path,label\ngood/0.wav,low,1\ngood/1.wav,low\n")
    with pytest.raises(DatasetError, match=re.escape(f"cannot parse {manifest}")):
        load_dataset("csv", manifest)


def edit_in_place(path):
    """Change one sample of ``path`` and restore its size and modification time."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-2:] = bytes([data[-2] ^ 0x40, data[-1]])  # the last sample's high bits: a loud change
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_fingerprint_sees_a_file_edited_in_place(good):
    manifest = write_manifest(good, "path,label,fold\n" + GOOD_ROWS)
    before_plain = load_dataset("csv", manifest).identity
    before = load_dataset("csv", manifest, fingerprint=True).identity
    assert before != before_plain  # a content digest in place of size and time: another identity
    assert load_dataset("csv", manifest, fingerprint=True).identity == before
    edit_in_place(good / "good" / "2.wav")
    assert load_dataset("csv", manifest, fingerprint=True).identity != before
    # without the fingerprint, size and modification time alone cannot see the edit (documented)
    assert load_dataset("csv", manifest).identity == before_plain


def test_fingerprint_ignores_the_modification_time(good):
    manifest = write_manifest(good, "path,label,fold\n" + GOOD_ROWS)
    before = load_dataset("csv", manifest, fingerprint=True).identity
    path = good / "good" / "0.wav"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_dataset("csv", manifest, fingerprint=True).identity == before
    assert load_dataset("csv", manifest).identity != load_dataset("csv", manifest, fingerprint=True).identity


def test_cli_extract_with_fingerprint_recomputes_an_edited_file(good, tmp_path, capsys):
    from cli import main

    manifest = write_manifest(good, "path,label,fold\n" + GOOD_ROWS)
    argv = ["extract", "--dataset", "csv", "--root", str(manifest), "--features", "raw", "--fingerprint",
            "--cache", str(tmp_path / "cache"), "--set", "audio.sr=8000", "--set", "audio.duration=0.1",
            "--no-progress"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    edit_in_place(good / "good" / "2.wav")
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert first.split("-> ")[1] != second.split("-> ")[1]  # another data set identity, so another file


def test_cli_reports_bad_metadata_in_one_line(good, capsys):
    from cli import main

    manifest = write_manifest(good, "path,label,fold\ngood/0.wav,low,1\ngood/1.wav,,2\n")
    code = main(["extract", "--dataset", "csv", "--root", str(manifest), "--features", "raw", "--no-progress",
                 "--cache", str(good / "cache")])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert f"{manifest}, line 3, column 'label': the label is empty" in err
