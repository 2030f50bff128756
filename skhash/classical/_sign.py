"""Sign binarization of the features: vector databases' binary quantization."""

import warnings
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ..base import MAX_N_BITS, BaseHasher
from ..utils._param_validation import Interval
from ..utils._rows import Rows


class SignHasher(BaseHasher):
    """One bit per feature: 1 where the feature is >= its threshold.

    The binary quantization of vector databases (Qdrant, Weaviate, Milvus):
    each feature of an embedding becomes one bit, its sign (``threshold="zero"``)
    or its side of the feature's training mean or median. With
    ``n_bits=None`` there is one bit per feature; an integer keeps only the
    first ``n_bits`` features, as Matryoshka embeddings are truncated.

    Parameters
    ----------
    n_bits : int or None, default=None
        Length of the binary codes: the number of leading features kept.
        None: one bit per feature (``n_bits_ = n_features_in_``). More than
        the data's features is an error, raised by ``fit``.
    threshold : {"zero", "mean", "median"}, default="zero"
        Where each feature is cut. ``"zero"``: its sign, the vector
        databases' rule, which learns nothing from the data. ``"mean"`` or
        ``"median"``: the feature's mean or median over the training set, so
        that a feature that is always positive still splits the data (the
        median in two halves).

    Attributes
    ----------
    threshold_ : ndarray of shape (`n_bits_`,)
        The threshold of each kept feature, float64 whatever the input dtype.
    n_bits_ : int
        Length of the codes.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    LSHHasher : Signs of random projections instead of the features.
    ITQHasher : Signs of learned directions; the classical method to beat it.

    Notes
    -----
    No learning beyond one threshold per feature: this is the baseline to
    beat, not a method. It is as good as the features are for sign codes:
    on embeddings whose features are roughly centred and equally informative
    (many text embedding models) it keeps much of the cosine ranking, since
    the Hamming distance between sign codes estimates the angle between
    vectors when the coordinates are isotropic [1]_; on features of unequal
    scale or correlated with each other, a learned hasher of the same length
    should do better. Codes that beat it are worth their training.

    Each bit is ``x >= threshold_`` exactly: float32 input is compared with
    float64 thresholds, which converts it exactly. A feature equal to its
    threshold (an exact zero, under ``"zero"``) gives bit 1, as every skhash
    hasher's projection of zero does; Qdrant's article [2]_ describes bit 1
    for values strictly above zero, so such codes differ from Qdrant's where
    features are exactly zero (common after a ReLU).

    ``"zero"`` and ``"mean"`` are sums over rows, so :func:`skhash.dask.fit`
    fits them exactly from a Dask array's partitions; a median is not, and
    ``threshold="median"`` is fitted there on rows drawn at random
    (``n_samples``).

    References
    ----------
    .. [1] M. S. Charikar, "Similarity estimation techniques from rounding
       algorithms", STOC 2002.
    .. [2] N. Kasliwal, "Binary Quantization - Vector Search, 40x Faster",
       Qdrant, 2023. https://qdrant.tech/articles/binary-quantization/
    .. [3] Weaviate, "Vector quantization: binary quantization",
       https://docs.weaviate.io/weaviate/concepts/vector-quantization
    .. [4] A. Kusupati et al., "Matryoshka Representation Learning",
       NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash import SignHasher
    >>> X = np.array([[1.0, -1.0, 0.0, 2.0], [3.0, 1.0, -3.0, 0.1]])
    >>> SignHasher().fit_transform(X)
    array([[176],
           [208]], dtype=uint8)
    >>> hasher = SignHasher(n_bits=2, threshold="mean").fit(X)
    >>> hasher.threshold_, hasher.n_bits_
    (array([2., 0.]), 2)
    >>> np.unpackbits(hasher.transform(X), axis=1, count=2)
    array([[0, 0],
           [1, 1]], dtype=uint8)
    """

    _parameter_constraints = {
        "n_bits": [Interval(Integral, 1, MAX_N_BITS, closed="both"), None],
        "threshold": [StrOptions({"zero", "mean", "median"})],
    }

    def __init__(self, n_bits=None, *, threshold="zero"):
        self.n_bits = n_bits
        self.threshold = threshold

    def _max_n_bits(self, n_samples, n_features):
        # None takes every feature, however many: nothing to bound.
        return None if self.n_bits is None else n_features

    def _fit(self, X, y):
        if self.threshold == "median":
            self._set_n_bits()
            # A float64 copy of the kept columns that np.median may reorder in
            # place: the only copy, and the median of float32 data without
            # float32 rounding of the two middle values' average.
            kept = X[:, : self.n_bits_].astype(np.float64)
            self.threshold_ = np.median(kept, axis=0, overwrite_input=True)
        else:
            self._fit_rows(Rows(X))
        self._warn_constant_bits(X[:, : self.n_bits_])

    def _warn_constant_bits(self, X):
        # Features that never cross their threshold (pixels, ReLU outputs
        # under "zero") give a bit equal in every code: silent, and useless.
        lowest, highest = X.min(axis=0), X.max(axis=0)
        constant = (lowest >= self.threshold_) | (highest < self.threshold_)
        if constant.any():
            warnings.warn(
                f"{constant.sum()} of the {self.n_bits_} bits are the same for "
                f"every training sample (threshold={self.threshold!r}): their "
                "features never cross the threshold. Non-negative features need "
                "threshold='mean' or 'median'.",
                UserWarning,
                stacklevel=4,
            )

    def _fits_from_rows(self):
        # A median is no sum: skhash.dask.fit fits it on a sample instead.
        return self.threshold != "median"

    def _fit_rows(self, rows):
        """Fit from :class:`~skhash.utils._rows.Rows` (``skhash.dask`` passes
        partitions): the mean, or no statistic at all."""
        self._set_n_bits()
        if self.threshold == "zero":
            self.threshold_ = np.zeros(self.n_bits_)
            return
        (total,) = rows.reduce(_float64_column_sums)
        self.threshold_ = total[: self.n_bits_] / rows.n_samples

    def _set_n_bits(self):
        self.n_bits_ = self.n_features_in_ if self.n_bits is None else self.n_bits

    def _project(self, X):
        return X[:, : self.n_bits_] - self.threshold_


def _float64_column_sums(X):
    """Column sums accumulated in float64, without a float64 copy of ``X``."""
    return (X.sum(axis=0, dtype=np.float64),)
