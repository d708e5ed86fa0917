"""A folder per class: ``ROOT/<label>/*.wav|flac|aiff|ogg`` (e.g. the IRMAS training layout).

There are no folds: experiments split it by stratified group k-fold. Each file is its own group
unless the option ``group_pattern`` (a regular expression whose first group is taken from the file
name) says which files come from one recording or speaker, e.g. ``"^\\d+_([a-z]+)_"`` for FSDD.
"""

import re

import pandas as pd

from featurestore.datasets import AUDIO_EXTENSIONS
from featurestore.datasets._clip_length import clip_duration
from featurestore.errors import DatasetError

NAME = "folder"
DESCRIPTION = "a folder per class, ROOT/<label>/*.wav|flac|...; no folds (option group_pattern); duration from the files"
#: The longest clip duration; :func:`audio_defaults` takes a shorter one from short recordings.
AUDIO_DEFAULTS = {"duration": 4.0}
OPTIONS = {"group_pattern": None}


def audio_defaults(clips):
    """The duration that holds 95 % of the clips whole, at most 4 s (see :func:`clip_duration`)."""
    return {"duration": clip_duration(clips["path"], longest=AUDIO_DEFAULTS["duration"])}


def load_table(root, *, group_pattern=None):
    """Clip table of the class folders under ``root``."""
    if not root.is_dir():
        raise DatasetError(f"data set {NAME!r}: root {root} is not a folder")
    pattern = re.compile(group_pattern) if group_pattern else None
    rows = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
                continue
            relative = path.relative_to(root).with_suffix("").as_posix()
            match = pattern.search(path.name) if pattern else None
            if pattern and not match:
                raise DatasetError(f"data set {NAME!r}: group_pattern {group_pattern!r} does not match {path}")
            rows.append({"clip_id": relative, "path": str(path), "label": class_dir.name, "fold": None,
                         "group": match.group(1) if match else relative})
    if not rows:
        raise DatasetError(f"data set {NAME!r}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in "
                           f"class folders under {root}")
    return pd.DataFrame(rows)
