"""Registry of feature kinds.

Each kind is one module in this package (discovered with :func:`pkgutil.iter_modules`, so adding a
kind touches one file) that defines:

``DEFAULTS`` : dict
    Every keyword parameter of ``compute`` with its default value.
``DESCRIPTION`` : str
    One line for ``python cli.py features``.
``VERSION`` : int
    Bumped when the computation changes, so old stored feature sets are not reused.
``TEST_PARAMS`` : dict
    Overrides of ``DEFAULTS`` small enough for the tests to compute the kind in milliseconds on
    1 s clips at 8 kHz (the tests run every registered kind with them).
``compute(y, *, sr, memo=None, **params)`` : function
    A pure function: ``y`` is float32 audio of shape ``(..., n_samples)`` (one clip, or a batch of
    clips of equal length); it returns float32 of shape ``(..., *feature_shape)``. Each clip's
    result must be bit-identical whatever the batch around it: compute clip by clip with shapes that
    do not follow the batch (``_common.map_clips``) and no BLAS (see ``_common``'s notes on
    reproducibility). ``tests/test_reproducible.py`` checks every registered kind. ``memo``
    (a :class:`Memo`, not a parameter of the feature) lets kinds computed from the same ``y`` share
    intermediate results, such as the log-mel spectrogram of ``mel`` and ``mfcc``.

A kind computed by a pretrained network also defines:

``FILE_PARAMS`` : tuple of str
    Parameters that name a user's checkpoint file or folder (default None, required). The store
    keys a feature set on the content of that file (its SHA-256, :func:`key_params`), not its path.
    Kinds without it have none.
"""

import importlib
from functools import lru_cache

from featurestore import registry
from featurestore.features._common import Memo, check_int, is_int, is_real

# is_int, is_real and check_int are public: the pipelines check their own integer parameters with them.
__all__ = ["Memo", "available", "check_int", "compute", "file_params", "get", "is_int", "is_real", "key_params",
           "resolve_params"]


@lru_cache(maxsize=None)
def available():
    """Names of all feature kinds, sorted.

    Returns
    -------
    names : tuple of str
    """
    return registry.module_names(__path__)


def get(kind):
    """The module implementing feature kind ``kind``.

    Raises
    ------
    featurestore.registry.UnknownNameError
        If ``kind`` is not a known kind; the message lists the valid ones and a close match.
    """
    if kind not in available():
        raise registry.unknown("feature kind", kind, available())
    return importlib.import_module(f"{__name__}.{kind}")


def resolve_params(kind, overrides=None):
    """The full parameter dict of ``kind``: its defaults updated with ``overrides``.

    Raises
    ------
    featurestore.registry.UnknownNameError
        If an override names a parameter that ``kind`` does not have.
    """
    module = get(kind)
    params = dict(module.DEFAULTS)
    for name, value in (overrides or {}).items():
        if name not in params:
            raise registry.unknown(f"parameter of feature kind {kind!r}", name, params)
        params[name] = value
    return params


def compute(kind, y, *, sr, memo=None, **params):
    """Compute feature ``kind`` of audio ``y`` with ``params`` (defaults for the rest).

    ``memo``: a :class:`Memo` shared by the kinds computed from this ``y``, or None.
    """
    return get(kind).compute(y, sr=sr, memo=memo, **resolve_params(kind, params))



def file_params(kind):
    """Names of the parameters of ``kind`` that give a checkpoint file or folder: ``()`` for most kinds."""
    return tuple(getattr(get(kind), "FILE_PARAMS", ()))


def key_params(kind, params):
    """What the store hashes of ``kind``'s full ``params``: each file parameter as its content's digest.

    ``{"checkpoint": "/models/Cnn14.pth", ...}`` becomes ``{"checkpoint": {"sha256": "9f0e..."}, ...}``,
    so that a changed file gives a new feature set and a moved one reuses the stored set. A file
    parameter left at None stays None (computing the kind then names it).

    Raises
    ------
    ParameterError
        If a file parameter names no existing file (or folder).
    """
    names = file_params(kind)
    if not names:
        return params
    from featurestore.features import _pretrained

    keyed = dict(params)
    for name in names:
        if params.get(name) is not None:
            path = _pretrained.check_path(name, params[name], folder=None)
            keyed[name] = {"sha256": _pretrained.checkpoint_digest(path)}
    return keyed
