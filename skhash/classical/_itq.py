"""Iterative quantization (ITQ) and its supervised variant CCA-ITQ."""

from numbers import Integral, Real

import numpy as np
from scipy.linalg import eigh
from sklearn.utils import check_random_state
from sklearn.utils.extmath import svd_flip

from .._supervision import check_labels
from ..base import BaseHasher, SupervisedHasherMixin
from ..utils._param_validation import Interval


def _top_directions(matrix, n_components, right=None):
    """Top eigenvectors (descending) of a symmetric (generalised) problem.

    Signs follow scikit-learn's ``svd_flip`` convention so fits are
    reproducible across LAPACK builds.
    """
    size = matrix.shape[0]
    values, vectors = eigh(
        matrix, right, subset_by_index=[size - n_components, size - 1]
    )
    values, vectors = values[::-1], vectors[:, ::-1]
    vectors, _ = svd_flip(vectors, np.ones((n_components, 1)))
    return values, vectors


def _rotate(V, n_iter, random_state):
    """ITQ's alternating minimisation of ||B - V R||_F^2 over B and orthogonal R.

    Returns the rotation and the quantisation loss before each iteration's
    rotation update (non-increasing: each step minimises over one variable).
    """
    rng = check_random_state(random_state)
    n_bits = V.shape[1]
    rotation, _ = np.linalg.qr(rng.standard_normal((n_bits, n_bits)))
    losses = np.empty(n_iter)
    for iteration in range(n_iter):
        projected = V @ rotation
        B = np.where(projected >= 0, 1.0, -1.0)
        losses[iteration] = np.sum((B - projected) ** 2)
        # Orthogonal Procrustes: SVD of B^T V = S diag Omega^T gives R = Omega S^T.
        S, _, Omega_t = np.linalg.svd(B.T @ V)
        rotation = Omega_t.T @ S.T
    return rotation, losses


class ITQHasher(BaseHasher):
    """Iterative quantization: PCA followed by a learned rotation.

    The centred data are projected on their ``n_bits`` leading principal
    directions; an orthogonal rotation is then learned that brings the
    projections close to the vertices of the hypercube (minimising the
    quantisation loss ``||B - V R||_F^2``), and the bits are the signs of the
    rotated projections.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes; at most the number of features.
    n_iter : int, default=50
        Iterations of the alternating minimisation.
    random_state : int, RandomState instance or None, default=None
        Seed of the random orthogonal initial rotation.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Training mean.
    components_ : ndarray of shape (n_features, n_bits)
        Projection directions (principal directions for ITQ).
    rotation_ : ndarray of shape (n_bits, n_bits)
        Learned orthogonal rotation.
    quantization_loss_ : ndarray of shape (n_iter,)
        ``||B - V R||_F^2`` at each iteration, before its rotation update.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    CCAITQHasher : The supervised variant, with CCA in place of PCA.
    LSHHasher : Random hyperplanes, the data-independent baseline.

    Notes
    -----
    Follows Gong's reference code: no normalisation of the rows before PCA
    (faiss's ``ITQTransform`` L2-normalises them), a zero projection maps to
    bit 1, and the rotation of the last iteration is kept.

    References
    ----------
    .. [1] Y. Gong and S. Lazebnik, "Iterative quantization: A procrustean
       approach to learning binary codes", CVPR 2011.
    .. [2] Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, "Iterative
       quantization: A procrustean approach to learning binary codes for
       large-scale image retrieval", IEEE TPAMI 35(12), 2013.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import ITQHasher
    >>> X, _ = load_digits(return_X_y=True)
    >>> codes = ITQHasher(n_bits=16, random_state=0).fit_transform(X)
    >>> codes.shape
    (1797, 2)
    """

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }
    _min_samples = 2

    def __init__(self, n_bits=32, *, n_iter=50, random_state=None):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    def _max_n_bits(self, n_samples, n_features):
        # One bit per principal (or canonical) direction.
        return n_features

    def _fit(self, X, y):
        X = X.astype(np.float64)
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        self.components_ = self._directions(centred, y)
        self.rotation_, self.quantization_loss_ = _rotate(
            centred @ self.components_, self.n_iter, self.random_state
        )

    def _directions(self, centred, y):
        covariance = centred.T @ centred / len(centred)
        return _top_directions(covariance, self.n_bits)[1]

    def _project(self, X):
        return (X - self.mean_) @ self.components_ @ self.rotation_


class CCAITQHasher(SupervisedHasherMixin, ITQHasher):
    """ITQ on canonical correlation directions between data and labels (CCA-ITQ).

    Supervised ITQ: the PCA step is replaced by canonical correlation analysis
    between ``X`` and the label indicator matrix, each direction scaled by its
    canonical correlation; the ITQ rotation follows.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes; at most the number of features.
    n_iter : int, default=50
        Iterations of the ITQ rotation.
    reg : float, default=1e-4
        Ridge added to both covariance matrices of CCA, relative to the mean of
        their diagonals, so the generalised eigenproblem is well posed.
    random_state : int, RandomState instance or None, default=None
        Seed of the random orthogonal initial rotation.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Training mean.
    components_ : ndarray of shape (n_features, n_bits)
        CCA directions of ``X``, scaled by their canonical correlations.
    correlations_ : ndarray of shape (n_bits,)
        Canonical correlations, descending.
    rotation_ : ndarray of shape (n_bits, n_bits)
        Learned orthogonal rotation.
    quantization_loss_ : ndarray of shape (n_iter,)
        ``||B - V R||_F^2`` at each iteration, before its rotation update.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    ITQHasher : The unsupervised original.

    Notes
    -----
    ``y`` is 1-D class labels (one-hot encoded) or a multi-label indicator
    matrix. At most ``rank(Y) <= n_labels`` correlations are non-zero (``n_classes
    - 1`` for single-label ``y``); further directions get weights near zero
    and the rotation spreads the label information over all bits.

    References
    ----------
    .. [1] Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, "Iterative
       quantization: A procrustean approach to learning binary codes for
       large-scale image retrieval", IEEE TPAMI 35(12), 2013.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import CCAITQHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> CCAITQHasher(n_bits=16, random_state=0).fit(X, y).transform(X).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **ITQHasher._parameter_constraints,
        "reg": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, n_bits=32, *, n_iter=50, reg=1e-4, random_state=None):
        super().__init__(n_bits, n_iter=n_iter, random_state=random_state)
        self.reg = reg

    def _directions(self, centred, y):
        Y = check_labels(y)
        if Y.ndim == 1:
            Y = (Y[:, None] == np.unique(Y)[None, :]).astype(np.float64)
        Y = Y - Y.mean(axis=0)
        n = len(centred)
        cov_xx, cov_yy = centred.T @ centred / n, Y.T @ Y / n
        cov_xy = centred.T @ Y / n
        cov_xx += self.reg * np.mean(np.diag(cov_xx)) * np.eye(len(cov_xx))
        cov_yy += self.reg * max(np.mean(np.diag(cov_yy)), 1e-12) * np.eye(len(cov_yy))
        # Cxy Cyy^-1 Cyx w = r^2 Cxx w: the canonical directions of X.
        between = cov_xy @ np.linalg.solve(cov_yy, cov_xy.T)
        squared, directions = _top_directions(
            (between + between.T) / 2, self.n_bits, cov_xx
        )
        self.correlations_ = np.sqrt(np.clip(squared, 0, None))
        return directions * self.correlations_
