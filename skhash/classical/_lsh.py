"""Locality-sensitive hashing with random hyperplanes."""

from sklearn.utils import check_random_state

from ..base import BaseHasher
from ..utils._rows import Rows, column_sums


class LSHHasher(BaseHasher):
    """Random-hyperplane locality-sensitive hashing (sign random projections).

    Each bit is the side of a random hyperplane through the training mean: the
    data are centred by the mean of the training set and projected on ``n_bits``
    directions with i.i.d. standard normal entries; the bit is 1 where the
    projection is >= 0. Two codes disagree on a bit with probability
    ``angle / pi``, so the Hamming distance estimates the angle between the
    centred vectors.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the binary codes.
    random_state : int, RandomState instance or None, default=None
        Seed of the random hyperplanes.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Training mean, subtracted before projecting.
    projection_ : ndarray of shape (n_features, n_bits)
        Normal vectors of the hyperplanes.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    ITQHasher : Learned rotation of PCA directions; usually much better codes.

    Notes
    -----
    The hyperplanes are neither normalised nor offset: normalising does not
    change signs, and offsets would break the angle estimate.

    References
    ----------
    .. [1] M. S. Charikar, "Similarity estimation techniques from rounding
       algorithms", STOC 2002.
    .. [2] A. Gionis, P. Indyk and R. Motwani, "Similarity search in high
       dimensions via hashing", VLDB 1999.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import LSHHasher
    >>> X, _ = load_digits(return_X_y=True)
    >>> codes = LSHHasher(n_bits=12, random_state=0).fit_transform(X)
    >>> codes.shape, codes.dtype
    ((1797, 2), dtype('uint8'))
    """

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "random_state": ["random_state"],
    }

    def __init__(self, n_bits=32, *, random_state=None):
        self.n_bits = n_bits
        self.random_state = random_state

    def _fit(self, X, y):
        self._fit_rows(Rows(X))

    def _fit_rows(self, rows):
        """Fit from :class:`~skhash.utils._rows.Rows` (``skhash.dask`` passes
        partitions): the mean is the only statistic of the data."""
        rng = check_random_state(self.random_state)
        (total,) = rows.reduce(column_sums)
        self.mean_ = total / rows.n_samples
        self.projection_ = rng.standard_normal(
            (self.n_features_in_, self.n_bits)
        ).astype(self.mean_.dtype, copy=False)

    def _project(self, X):
        return (X - self.mean_) @ self.projection_
