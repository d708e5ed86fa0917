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
"""

import importlib
from functools import lru_cache

from featurestore import registry
from featurestore.features._common import Memo, check_int, is_int, is_real

# is_int, is_real and check_int are public: the pipelines check their own integer parameters with them.
__all__ = ["Memo", "available", "check_int", "compute", "get", "is_int", "is_real", "resolve_params"]


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

