"""Kernel-based supervised hashing (KSH)."""

from numbers import Integral, Real

import numpy as np
from scipy.linalg import eigh
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .._supervision import relevance
from ..base import BaseHasher, SupervisedHasherMixin


def _smooth_sign(x):
    # 2 / (1 + exp(-x)) - 1 equals tanh(x / 2), which never overflows.
    return np.tanh(x / 2)


def _cost_and_gradient(a, K, residual):
    """g(a) = -phi(Ka)^T R phi(Ka) and its gradient -K^T((R phi) * (1 - phi^2)).

    phi'(x) = (1 - phi^2) / 2, and the quadratic form contributes a factor 2.
    """
    phi = _smooth_sign(K @ a)
    r_phi = residual @ phi
    return -phi @ r_phi, -K.T @ (r_phi * (1 - phi**2))


def _sign(x):
    return np.where(x > 0, 1.0, -1.0)  # sgn(0) = -1, as the reference


def _accelerated_descent(a, K, residual, max_iter, tol):
    """Nesterov's accelerated gradient with a backtracking step size.

    Returns the solution and the number of iterations run.
    """
    n_labeled = len(K)
    step = 1.0
    previous = a
    cost, _ = _cost_and_gradient(a, K, residual)
    momentum_prev, momentum = 0.0, 1.0
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        point = a + ((momentum_prev - 1) / momentum) * (a - previous)
        point_cost, gradient = _cost_and_gradient(point, K, residual)
        while True:
            candidate = point - step * gradient
            candidate_cost, _ = _cost_and_gradient(candidate, K, residual)
            # Accept once the quadratic upper bound with 1/step holds.
            bound = point_cost - 0.5 * step * gradient @ gradient
            if candidate_cost <= bound or step < 1e-12:
                break
            step /= 2
        previous, a = a, candidate
        momentum_prev, momentum = momentum, (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        change = abs(candidate_cost - cost) / n_labeled
        cost = candidate_cost
        if change <= tol:
            break
    return a, n_iter


class KSHHasher(SupervisedHasherMixin, BaseHasher):
    """Kernel-based supervised hashing.

    Each bit is the sign of a kernel expansion over anchor points,
    ``sgn(a_t^T (k(x) - mean))`` with an RBF kernel to ``n_anchors`` anchors.
    The bits are learned greedily so that code inner products fit the label
    similarity (``+1`` when two samples share a label, ``-1`` otherwise): each
    bit fits what the previous bits left of ``n_bits * S``, starting from a
    spectral relaxation and refined by accelerated gradient descent on a
    smoothed objective.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.
    n_anchors : int, default=300
        Anchors drawn at random from the training rows; capped at the number of
        training rows.
    n_labeled : int, default=2000
        Size of the labelled subset, drawn at random, on which the pairwise
        similarities are fitted. Fitting costs O(n_labeled^2) per iteration,
        whatever the number of training rows.
    max_iter : int, default=500
        Iterations of accelerated gradient descent per bit.
    tol : float, default=1e-2
        Stop when the cost changes by at most ``tol`` per labelled sample.
    random_state : int, RandomState instance or None, default=None
        Seed of the anchors and of the labelled subset.

    Attributes
    ----------
    anchors_ : ndarray of shape (n_anchors, n_features)
        Anchor points.
    sigma_ : float
        Kernel width: the mean squared distance from the labelled rows to the
        anchors.
    kernel_mean_ : ndarray of shape (n_anchors,)
        Mean kernel vector of the labelled rows, subtracted before projecting.
    coef_ : ndarray of shape (n_anchors, n_bits)
        Projection vectors ``a_t``.
    n_iter_ : int
        Gradient iterations run, summed over the bits.
    objective_ : ndarray of shape (n_bits, 2)
        Per bit, ``y^T R y`` of the spectral solution (column 0) and of the
        kept solution (column 1); the kept one is never worse.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    CCAITQHasher : A linear supervised hasher.

    Notes
    -----
    Follows the authors' MATLAB code where the paper is silent: the kernel is
    ``exp(-||x - a||^2 / (2 sigma))`` with ``sigma`` the mean squared distance
    to the anchors, the spectral initialisation is scaled so that
    ``||K a0||^2 = n_labeled``, and per bit the better of the spectral and
    the optimised solutions is kept. ``sigma`` and the kernel mean are computed
    on the labelled subset, so fitting cost is bounded by ``n_labeled``. A
    projection of exactly zero maps to bit 1 here (the reference's ``> 0``
    maps it to 0); this happens with probability zero.

    References
    ----------
    .. [1] W. Liu, J. Wang, R. Ji, Y.-G. Jiang and S.-F. Chang, "Supervised
       hashing with kernels", CVPR 2012.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import KSHHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> hasher = KSHHasher(n_bits=8, n_anchors=50, n_labeled=300, random_state=0)
    >>> hasher.fit(X, y).transform(X).shape
    (1797, 1)
    """

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "n_anchors": [Interval(Integral, 1, None, closed="left")],
        "n_labeled": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }
    _min_samples = 2

    def __init__(
        self,
        n_bits=32,
        *,
        n_anchors=300,
        n_labeled=2000,
        max_iter=500,
        tol=1e-2,
        random_state=None,
    ):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.n_labeled = n_labeled
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _fit(self, X, y):
        rng = check_random_state(self.random_state)
        n_samples = len(X)
        X = X.astype(np.float64)
        self.anchors_ = X[rng.choice(n_samples, min(self.n_anchors, n_samples), False)]
        labeled = rng.choice(n_samples, min(self.n_labeled, n_samples), replace=False)
        squared = euclidean_distances(X[labeled], self.anchors_, squared=True)
        self.sigma_ = float(squared.mean()) or 1.0  # all rows equal: any width
        kernel = np.exp(-squared / (2 * self.sigma_))
        self.kernel_mean_ = kernel.mean(axis=0)
        K = kernel - self.kernel_mean_

        similar = relevance(y[labeled], y[labeled])
        residual = self.n_bits * np.where(similar, 1.0, -1.0)
        gram = K.T @ K
        gram += 1e-6 * max(np.trace(gram) / len(gram), 1e-12) * np.eye(len(gram))
        residual_K = residual @ K  # updated by rank one after every bit
        self.coef_ = np.empty((K.shape[1], self.n_bits))
        self.objective_ = np.empty((self.n_bits, 2))
        self.n_iter_ = 0
        for bit in range(self.n_bits):
            between = K.T @ residual_K
            _, vectors = eigh(
                (between + between.T) / 2,
                gram,
                subset_by_index=[len(gram) - 1, len(gram) - 1],
            )
            start = vectors[:, 0]
            start *= np.sqrt(len(K) / max(np.sum((K @ start) ** 2), 1e-300))
            refined, n_iter = _accelerated_descent(
                start, K, residual, self.max_iter, self.tol
            )
            self.n_iter_ += n_iter
            codes = [_sign(K @ start), _sign(K @ refined)]
            scores = [c @ residual @ c for c in codes]
            best = int(scores[1] > scores[0])
            self.coef_[:, bit] = (start, refined)[best]
            self.objective_[bit] = scores[0], scores[best]
            chosen = codes[best]
            residual -= np.outer(chosen, chosen)
            residual_K -= np.outer(chosen, chosen @ K)

    def _kernel(self, X):
        squared = euclidean_distances(X, self.anchors_, squared=True)
        return np.exp(-squared / (2 * self.sigma_)) - self.kernel_mean_

    def _project(self, X):
        return self._kernel(X.astype(np.float64)) @ self.coef_
