"""What the three registries share: data sets, feature kinds and estimators.

Each registry is a package whose public modules (names not starting with ``_``) are its entries,
found with :func:`pkgutil.iter_modules`, so that adding an entry touches one module. Listing names
imports nothing (:func:`module_names`); a registry that reads more than names without importing
(the estimators read their ``SPEC`` literals with :mod:`ast`) does so itself. A name that is not
registered raises :class:`UnknownNameError`, with a close match and the valid names.

This module imports only the standard library and :mod:`featurestore.errors`, so that every layer
above the feature store (``estimators`` among them) may import it.

>>> lookup("colour", "gren", {"green": 1, "red": 2})
Traceback (most recent call last):
...
featurestore.registry.UnknownNameError: unknown colour 'gren'. Did you mean 'green'? Valid: green, red
"""

import difflib
import pkgutil

from featurestore.errors import ParameterError

__all__ = ["UnknownNameError", "lookup", "module_names", "unknown"]


class UnknownNameError(ParameterError):
    """A name that a registry (or a parameter list) does not know; the message offers a close match.

    A :class:`~featurestore.errors.ParameterError`, hence also a ``ValueError``.
    """


def module_names(path):
    """Names of the public modules of a package, sorted, without importing them.

    Parameters
    ----------
    path : list of str
        The package's ``__path__``.

    Returns
    -------
    names : tuple of str
    """
    return tuple(sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")))


def unknown(what, name, valid):
    """The :class:`UnknownNameError` for ``name``, not among ``valid``, naming a close match.

    Parameters
    ----------
    what : str
        What ``name`` was meant to be, e.g. ``"feature kind"``.
    name : object
        The name given.
    valid : iterable of str
        The names that exist.

    Returns
    -------
    UnknownNameError
        To raise.
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {what} {name!r}.{hint} Valid: {', '.join(valid)}")


def lookup(what, name, entries):
    """``entries[name]``, or :class:`UnknownNameError` (see :func:`unknown`) when absent.

    Parameters
    ----------
    what : str
        What the entries are, for the message.
    name : str
    entries : mapping of str
    """
    if name not in entries:
        raise unknown(what, name, entries)
    return entries[name]
