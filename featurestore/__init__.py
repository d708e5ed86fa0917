"""Feature store: audio data sets decoded once, features computed once into HDF5 and reused.

>>> from featurestore import load_dataset, extract
>>> ds = load_dataset("demo")                                   # doctest: +SKIP
>>> sets = extract(ds, {"mel": {"n_mels": 60}, "mfcc": {}})     # doctest: +SKIP
>>> X = sets["mel"].read(ds.clips["clip_id"])                   # doctest: +SKIP
>>> copies = extract_augmented(ds, {"mel": {"n_mels": 60}}, WaveformAugmentation(pitch_shift=2),
...                            copies=2, seed=0)["mel"]           # doctest: +SKIP
"""

from featurestore.augment import WaveformAugmentation
from featurestore.datasets import Dataset, load_dataset
from featurestore.errors import (AudioError, CorruptFeatureSetError, DatasetError, FeatureStoreError,
                                 MissingFilesError, ParameterError, StoreLockedError)
from featurestore.extraction import extract, extract_augmented
from featurestore.specs import AugmentSpec, FeatureRequest
from featurestore.store import FeatureSet, FeatureStore

__all__ = [
    "AudioError", "AugmentSpec", "CorruptFeatureSetError", "Dataset", "DatasetError", "FeatureRequest", "FeatureSet",
    "FeatureStore", "FeatureStoreError", "MissingFilesError", "ParameterError", "StoreLockedError",
    "WaveformAugmentation", "extract", "extract_augmented", "load_dataset",
]
