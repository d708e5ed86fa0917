"""Feature store: audio data sets decoded once, features computed once into HDF5 and reused.

>>> import shutil, tempfile
>>> from featurestore import FeatureStore, WaveformAugmentation, extract, extract_augmented, load_dataset
>>> from featurestore.datasets import demo
>>> root = tempfile.mkdtemp()
>>> _ = demo.generate(f"{root}/demo", clips_per_class=5)           # a small demo data set: 40 clips
>>> ds = load_dataset("demo", f"{root}/demo")
>>> store = FeatureStore(f"{root}/cache")
>>> sets = extract(ds, {"mel": {"n_mels": 60}, "mfcc": {}}, store=store, progress=False)
>>> sets["mel"].read(ds.clips["clip_id"]).shape     # (clips, log-mel and its delta, n_mels, frames)
(40, 2, 60, 87)
>>> copies = extract_augmented(ds, {"mel": {"n_mels": 60}}, WaveformAugmentation(pitch_shift=2),
...                            copies=2, seed=0, store=store, progress=False)["mel"]
>>> len(copies)                                                   # two copies of each clip
80
>>> shutil.rmtree(root)
"""

from featurestore.augment import WaveformAugmentation
from featurestore.datasets import Dataset, load_dataset
from featurestore.errors import (AudioError, CorruptFeatureSetError, DatasetError, FeatureStoreError,
                                 MemoryBudgetError, MissingFilesError, ParameterError, StoreLockedError)
from featurestore.extraction import extract, extract_augmented
from featurestore.specs import AugmentSpec, FeatureRequest
from featurestore.store import FeatureSet, FeatureStore

__all__ = [
    "AudioError", "AugmentSpec", "CorruptFeatureSetError", "Dataset", "DatasetError", "FeatureRequest", "FeatureSet",
    "FeatureStore", "FeatureStoreError", "MemoryBudgetError", "MissingFilesError", "ParameterError", "StoreLockedError",
    "WaveformAugmentation", "extract", "extract_augmented", "load_dataset",
]
