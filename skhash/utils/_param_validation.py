"""Parameter constraints shared by skhash's estimators."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval as _SklearnInterval

__all__ = ["Interval", "check_count"]


class Interval(_SklearnInterval):
    """scikit-learn's ``Interval`` constraint, with booleans rejected.

    ``bool`` is a subclass of ``int``, so scikit-learn accepts ``n_bits=True``
    as the integer 1; in a count or a size it is always a mistake, and one that
    otherwise surfaces as an obscure error deep inside a library.
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def check_count(value, name, *, minimum=1):
    """Validate an integer argument of a method (not a constructor parameter).

    Returns ``value`` as a Python int; raises ValueError for booleans, floats
    and values below ``minimum``.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, Integral)
        or value < minimum
    ):
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise ValueError(f"{name} must be {kind}, got {value!r}.")
    return int(value)
