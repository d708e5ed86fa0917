"""Exceptions raised by the feature store.

Every error names the thing that is wrong (a file, a parameter, a data set) and why, so that a
command-line user can act on the one-line message alone.
"""


class FeatureStoreError(Exception):
    """Base class of every error the feature store raises on purpose."""


class ParameterError(FeatureStoreError, ValueError):
    """A parameter has an invalid name or value, e.g. ``n_mels=0 must be a positive integer``."""


class AudioError(FeatureStoreError):
    """An audio file cannot be used: unreadable, empty, non-finite or in an unsupported format.

    Parameters
    ----------
    path : str or os.PathLike
        The offending file.
    problem : str
        What is wrong with it, in a few words.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep the two arguments across process boundaries
        return (type(self), (self.path, self.problem))


class DatasetError(FeatureStoreError):
    """A data set's root, metadata or layout is missing or malformed."""


class MissingFilesError(DatasetError):
    """Metadata rows point at audio files that do not exist."""


class CorruptFeatureSetError(FeatureStoreError):
    """A stored feature set is damaged: truncated, unreadable, or its arrays do not match their checksums.

    Parameters
    ----------
    path : str or os.PathLike
        The feature set's ``.h5`` file.
    problem : str
        What is wrong with it, in a few words.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"feature set {self.path} is damaged: {problem}; remove it (`cache remove`) or extract "
                         f"it again, which replaces it")

    def __reduce__(self):  # keep the two arguments across process boundaries
        return (type(self), (self.path, self.problem))


class StoreLockedError(FeatureStoreError):
    """Another process is already writing the same feature set."""


class MetadataError(DatasetError):
    """A metadata row is unusable: an empty label or group, a fold that is not an integer, two spellings
    of one label, or two rows naming the same audio file. The message names the file, the line (the
    header is line 1) and the column."""


class MemoryBudgetError(FeatureStoreError, MemoryError):
    """Features that would have to be held in memory whole exceed the memory budget
    (:func:`featurestore.streaming.memory_budget`); the message names their size and the budget."""
