"""A CSV manifest: columns ``path`` (relative to the CSV), ``label``, and optional ``fold`` and ``group``.

``root`` is the manifest file itself. Without ``group`` each file is its own group; without ``fold``
experiments split by stratified group k-fold. Other columns are kept as the data set's own.
"""

from featurestore.datasets import read_metadata_csv
from featurestore.errors import DatasetError

NAME = "csv"
DESCRIPTION = "a CSV manifest (--root FILE.csv): path (relative to the CSV), label, optional fold, group"
AUDIO_DEFAULTS = {"duration": 4.0}
OPTIONS = {}


def load_table(root):
    """Clip table of the manifest file ``root``."""
    if root.is_dir():
        raise DatasetError(f"data set {NAME!r}: --root must be the manifest CSV file, not the folder {root}")
    table = read_metadata_csv(root, ("path", "label"), NAME)
    base = root.parent
    relative = table["path"].astype(str)
    table["path"] = [str((base / p).resolve()) for p in relative]
    if "clip_id" not in table:
        table.insert(0, "clip_id", relative.str.rsplit(".", n=1).str[0])
    if "fold" not in table:
        table["fold"] = None
    elif table["fold"].isna().any() and table["fold"].notna().any():
        n = int(table["fold"].isna().sum())
        raise DatasetError(f"data set {NAME!r}: {root}: {n} rows have no fold while others do")
    if "group" not in table:
        table["group"] = table["clip_id"]
    return table
