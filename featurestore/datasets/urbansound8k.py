"""UrbanSound8K (Salamon, Jacoby & Bello 2014): 8,732 clips of at most 4 s in 10 predefined folds.

Layout: ``ROOT/metadata/UrbanSound8K.csv`` with the columns ``slice_file_name, fsID, start, end,
salience, fold, classID, class`` and the audio in ``ROOT/audio/fold1`` ... ``fold10``. The clips are
already cut: ``start``/``end`` are positions in the original Freesound recording, not in the file,
so they are kept as information only. Label = ``class``, fold = ``fold``, group = ``fsID`` (clips cut
from one recording must stay in one fold; the predefined folds guarantee it); these and
``slice_file_name`` are read as the text written.
"""

import os

from featurestore.datasets import read_metadata_csv

NAME = "urbansound8k"
DESCRIPTION = "UrbanSound8K: 10 classes, 10 predefined folds, clips up to 4 s (ROOT/metadata, ROOT/audio/foldN)"
AUDIO_DEFAULTS = {"duration": 4.0}
OPTIONS = {}
COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
SOURCE_COLUMNS = {"clip_id": "slice_file_name", "path": "slice_file_name", "label": "class", "group": "fsID"}


def load_table(root):
    """Clip table of UrbanSound8K under ``root``."""
    table = read_metadata_csv(root / "metadata" / "UrbanSound8K.csv", COLUMNS, NAME,
                              text=("fold", *SOURCE_COLUMNS.values()))
    table.insert(0, "clip_id", table["slice_file_name"].map(lambda f: f.rsplit(".", 1)[0]))
    table.insert(1, "path", [os.path.join(root, "audio", f"fold{fold.strip()}", f)
                             for fold, f in zip(table["fold"], table["slice_file_name"])])
    table["label"] = table["class"]
    table["group"] = table["fsID"]
    return table
