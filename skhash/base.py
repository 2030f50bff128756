"""The contract every hasher keeps.

A hasher learns a real-valued projection of ``X`` with one column per bit; the
bit is 1 where the projection is >= 0. Subclasses write only ``_fit`` and
``_project``; :class:`BaseHasher` validates input, thresholds and packs codes.
"""

from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from ._supervision import check_supervision
from .codes import n_bytes_for, pack_codes
from .utils._memory import rows_within
from .utils._param_validation import Interval

__all__ = ["BaseHasher", "SupervisedHasherMixin", "fit_from_rows", "fits_from_rows"]

# Longest code any hasher makes: 512-byte codes. Longer ones are almost always a
# mistake, and some methods allocate in proportion to n_bits times the data.
MAX_N_BITS = 4096


class BaseHasher(TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class for hashers: ``fit(X[, y])`` then ``transform(X)`` -> codes.

    ``transform`` returns packed codes, ``uint8`` of shape
    ``(n_samples, ceil(n_bits / 8))`` in the bit order of :mod:`skhash.codes`.

    Subclasses implement:

    - ``_fit(X, y)``: learn from validated ``X`` (float64 or float32, finite)
      and ``y`` (``None`` for unsupervised hashers, else labels as returned by
      :func:`skhash._supervision.check_labels`);
    - ``_project(X)``: an array of shape ``(n_samples, n_bits)`` whose sign
      gives the bits (bit = projection >= 0).

    Parameters
    ----------
    n_bits : int, default=32
        Length of the binary codes, at most 4096; some methods allow fewer on
        a given training set (KSH at most one bit per anchor, for instance)
        and say so before fitting.
    """

    _parameter_constraints: dict = {
        "n_bits": [Interval(Integral, 1, MAX_N_BITS, closed="both")],
    }

    # Hashers that need at least this many samples to fit (PCA, graphs) raise
    # scikit-learn's usual error below it.
    _min_samples = 1
    # Unsupervised hashers that use labels when they are given (y optional).
    _optional_y = False
    # Hashers whose fit takes only sums over rows also implement
    # ``_fit_rows(rows)`` over :class:`skhash.utils._rows.Rows` (their ``_fit``
    # calls it on the rows in memory; :func:`fit_from_rows` on any others,
    # such as a Dask array's partitions), computing in ``_fit_dtype`` (None:
    # the input's floating precision).
    _fit_dtype = None

    def _fits_from_rows(self):
        """Whether this hasher, with its parameters, fits from sums over rows:
        a hasher whose statistics are sums for some parameters only (a mean,
        not a median) says so here."""
        return callable(getattr(self, "_fit_rows", None))

    @abstractmethod
    def __init__(self, n_bits=32):
        self.n_bits = n_bits

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the hash functions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Class labels or a multi-label indicator matrix. Required by supervised
            hashers, ignored by the others.

        Returns
        -------
        self : object
            The fitted hasher.
        """
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_min_samples=self._min_samples,
        )
        required = self.__sklearn_tags__().target_tags.required
        if required or (self._optional_y and y is not None):
            y = check_supervision(y, n_samples=X.shape[0])
        else:
            y = None
        self._check_n_bits(*X.shape)
        self._fit(X, y)
        return self

    def _check_n_bits(self, n_samples, n_features):
        max_n_bits = self._max_n_bits(n_samples, n_features)
        if max_n_bits is not None and self.n_bits > max_n_bits:
            raise ValueError(
                f"n_bits={self.n_bits} is more than {type(self).__name__} can learn "
                f"from data of n_samples={n_samples}, n_features={n_features}: "
                f"at most {max_n_bits}."
            )

    def transform(self, X):
        """Encode samples as packed binary codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, ceil(n_bits / 8)), dtype uint8
            Packed codes.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        # A hasher whose n_bits may be None (one bit per class, say) fixes its
        # code length at fit, as n_bits_.
        n_bits = getattr(self, "n_bits_", self.n_bits)
        # In row blocks: the projection is n_bits floats a row, the code n_bits/8
        # bytes, so projecting everything at once would need 64x the output.
        rows = rows_within(8 * n_bits)  # float64 projections
        codes = np.empty((len(X), n_bytes_for(n_bits)), dtype=np.uint8)
        for start in range(0, len(X), rows):
            block = self._project(X[start : start + rows])
            codes[start : start + rows] = pack_codes(block >= 0)
        return codes

    def _max_n_bits(self, n_samples, n_features):
        """The most bits this method can learn from data of this shape.

        ``None`` (the default) means no bound beyond ``MAX_N_BITS``. Checked by
        :meth:`fit` before any work, so an impossible ``n_bits`` fails at once.
        """
        return None

    @abstractmethod
    def _fit(self, X, y):
        """Learn from validated data; set the fitted attributes."""

    @abstractmethod
    def _project(self, X):
        """Real-valued projection of shape (n_samples, n_bits); bit = value >= 0."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Codes are uint8 whatever the input dtype.
        tags.transformer_tags.preserves_dtype = []
        return tags


class SupervisedHasherMixin:
    """Mixin for hashers that learn from labels: ``fit(X, y)`` requires ``y``.

    ``y`` is 1-D class labels or a 2-D multi-label indicator matrix; two samples
    are similar when they share at least one label.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def fits_from_rows(hasher):
    """Whether a hasher's fit takes only sums over rows (see
    :func:`fit_from_rows`)."""
    return bool(getattr(hasher, "_fits_from_rows", lambda: False)())


def fit_from_rows(hasher, rows_of, n_samples, n_features):
    """Fit a hasher from sums over rows it never holds all at once.

    The checks :meth:`BaseHasher.fit` makes of the data's shape, then the
    hasher's own fit from ``rows_of(dtype)``: the rows (and, for a supervised
    hasher, the labels as a float indicator matrix) as
    :class:`skhash.utils._rows.Rows`, in ``dtype`` (None: the input's
    floating precision). :mod:`skhash.dask` fits this way from partitions.

    Parameters
    ----------
    hasher : BaseHasher
        A hasher for which :func:`fits_from_rows` is true; it is modified.
    rows_of : callable
        ``rows_of(dtype)`` returns the rows to fit from.
    n_samples, n_features : int
        The shape of the data.

    Returns
    -------
    hasher : BaseHasher
        The fitted hasher.
    """
    hasher._validate_params()
    if n_samples < hasher._min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) while a minimum of "
            f"{hasher._min_samples} is required by {type(hasher).__name__}."
        )
    hasher.n_features_in_ = n_features
    hasher._check_n_bits(n_samples, n_features)
    hasher._fit_rows(rows_of(hasher._fit_dtype))
    return hasher
