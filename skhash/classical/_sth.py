"""Self-taught hashing (STH)."""

from numbers import Integral, Real

import numpy as np
from scipy.sparse import csr_matrix, diags
from scipy.sparse.linalg import eigsh
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from ..base import BaseHasher
from ..utils._param_validation import Interval
from ._exact_knn import nearest_neighbors
from ._svm import fit_linear_svms

# Below this many samples the eigenproblem is solved densely: ARPACK needs more
# rows than requested eigenvectors, and dense is faster there anyway.
_DENSE_BELOW = 500


def self_taught_bits(
    X, n_bits, *, n_neighbors=25, weights="heat", n_jobs=None, random_state=None
):
    """STH's training codes: kNN graph, Laplacian eigenmap, median thresholds.

    Shared by :class:`STHHasher` and the deep self-taught hasher.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training data.
    n_bits : int
        Number of bits; at most ``n_samples - 2``.
    n_neighbors : int, default=25
        Neighbours per sample in the graph, capped at ``n_samples - 1``.
    weights : {"heat", "cosine"}, default="heat"
        Edge weights: ``exp(-d^2 / (2 t^2))`` with ``t`` the mean distance to
        the neighbours, or the cosine similarity (clipped at 0).
    n_jobs : int, default=None
        Threads searching the neighbours.
    random_state : int, RandomState instance or None, default=None
        Seed of ARPACK's starting vector.

    Returns
    -------
    bits : ndarray of shape (n_samples, n_bits), dtype bool
        Each column is 1 on the half of the samples above its median.
    """
    n_samples = len(X)
    if n_bits > n_samples - 2:
        raise ValueError(
            f"n_bits={n_bits} needs at least n_bits + 2 = {n_bits + 2} training "
            f"samples, got {n_samples}."
        )
    n_neighbors = min(n_neighbors, n_samples - 1)
    distances, neighbours = nearest_neighbors(
        X, n_neighbors, cosine=weights == "cosine", n_jobs=n_jobs
    )
    if weights == "heat":
        bandwidth = distances.mean() or 1.0
        values = np.exp(-(distances**2) / (2 * bandwidth**2))
    else:
        values = np.clip(1 - distances, 0, None)
    rows = np.repeat(np.arange(n_samples), n_neighbors)
    W = csr_matrix((values.ravel(), (rows, neighbours.ravel())), (n_samples,) * 2)
    W = W.maximum(W.T)  # i ~ j when either is among the other's neighbours
    degree = np.asarray(W.sum(axis=1)).ravel()
    degree[degree == 0] = 1.0  # isolated points (all weights zero) stay put
    scale = diags(1 / np.sqrt(degree))
    # L y = lambda D y  <=>  D^-1/2 W D^-1/2 v = (1 - lambda) v with y = D^-1/2 v:
    # the smallest lambdas are the largest eigenvalues of the normalised graph.
    normalised = scale @ W @ scale
    if n_samples < _DENSE_BELOW:
        _, vectors = np.linalg.eigh(normalised.toarray())
        vectors = vectors[:, ::-1][:, : n_bits + 1]
    else:
        start = check_random_state(random_state).uniform(-1, 1, n_samples)
        values_, vectors = eigsh(normalised, k=n_bits + 1, which="LA", v0=start)
        vectors = vectors[:, np.argsort(-values_)]
    embedding = scale @ vectors[:, 1:]  # drop the trivial eigenvector
    return embedding > np.median(embedding, axis=0)


class STHHasher(BaseHasher):
    """Self-taught hashing: a spectral embedding learned once, then classifiers.

    Training codes come from a Laplacian eigenmap of the k-nearest-neighbour
    graph of the training data, each dimension thresholded at its median so
    every bit is balanced. One linear SVM per bit then learns to predict those
    codes, which encodes new samples.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes; at most ``n_samples - 2``.
    n_neighbors : int, default=25
        Neighbours per sample in the graph (capped at ``n_samples - 1``).
    weights : {"heat", "cosine"}, default="heat"
        Edge weights: heat kernel ``exp(-d^2 / (2 t^2))`` with ``t`` the mean
        distance to the neighbours (Euclidean data), or the cosine similarity
        (text-like data).
    C : float, default=1.0
        Weight of the squared hinge losses of the SVMs (liblinear's ``C``).
    tol : float, default=1e-3
        The SVMs stop when each one's gradient norm is at most `tol` times
        its initial value.
    n_jobs : int, default=None
        Threads searching the neighbours.
    random_state : int, RandomState instance or None, default=None
        Seed of the eigensolver's start.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Training mean, subtracted before the SVMs.
    scale_ : float
        Root mean squared norm of the centred training rows, divided out
        before the SVMs.
    coef_ : ndarray of shape (n_features, n_bits)
        Weights of the per-bit SVMs.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    SpectralHasher : Eigenfunctions of an assumed uniform distribution instead
        of a graph.

    Notes
    -----
    Follows the authors' code: 25 neighbours, the graph made symmetric by an
    OR (``W = max(W, W^T)``), the generalised eigenproblem ``L y = lambda D y``
    with the trivial solution dropped, median thresholds, and liblinear's
    L2-loss SVM (``C=1``) without intercept. The SVMs of all bits are solved
    together by a primal Newton method: the same optimum as the reference's
    dual solver, several times faster than one liblinear call per bit. The
    neighbours are chosen on float32 distances. The heat-kernel width rule
    is ours (the mean neighbour distance). We centre the features before
    the SVMs: without an intercept, uncentred non-negative data such as pixels
    would force every hyperplane through the origin. A graph with several
    connected components turns some bits into component indicators.

    References
    ----------
    .. [1] D. Zhang, J. Wang, D. Cai and J. Lu, "Self-taught hashing for fast
       similarity search", SIGIR 2010.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import STHHasher
    >>> X, _ = load_digits(return_X_y=True)
    >>> STHHasher(n_bits=16, random_state=0).fit_transform(X).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "weights": [StrOptions({"heat", "cosine"})],
        "C": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }
    _min_samples = 3

    def _max_n_bits(self, n_samples, n_features):
        # Eigenvectors of the n-node graph after the trivial one, with room for
        # the eigensolver.
        return n_samples - 2

    def __init__(
        self,
        n_bits=32,
        *,
        n_neighbors=25,
        weights="heat",
        C=1.0,
        tol=1e-3,
        n_jobs=None,
        random_state=None,
    ):
        self.n_bits = n_bits
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.C = C
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X, y):
        # Float64 throughout, as the SVMs need (see fit_linear_svms) and the
        # neighbour search computes anyway.
        X = X.astype(np.float64, copy=False)
        rng = check_random_state(self.random_state)
        bits = self_taught_bits(
            X,
            self.n_bits,
            n_neighbors=self.n_neighbors,
            weights=self.weights,
            n_jobs=self.n_jobs,
            random_state=rng,
        )
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        # One global scale (mean squared row norm 1) keeps the SVMs linear in X
        # and their C meaningful on unnormalised data.
        self.scale_ = float(np.sqrt(np.mean(np.sum(centred**2, axis=1)))) or 1.0
        centred /= self.scale_
        self.coef_ = fit_linear_svms(centred, bits, C=self.C, tol=self.tol)

    def _project(self, X):
        return (X - self.mean_) @ self.coef_ / self.scale_
