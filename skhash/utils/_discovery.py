"""Find every public estimator of skhash, for the common checks and the docs."""

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]


def all_estimators():
    """Public estimators of skhash, found by walking the package.

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
    for module_info in pkgutil.walk_packages(skhash.__path__, prefix="skhash."):
        module = importlib.import_module(module_info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("skhash.")
                and not name.startswith("_")
                and not inspect.isabstract(cls)
            ):
                found[name] = cls
    return sorted(found.items())
