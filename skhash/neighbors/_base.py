"""What both ``HammingNeighbors`` classes share, one process or a Dask cluster
(as scikit-learn's ``NeighborsBase`` and ``KNeighborsMixin``): the parameters,
the query API's argument checks and their messages, the graphs, and the
functions that turn search results into answers.

A subclass fits its own way and provides the hooks: ``kneighbors``, the CSR
triple of a radius search (``_radius_csr``), whether it was fitted with labels
(``_has_labels``), and, when its answers may be lazy, ``_compute``.
"""

from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..utils._param_validation import Interval, check_count
from ._hamming_index import ALGORITHMS

# What each search parameter may be; also the Dask similarity join's.
PARAMETER_CONSTRAINTS = {
    "n_neighbors": [Interval(Integral, 1, None, closed="left")],
    "radius": [Interval(Integral, 0, None, closed="left")],
    "algorithm": [StrOptions(set(ALGORITHMS))],
    "backend": [StrOptions({"auto", "numba", "numpy", "faiss", "torch"})],
    "device": [StrOptions({"auto", "cpu", "cuda"})],
    "n_jobs": [
        Interval(Integral, None, -1, closed="right"),
        Interval(Integral, 1, None, closed="left"),
        None,
    ],
}


class NeighborsBase(BaseEstimator, metaclass=ABCMeta):
    """Parameters, argument checks and graphs of the HammingNeighbors classes."""

    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        n_neighbors=5,
        radius=2,
        *,
        algorithm="auto",
        backend="auto",
        device="auto",
        n_jobs=None,
    ):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.algorithm = algorithm
        self.backend = backend
        self.device = device
        self.n_jobs = n_jobs

    @abstractmethod
    def fit(self, X, y=None):
        """Index the database: the codes ``X`` and their labels ``y``."""

    @abstractmethod
    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest codes of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes (a Dask array for :class:`skhash.dask.HammingNeighbors`
            gives Dask answers). ``None``: every database code queries the
            others, not counting itself as its own neighbour.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors), dtype int32
            Hamming distances (numbers of differing bits), ascending; only when
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Database indices; equal distances in index order.
        """

    @abstractmethod
    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        """Find the codes within a Hamming radius of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes (Dask queries give Dask answers, as in
            :meth:`kneighbors`). ``None``: every database code queries the
            others.
        radius : int, default=None
            Codes at distance ``<= radius`` are returned; defaults to the
            constructor's.
        return_distance : bool, default=True
            Whether to return the distances.
        sort_results : bool, default=False
            Sort each query's neighbours by (distance, index); otherwise they
            are in index order.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,), dtype object
            Arrays of int32 distances; only when ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries,), dtype object
            Arrays of database indices.
        """

    @abstractmethod
    def predict(self, X):
        """Labels voted by the ``n_neighbors`` nearest database codes.

        1-D labels: the most frequent class among the neighbours (ties go to
        the smallest class). Multi-label indicators: each label is on when more
        than half of the neighbours have it.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes (Dask queries give a Dask answer).

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_labels)
        """

    @abstractmethod
    def score(self, X, y):
        """Mean average precision of the queries against the fitted database.

        Each query ranks the whole database by Hamming distance (ties by
        index); relevant database codes share a label with it. See
        :func:`skhash.metrics.mean_average_precision` (``k=None``, stable
        ties, queries with nothing relevant count as 0).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes.
        y : array-like of shape (n_queries,) or (n_queries, n_labels)
            Labels of the queries.

        Returns
        -------
        score : float
            MAP, between 0 and 1.
        """

    @abstractmethod
    def _radius_csr(self, X, radius, sort_results):
        """The CSR triple ``(distances, indices, indptr)`` of a radius search,
        computed."""

    @abstractmethod
    def _has_labels(self):
        """Whether the database was fitted with labels."""

    def _check_n_neighbors(self, n_neighbors, n_queries, query_is_train):
        """The number of neighbours asked for, which the database must have."""
        k = check_count(
            self.n_neighbors if n_neighbors is None else n_neighbors, "n_neighbors"
        )
        if k > self.n_samples_fit_ - query_is_train:
            relation = "<" if query_is_train else "<="
            raise ValueError(
                f"Expected n_neighbors {relation} n_samples_fit, but n_neighbors = "
                f"{k}, n_samples_fit = {self.n_samples_fit_}, n_samples = {n_queries}"
            )
        return k

    def _check_radius(self, radius):
        return check_count(
            self.radius if radius is None else radius, "radius", minimum=0
        )

    @staticmethod
    def _check_sort(sort_results, return_distance):
        if sort_results and not return_distance:
            raise ValueError("return_distance must be True if sort_results is True.")

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph of the k nearest neighbours.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes; ``None`` uses the database, excluding each code itself.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's.
        mode : {"connectivity", "distance"}, default="connectivity"
            Ones, or Hamming distances (explicit zeros are kept).

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix, computed whatever the queries; ``graph[i, j]`` is set
            when ``j`` is a neighbour of ``i``.
        """
        check_mode(mode)
        distances, indices = self._compute(*self.kneighbors(X, n_neighbors))
        n_queries, k = indices.shape
        data = np.ones(indices.size) if mode == "connectivity" else distances.ravel()
        indptr = np.arange(0, n_queries * k + 1, k)
        return csr_matrix(
            (data, indices.ravel(), indptr), shape=(n_queries, self.n_samples_fit_)
        )

    def radius_neighbors_graph(
        self, X=None, radius=None, mode="connectivity", sort_results=False
    ):
        """Sparse graph of the neighbours within a Hamming radius.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes; ``None`` uses the database, excluding each code itself.
        radius : int, default=None
            Hamming radius; defaults to the constructor's.
        mode : {"connectivity", "distance"}, default="connectivity"
            Ones, or Hamming distances (explicit zeros are kept).
        sort_results : bool, default=False
            Order each row's entries by (distance, index).

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix, computed whatever the queries.
        """
        check_mode(mode)
        distances, indices, indptr = self._radius_csr(
            X, self._check_radius(radius), sort_results
        )
        data = np.ones(len(indices)) if mode == "connectivity" else distances
        return csr_matrix(
            (data, indices, indptr), shape=(len(indptr) - 1, self.n_samples_fit_)
        )

    @staticmethod
    def _split_csr(csr, return_distance):
        """``radius_neighbors``' answer from a radius search's CSR triple."""
        distances, indices, indptr = csr
        indices = split_runs(indices, indptr)
        if not return_distance:
            return indices
        return split_runs(distances, indptr), indices

    @staticmethod
    def _compute(*answers):
        """Answers as NumPy arrays (lazy ones are computed together)."""
        return answers

    def _check_fitted_with_y(self, method):
        check_is_fitted(self)
        if not self._has_labels():
            raise ValueError(
                f"{method}() needs the database labels: fit HammingNeighbors with "
                "fit(codes, y)."
            )


def vote(neighbour_labels, classes):
    """Labels voted by each query's neighbours (``neighbour_labels``, one row
    per query): the most frequent of the sorted ``classes`` (ties to the
    smallest), or, for indicator matrices, each label that more than half of
    the neighbours have."""
    if neighbour_labels.ndim == 3:
        return (neighbour_labels.mean(axis=1) > 0.5).astype(neighbour_labels.dtype)
    class_ids = np.searchsorted(classes, neighbour_labels)
    # A label not among the classes would count for another class: classes
    # reopened from a saved index (not recomputed from every label) may not
    # be the labels' own if the directory was altered.
    found = classes[np.minimum(class_ids, len(classes) - 1)] == neighbour_labels
    if not found.all():
        raise ValueError(
            f"The database has the label {neighbour_labels[~found][0]!r}, which "
            "is not one of classes_: the saved index is damaged or was altered."
        )
    votes = np.zeros((len(neighbour_labels), len(classes)), dtype=np.intp)
    np.add.at(votes, (np.arange(len(neighbour_labels))[:, None], class_ids), 1)
    return classes[votes.argmax(axis=1)]


def check_mode(mode):
    if mode not in ("connectivity", "distance"):
        raise ValueError(f'mode must be "connectivity" or "distance", got {mode!r}.')


def split_runs(values, indptr):
    """Object array of the runs ``values[indptr[i]:indptr[i + 1]]`` (views).

    Making a view costs ~0.3 us, as much as a small-radius search, and at
    small radii many queries find nothing: those share one empty array.
    """
    out = np.empty(len(indptr) - 1, dtype=object)
    out.fill(np.empty(0, values.dtype))
    bounds = indptr.tolist()  # plain slicing beats np.split ~8x here
    for i in np.flatnonzero(np.diff(indptr)).tolist():
        out[i] = values[bounds[i] : bounds[i + 1]]
    return out
