"""Find every public estimator of skhash, for the common checks and the docs."""

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]


def all_estimators():
    """Public estimators of skhash, found by walking the package.

    ``skhash.dask`` is not walked: it needs an optional extra, and its
    estimator is tested against the single-machine one it mirrors.

    Returns
    -------
    estimators : list of (name, class)
        Sorted by name. Abstract classes and private names are left out.

    Examples
    --------
    >>> from skhash.utils import all_estimators
    >>> "LSHHasher" in dict(all_estimators())
    True
    """
    import skhash

    found = {}
    for module in _modules(skhash):
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("skhash.")
                and not name.startswith("_")
                and not inspect.isabstract(cls)
            ):
                found[name] = cls
    return sorted(found.items())


def _modules(package):
    """The modules of a package, recursively, but not ``skhash.dask`` (which
    ``pkgutil.walk_packages`` would import to look inside)."""
    for info in pkgutil.iter_modules(package.__path__, prefix=package.__name__ + "."):
        if info.name == "skhash.dask":
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as error:
            # The deep extra's private modules import torch at the top; the
            # public deep estimators live in modules that do not.
            if (error.name or "").partition(".")[0] in ("torch", "skorch"):
                continue
            raise
        yield module
        if info.ispkg:
            yield from _modules(module)
