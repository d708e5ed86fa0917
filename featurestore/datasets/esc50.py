"""ESC-50 (Piczak 2015): 2,000 clips of 5 s, 50 classes, 5 predefined folds; ESC-10 is a 10-class subset.

Layout: ``ROOT/meta/esc50.csv`` with ``filename, fold, target, category, esc10, src_file, take`` and the
audio in ``ROOT/audio/``. Label = ``category``, group = ``src_file`` (the Freesound recording a clip
was cut from); these, ``filename`` and ``fold`` are read as the text written.
"""

import os

from featurestore.datasets import read_metadata_csv

NAME = "esc50"
DESCRIPTION = "ESC-50: 50 classes, 5 predefined folds, 5 s clips (ROOT/meta/esc50.csv, ROOT/audio); option esc10"
AUDIO_DEFAULTS = {"duration": 5.0}
OPTIONS = {"esc10": False}
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
SOURCE_COLUMNS = {"clip_id": "filename", "path": "filename", "label": "category", "group": "src_file"}


def load_table(root, *, esc10=False):
    """Clip table of ESC-50 (or its ESC-10 subset when ``esc10``) under ``root``."""
    table = read_metadata_csv(root / "meta" / "esc50.csv", COLUMNS, NAME, text=("fold", *SOURCE_COLUMNS.values()))
    if esc10:
        table = table[table["esc10"].astype(str).str.lower().isin(["true", "1"])]
    table.insert(0, "clip_id", table["filename"].map(lambda f: f.rsplit(".", 1)[0]))
    table.insert(1, "path", [os.path.join(root, "audio", f) for f in table["filename"]])
    table["label"] = table["category"]
    table["group"] = table["src_file"]
    return table
