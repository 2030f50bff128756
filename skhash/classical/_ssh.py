"""Semi-supervised hashing (SSH), orthogonal projections."""

from numbers import Integral, Real

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from ..base import BaseHasher, SupervisedHasherMixin
from ..utils._param_validation import Interval
from ..utils._rows import Rows
from ._itq import _rotate, _top_directions
from ._ksh import _similar_times


class SSHHasher(SupervisedHasherMixin, BaseHasher):
    """Semi-supervised hashing: fit pairwise labels, regularised by variance.

    The bits are the signs of ``n_bits`` orthonormal projections ``W`` of the
    centred features that maximise the empirical fit of the pairwise labels
    plus ``eta`` times the variance of the projections (Wang, Kumar and Chang
    [1]_, orthogonal SSH)::

        J(W) = tr(W^T [X^T S X / n^2 + eta X^T X / n] W),  W^T W = I,

    with ``X`` the centred training features (one row per sample) and ``S``
    the pairwise labels: ``+1`` when two samples share a label, ``-1``
    otherwise. The maximiser is the top ``n_bits`` eigenvectors of the
    "adjusted covariance" in brackets. ``eta -> 0`` fits the labels only;
    ``eta -> inf`` gives PCA's directions. Optionally, ITQ's rotation [2]_
    follows (``rotation="itq"``), which leaves ``J`` unchanged.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes: at most ``n_features`` with ``kernel="linear"``,
        at most the number of anchors with ``kernel="rbf"``.
    eta : float, default=1.0
        Weight of the variance term against the label term, both averaged
        (over the ``n^2`` pairs and the ``n`` samples), so that it does not
        depend on the number of samples or the scale of ``X`` (see Notes).
    kernel : {"linear", "rbf"}, default="linear"
        Features the projections act on: the data themselves (the paper), or
        KSH's RBF kernel values to ``n_anchors`` anchors drawn from the
        training rows, ``exp(-||x - a||^2 / (2 sigma_))`` with ``sigma_`` the
        mean squared distance to the anchors.
    n_anchors : int, default=300
        Anchors of ``kernel="rbf"`` (all training rows when there are fewer);
        ignored with ``kernel="linear"``.
    rotation : {"itq"} or None, default=None
        ``"itq"`` learns an orthogonal rotation of the projections that brings
        them close to the hypercube's vertices, as :class:`ITQHasher` does;
        ``None`` thresholds the projections themselves, as the paper does.
    n_iter : int, default=50
        Iterations of the ITQ rotation; ignored when ``rotation=None``.
    random_state : int, RandomState instance or None, default=None
        Seed of the anchors and of the rotation's random start.

    Attributes
    ----------
    anchors_ : ndarray of shape (n_used_anchors, n_features)
        Anchor points, with ``kernel="rbf"`` only.
    sigma_ : float
        Kernel width, with ``kernel="rbf"`` only.
    mean_ : ndarray of shape (n_dims,)
        Training mean of the features (``n_dims`` is ``n_features``, or the
        number of anchors with ``kernel="rbf"``), subtracted before projecting.
    components_ : ndarray of shape (n_dims, n_bits)
        Orthonormal projections ``W``, the top eigenvectors of the adjusted
        covariance, by decreasing eigenvalue.
    eigenvalues_ : ndarray of shape (n_bits,)
        Their eigenvalues: ``J(W)`` is their sum.
    rotation_ : ndarray of shape (n_bits, n_bits)
        ITQ's rotation, or the identity when ``rotation=None``.
    quantization_loss_ : ndarray of shape (n_iter,) or (0,)
        ITQ's ``||B - V R||_F^2`` before each rotation update (empty when
        ``rotation=None``).
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    ITQHasher : The unsupervised ``eta -> inf`` end, with ITQ's rotation.
    KSHHasher : Kernel-based supervised hashing, whose RBF features
        ``kernel="rbf"`` borrows.

    Notes
    -----
    Paper and parametrisation. The paper maximises ``tr(W^T M W)`` with
    ``M = X_l^T S X_l + eta_p X^T X``, sums over the labelled pairs and over
    all samples. Here both terms are averages, ``M / n^2`` with
    ``eta_p = eta * n``, which has the same eigenvectors: ``eta = 1`` weighs
    the mean pairwise fit and the mean variance equally whatever ``n``. Every
    training row is labelled here (``y`` is required), so the labelled and the
    unlabelled set of the paper are the same rows and the variance term acts
    as the paper's regulariser on them. Only the paper's orthogonal variant is
    implemented, not its non-orthogonal relaxation or the sequential SPLH.

    Departures, both optional and off by default: ``kernel="rbf"`` puts the
    projections on KSH's kernel features [3]_ (the paper is linear), and
    ``rotation="itq"`` appends ITQ's rotation ``R``; since
    ``tr((W R)^T M (W R)) = tr(W^T M W)`` for orthogonal ``R``, the rotated
    projections are as good a maximiser of the relaxed objective, chosen
    instead for their small quantisation loss. The paper notes that
    orthogonal projections put most of the variance in the first bits; the
    rotation spreads it.

    For 1-D class labels ``X^T S X = 2 (X^T E)(E^T X) - (X^T 1)(1^T X)`` with
    ``E`` the one-hot matrix, ``O(n * n_dims * n_classes)``; a multi-label
    ``y`` uses the dense ``n x n`` similarity matrix.

    **Unseen classes.** On MNIST-5k with 3 classes held out of training
    (``benchmarks/results/protocols_four_unseen_hasher.md``) SSH does not keep
    KSH's quality on the seen classes: its label term is the between-class
    scatter without any whitening, which for single-label ``y`` spans at most
    ``n_classes - 1`` directions of high variance, not the discriminative
    ones.

    References
    ----------
    .. [1] J. Wang, S. Kumar and S.-F. Chang, "Semi-supervised hashing for
       large-scale search", IEEE TPAMI 34(12), 2012 (first as "Semi-supervised
       hashing for scalable image retrieval", CVPR 2010).
    .. [2] Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, "Iterative
       quantization: A procrustean approach to learning binary codes for
       large-scale image retrieval", IEEE TPAMI 35(12), 2013.
    .. [3] W. Liu, J. Wang, R. Ji, Y.-G. Jiang and S.-F. Chang, "Supervised
       hashing with kernels", CVPR 2012.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import SSHHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> SSHHasher(n_bits=16, eta=0.5, random_state=0).fit(X, y).transform(X).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "eta": [Interval(Real, 0, None, closed="left")],
        "kernel": [StrOptions({"linear", "rbf"})],
        "n_anchors": [Interval(Integral, 1, None, closed="left")],
        "rotation": [StrOptions({"itq"}), None],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }
    _min_samples = 2

    def __init__(
        self,
        n_bits=32,
        *,
        eta=1.0,
        kernel="linear",
        n_anchors=300,
        rotation=None,
        n_iter=50,
        random_state=None,
    ):
        self.n_bits = n_bits
        self.eta = eta
        self.kernel = kernel
        self.n_anchors = n_anchors
        self.rotation = rotation
        self.n_iter = n_iter
        self.random_state = random_state

    def _max_n_bits(self, n_samples, n_features):
        # Orthonormal directions in the feature space: one bit per dimension.
        if self.kernel == "rbf":
            return min(self.n_anchors, n_samples)
        return n_features

    def _fit(self, X, y):
        rng = check_random_state(self.random_state)
        X = X.astype(np.float64)
        n_samples = len(X)
        if self.kernel == "rbf":
            chosen = rng.choice(n_samples, min(self.n_anchors, n_samples), False)
            self.anchors_ = X[chosen]
            squared = euclidean_distances(X, self.anchors_, squared=True)
            self.sigma_ = float(squared.mean()) or 1.0  # all rows equal: any width
            features = np.exp(-squared / (2 * self.sigma_))
        else:
            features = X
        self.mean_ = features.mean(axis=0)
        Z = features - self.mean_

        # X^T S X with S = 2 [share a label] - 1 1^T, without an n x n matrix
        # for class labels.
        similar_Z = _similar_times(y)(Z)
        column_sums = Z.sum(axis=0)  # zero up to rounding: Z is centred
        label_fit = 2 * Z.T @ similar_Z - np.outer(column_sums, column_sums)
        adjusted = label_fit / n_samples**2 + self.eta * (Z.T @ Z) / n_samples
        self.eigenvalues_, self.components_ = _top_directions(
            (adjusted + adjusted.T) / 2, self.n_bits
        )
        if self.rotation == "itq":
            self.rotation_, self.quantization_loss_ = _rotate(
                Rows(Z @ self.components_), self.n_bits, self.n_iter, rng
            )
        else:
            self.rotation_ = np.eye(self.n_bits)
            self.quantization_loss_ = np.empty(0)

    def _features(self, X):
        X = X.astype(np.float64)
        if self.kernel == "rbf":
            squared = euclidean_distances(X, self.anchors_, squared=True)
            X = np.exp(-squared / (2 * self.sigma_))
        return X - self.mean_

    def _project(self, X):
        return self._features(X) @ self.components_ @ self.rotation_
