"""Kernel-based supervised hashing (KSH)."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.linalg import eigh
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils import check_random_state

from .._supervision import relevance
from ..base import BaseHasher, SupervisedHasherMixin
from ..utils._param_validation import Interval

# The reference doubles its Lipschitz estimate at most 50 times per iteration
# before it gives up on the iteration and stops.
_MAX_HALVINGS = 50


def _smooth_sign(x):
    # 2 / (1 + exp(-x)) - 1 equals tanh(x / 2) exactly, and tanh never overflows.
    return np.tanh(x / 2)


def _cost(a, K, apply_residual):
    phi = _smooth_sign(K @ a)
    return -phi @ apply_residual(phi)


def _cost_and_gradient(a, K, apply_residual):
    """g(a) = -phi(Ka)^T R phi(Ka) and its gradient, for a symmetric R.

    dg/da = -2 K^T ((R phi) * phi'(Ka)) and phi' = (1 - phi^2) / 2, so the two
    factors of 2 cancel: -K^T ((R phi) * (1 - phi^2)), the reference's formula.
    """
    phi = _smooth_sign(K @ a)
    r_phi = apply_residual(phi)
    return -phi @ r_phi, -K.T @ (r_phi * (1 - phi**2))


def _accelerated_descent(a, K, apply_residual, max_iter, tol):
    """Nesterov's accelerated gradient with a backtracking step, as the reference.

    Returns the solution and the number of steps taken.
    """
    previous = a
    cost = _cost(a, K, apply_residual)
    step = 1.0  # shrinks only, so later iterations start from the last good one
    momentum_prev, momentum = 0.0, 1.0
    for n_iter in range(max_iter):
        point = a + ((momentum_prev - 1) / momentum) * (a - previous)
        point_cost, gradient = _cost_and_gradient(point, K, apply_residual)
        decrease = 0.5 * gradient @ gradient
        for _ in range(_MAX_HALVINGS + 1):
            candidate = point - step * gradient
            candidate_cost = _cost(candidate, K, apply_residual)
            # The quadratic upper bound with curvature 1/step holds: accept.
            if candidate_cost <= point_cost - step * decrease:
                break
            step /= 2
        else:  # no step decreases the cost enough (rounding): stop here
            return a, n_iter
        previous, a = a, candidate
        momentum_prev, momentum = momentum, (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        change, cost = abs(candidate_cost - cost) / len(K), candidate_cost
        if change <= tol:
            return a, n_iter + 1
    return a, max_iter


def _sign(x):
    return np.where(x > 0, 1.0, -1.0)  # sgn(0) = -1, as the reference


def _similar_times(y):
    """Return v -> [share a label] @ v without the l x l matrix for class labels."""
    if y.ndim == 1:
        # [y_i == y_j] = E E^T with E the one-hot class matrix: O(l * n_classes).
        one_hot = (y[:, None] == np.unique(y)[None, :]).astype(np.float64)
        return lambda v: one_hot @ (one_hot.T @ v)
    similar = relevance(y, y).astype(np.float64)
    return lambda v: similar @ v


class KSHHasher(SupervisedHasherMixin, BaseHasher):
    """Kernel-based supervised hashing.

    Each bit is the sign of a kernel expansion over anchor points,
    ``a_t^T (k(x) - m)``, with an RBF kernel ``k`` to ``n_anchors`` anchors and
    ``m`` the mean kernel vector. The bits are learned greedily on a labelled
    subset so that code inner products fit the label similarity ``S`` (``+1``
    when two samples share a label, ``-1`` otherwise): bit ``t`` fits the
    residual ``R = n_bits * S - sum_{s<t} y_s y_s^T`` left by the previous
    bits, starting from a spectral relaxation refined by accelerated gradient
    descent on a smoothed objective.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.
    n_anchors : int, default=300
        Anchors drawn at random from the training rows; when there are fewer
        training rows, all of them are anchors.
    n_labeled : int or None, default=2000
        Size of the labelled subset, drawn at random, on which the pairwise
        similarities are fitted (the reference's ``l = 2000``). The fitting
        cost grows with ``n_labeled``, not with the number of training rows,
        and the rows left out are not used at all: a ``UserWarning`` says so
        when ``y`` has more rows. ``None`` uses every row (see Notes for the
        trade-off).
    max_iter : int, default=500
        Most iterations of accelerated gradient descent per bit.
    tol : float, default=1e-2
        Stop when the cost changes by at most ``tol`` per labelled sample.
    random_state : int, RandomState instance or None, default=None
        Seed of the anchors and of the labelled subset.

    Attributes
    ----------
    anchors_ : ndarray of shape (n_used_anchors, n_features)
        Anchor points; ``n_used_anchors`` is ``n_anchors`` or the number of
        training rows, whichever is smaller.
    sigma_ : float
        Kernel width: the mean squared distance from the labelled rows to the
        anchors; the kernel is ``exp(-||x - a||^2 / (2 * sigma_))``.
    kernel_mean_ : ndarray of shape (n_used_anchors,)
        Mean kernel vector of the labelled rows, subtracted before projecting.
    coef_ : ndarray of shape (n_used_anchors, n_bits)
        Projection vectors ``a_t``, one column per bit.
    objective_ : ndarray of shape (n_bits,)
        Per bit, ``y^T R y`` of the kept solution, with ``y`` its codes
        (``+1``/``-1``) on the labelled subset and ``R`` the residual.
    spectral_objective_ : ndarray of shape (n_bits,)
        Per bit, ``y^T R y`` of the spectral initialisation; ``objective_``
        is never lower.
    n_iter_ : int
        Gradient steps taken, summed over the bits.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    CCAITQHasher : A linear supervised hasher, much faster to fit.
    SpectralHasher : Unsupervised hashing from the data's spectrum.

    Notes
    -----
    Follows the authors' MATLAB code where the paper leaves room: the kernel
    width ``sigma_`` is the mean *squared* distance to the anchors; the
    spectral solution (top generalised eigenvector of ``(K^T R K, K^T K)``,
    ``K`` the centred kernel matrix of the labelled subset) is scaled so that
    ``||K a||^2 = n_labeled``; gradient descent (Nesterov, backtracking) stops
    after ``max_iter`` steps or when the cost changes by at most ``tol`` per
    sample; and per bit the optimised solution is kept only when its
    ``y^T R y`` is larger than the spectral one's. The smooth sign
    ``2 / (1 + exp(-x)) - 1`` is computed as ``tanh(x / 2)``, its exact
    overflow-free equal.

    Two departures keep the cost bounded by ``n_labeled``: ``sigma_`` and the
    kernel mean come from the labelled subset, not from every training row,
    and ``K^T K`` gets a ridge of ``1e-6`` times its mean diagonal so that the
    generalised eigenproblem is definite. A projection of exactly zero gives
    bit 1 here and 0 in the reference (``> 0``); this has probability zero.

    For 1-D class labels the similarity is applied in factored form, so one
    gradient step costs ``O(n_labeled * (n_anchors + n_classes + n_bits))``;
    multi-label ``y`` uses the dense ``n_labeled x n_labeled`` matrix.

    **Labels beyond** ``n_labeled`` **are dropped.** With plentiful labels
    this costs quality: on MNIST with 5,000 labels, 32 bits, MAP 0.852 with
    the default against 0.876 with ``n_labeled=5000`` (issue #16), and a kernel
    classifier's one-hot codes (:class:`~skhash.ClassifierCodes` around an
    RBF :class:`~sklearn.svm.SVC`) reached 0.917. The fit time grows about
    linearly with ``n_labeled`` for class labels and quadratically for
    multi-label ``y`` (memory too), so the default keeps the reference's
    bounded cost; pass ``n_labeled=None`` to use every label when the fit
    time allows.

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
        "n_labeled": [Interval(Integral, 2, None, closed="left"), None],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }
    _min_samples = 2

    def _max_n_bits(self, n_samples, n_features):
        # Each bit is a direction in the kernel space of the anchors; the paper
        # and its code always use more anchors than bits.
        return min(self.n_anchors, n_samples)

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
        n_labeled = n_samples if self.n_labeled is None else self.n_labeled
        if n_labeled < n_samples:
            warnings.warn(
                f"KSHHasher fits its similarities on n_labeled={n_labeled} of the "
                f"{n_samples} labelled rows and ignores the other "
                f"{n_samples - n_labeled}; pass n_labeled=None (or a larger value) "
                "to use them, at a higher fitting cost.",
                UserWarning,
                stacklevel=3,
            )
        labeled = rng.choice(n_samples, min(n_labeled, n_samples), replace=False)
        squared = euclidean_distances(X[labeled], self.anchors_, squared=True)
        self.sigma_ = float(squared.mean()) or 1.0  # all rows equal: any width
        kernel = np.exp(-squared / (2 * self.sigma_))
        self.kernel_mean_ = kernel.mean(axis=0)
        K = kernel - self.kernel_mean_
        n_labeled, n_anchors = K.shape

        # R = n_bits * (2 [share] - 1 1^T) - B B^T, B the codes learned so far;
        # applied as an operator so class labels never need an l x l matrix.
        similar_times = _similar_times(y[labeled])
        codes = np.empty((n_labeled, 0))

        def apply_residual(v):
            target = self.n_bits * (2 * similar_times(v) - v.sum(axis=0))
            return target - codes @ (codes.T @ v)

        gram = K.T @ K
        gram += 1e-6 * max(np.trace(gram) / n_anchors, 1e-12) * np.eye(n_anchors)
        target_K = apply_residual(K)  # n_bits * S @ K, before any bit
        self.coef_ = np.empty((n_anchors, self.n_bits))
        self.objective_ = np.empty(self.n_bits)
        self.spectral_objective_ = np.empty(self.n_bits)
        self.n_iter_ = 0
        for bit in range(self.n_bits):
            between = K.T @ (target_K - codes @ (codes.T @ K))
            _, vectors = eigh(
                (between + between.T) / 2,
                gram,
                subset_by_index=[n_anchors - 1, n_anchors - 1],
            )
            start = vectors[:, 0]
            norm = np.sum((K @ start) ** 2)
            if norm > 0:  # zero only when every labelled row is the same point
                start *= np.sqrt(n_labeled / norm)
            refined, n_iter = _accelerated_descent(
                start, K, apply_residual, self.max_iter, self.tol
            )
            self.n_iter_ += n_iter
            spectral, optimised = _sign(K @ start), _sign(K @ refined)
            scores = [c @ apply_residual(c) for c in (spectral, optimised)]
            keep_optimised = scores[1] > scores[0]
            self.coef_[:, bit] = refined if keep_optimised else start
            self.spectral_objective_[bit] = scores[0]
            self.objective_[bit] = max(scores)
            chosen = optimised if keep_optimised else spectral
            codes = np.column_stack([codes, chosen])

    def _kernel(self, X):
        squared = euclidean_distances(X, self.anchors_, squared=True)
        return np.exp(-squared / (2 * self.sigma_)) - self.kernel_mean_

    def _project(self, X):
        return self._kernel(X.astype(np.float64)) @ self.coef_
