"""A CSV manifest: columns ``path`` (relative to the CSV), ``label``, and optional ``fold`` and ``group``.

``root`` is the manifest file itself. Without ``group`` each file is its own group; without ``fold``
(or with the column empty) experiments split by stratified group k-fold. Other columns are kept as
the data set's own. ``path``, ``label``, ``fold``, ``group`` and ``clip_id`` are read as the text
written (see :mod:`featurestore.datasets`).
"""

import os

from featurestore.datasets import read_metadata_csv
from featurestore.datasets._clip_length import clip_duration
from featurestore.errors import DatasetError, MetadataError

NAME = "csv"
DESCRIPTION = "a CSV manifest (--root FILE.csv): path (relative to the CSV), label, optional fold, group; duration from the files"
#: The longest clip duration; :func:`audio_defaults` takes a shorter one from short recordings.
AUDIO_DEFAULTS = {"duration": 4.0}
OPTIONS = {}


def audio_defaults(clips):
    """The duration that holds 95 % of the clips whole, at most 4 s (see :func:`clip_duration`)."""
    return {"duration": clip_duration(clips["path"], longest=AUDIO_DEFAULTS["duration"])}


def load_table(root):
    """Clip table of the manifest file ``root``."""
    if root.is_dir():
        raise DatasetError(f"data set {NAME!r}: --root must be the manifest CSV file, not the folder {root}")
    table = read_metadata_csv(root, ("path", "label"), NAME, text=("path", "label", "fold", "group", "clip_id"))
    empty = table.index[table["path"].str.strip() == ""]
    if len(empty):  # it would name the manifest's folder
        raise MetadataError(f"data set {NAME!r}: {root}, line {empty[0]}, column 'path': the path is empty")
    relative = table["path"]
    # joined as written (not resolved), so that an error about two spellings of one file shows both
    table["path"] = [os.path.join(root.parent, p) for p in relative]
    if "clip_id" not in table:
        table.insert(0, "clip_id", relative.str.rsplit(".", n=1).str[0])
    if "fold" not in table:
        table["fold"] = None
    if "group" not in table:
        table["group"] = table["clip_id"]
    return table
