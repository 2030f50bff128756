"""Spectral hashing: analytic eigenfunctions of a uniform distribution."""

import numpy as np

from ..base import BaseHasher
from ._itq import _top_directions


def _select_modes(lengths, n_bits):
    """The ``n_bits`` one-dimensional modes of smallest eigenvalue.

    ``lengths`` are the ranges ``R_i`` of the data along each principal
    direction. Mode ``m`` on direction ``i`` has eigenvalue proportional to
    ``(m * pi / R_i) ** 2``. Modes are enumerated as the reference code does
    (the zero mode, then direction 1's modes 1, 2, ..., then direction 2's) and
    sorted with a stable sort, so exact ties keep that order.

    Returns
    -------
    modes : ndarray of shape (n_bits, n_directions), dtype int
        One non-zero entry per row: the mode number on its direction.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    max_modes = np.ceil((n_bits + 1) * lengths / lengths.max()).astype(int)
    # Each candidate is one (direction, mode) pair; listing them as pairs rather
    # than as rows of a dense table keeps memory linear in n_bits.
    directions = np.repeat(np.arange(len(lengths)), max_modes - 1)
    numbers = np.concatenate([np.arange(1, m) for m in max_modes])
    eigenvalues = (numbers * np.pi / lengths[directions]) ** 2
    # The longest direction alone offers n_bits modes, so there are enough.
    chosen = np.argsort(eigenvalues, kind="stable")[:n_bits]
    modes = np.zeros((n_bits, len(lengths)), dtype=int)
    modes[np.arange(n_bits), directions[chosen]] = numbers[chosen]
    return modes


class SpectralHasher(BaseHasher):
    """Spectral hashing: thresholded eigenfunctions of the data's PCA box.

    The data are projected on their leading principal directions and assumed
    uniform on the box they span; the bits are the signs of the Laplacian
    eigenfunctions of that box with the smallest eigenvalues,
    ``cos(m * pi * (x_i - min_i) / R_i)`` for a mode ``m`` along direction
    ``i`` of length ``R_i``. Low modes along long directions come first, so a
    long direction can carry several bits.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_directions)
        Principal directions, ``n_directions = min(n_bits, n_features)``.
    min_, max_ : ndarray of shape (n_directions,)
        Range of the training projections on each direction.
    modes_ : ndarray of shape (n_bits, n_directions), dtype int
        Selected modes, one non-zero entry per row.
    omegas_ : ndarray of shape (n_bits, n_directions)
        Angular frequencies ``modes_ * pi / (max_ - min_)``.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    ITQHasher : PCA with a learned rotation instead of eigenfunctions.

    Notes
    -----
    Follows the authors' MATLAB code: only one-dimensional modes are
    enumerated, with ``ceil((n_bits + 1) * R_i / max R)`` candidates per
    direction; the range is widened by machine epsilon on both sides; the
    projections are not centred (the range absorbs the offset). The reference
    sets a bit where the product of cosines is ``> 0``; skhash's hashers use
    ``>= 0``, which differs only where a projection falls exactly on a node.

    References
    ----------
    .. [1] Y. Weiss, A. Torralba and R. Fergus, "Spectral hashing", NIPS 2008.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import SpectralHasher
    >>> X, _ = load_digits(return_X_y=True)
    >>> SpectralHasher(n_bits=24).fit_transform(X).shape
    (1797, 3)
    """

    _min_samples = 2

    def __init__(self, n_bits=32):
        self.n_bits = n_bits

    def _fit(self, X, y):
        X = X.astype(np.float64)
        centred = X - X.mean(axis=0)
        n_directions = min(self.n_bits, X.shape[1])
        covariance = centred.T @ centred / len(X)
        self.components_ = _top_directions(covariance, n_directions)[1]
        projected = X @ self.components_
        eps = np.finfo(np.float64).eps
        self.min_ = projected.min(axis=0) - eps
        self.max_ = projected.max(axis=0) + eps
        self.modes_ = _select_modes(self.max_ - self.min_, self.n_bits)
        self.omegas_ = self.modes_ * np.pi / (self.max_ - self.min_)

    def _project(self, X):
        offsets = X @ self.components_ - self.min_
        # One non-zero frequency per bit: the product of cosines is one cosine.
        direction = np.argmax(self.modes_ > 0, axis=1)
        frequency = self.omegas_[np.arange(self.n_bits), direction]
        return np.cos(offsets[:, direction] * frequency)
