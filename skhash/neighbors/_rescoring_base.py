"""What the rescoring searches share (:class:`skhash.neighbors.RescoringNeighbors`
and its Dask counterpart): the parameters and their checks, the number of
candidates, the float radius and the documented query API; and the second
stage, :func:`rescore`, written once.
"""

import math
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..classical import SignHasher
from ..utils import _csr as csr
from ..utils._param_validation import Interval
from ..utils._vectors import METRICS, candidate_distances, nearest_first
from ._base import PARAMETER_CONSTRAINTS, NeighborsBase

__all__ = ["RescoringBase", "rescore", "within"]


class RescoringBase(NeighborsBase):
    """Parameters, checks and query API of the rescoring searches."""

    _parameter_constraints: dict = {
        "hasher": [HasMethods(["fit", "transform"]), None],
        "n_neighbors": PARAMETER_CONSTRAINTS["n_neighbors"],
        "n_candidates": [Interval(Integral, 1, None, closed="left"), None],
        "oversample": [Interval(Real, 1, None, closed="left")],
        "radius": [Interval(Real, None, None, closed="neither"), None],
        "metric": [StrOptions(set(METRICS))],
        **{
            name: PARAMETER_CONSTRAINTS[name]
            for name in ("algorithm", "backend", "device", "n_jobs")
        },
    }

    def __init__(
        self,
        hasher=None,
        n_neighbors=5,
        *,
        n_candidates=None,
        oversample=3.0,
        radius=None,
        metric="cosine",
        algorithm="auto",
        backend="auto",
        device="auto",
        n_jobs=None,
    ):
        self.hasher = hasher
        self.n_neighbors = n_neighbors
        self.n_candidates = n_candidates
        self.oversample = oversample
        self.radius = radius
        self.metric = metric
        self.algorithm = algorithm
        self.backend = backend
        self.device = device
        self.n_jobs = n_jobs

    def _new_hasher(self):
        """The hasher to fit: a clone of ``hasher`` (a ``FrozenEstimator`` is
        its own clone, and its ``fit`` does nothing), or sign binarization."""
        return SignHasher() if self.hasher is None else clone(self.hasher)

    def _count_candidates(self, k, query_is_train, *, check=True):
        """Candidates per query for ``k`` neighbours: ``n_candidates``, or
        ``ceil(oversample * k)``, at most the rows a query may count."""
        if self.n_candidates is None:
            # Rounded first: 1.1 * 10 is 11.000000000000002 in floating point.
            wanted = math.ceil(round(self.oversample * k, 9))
        elif check and self.n_candidates < k:
            raise ValueError(
                f"n_candidates={self.n_candidates} is less than n_neighbors={k}: "
                "rescoring returns neighbours from the candidates, so it needs at "
                "least as many."
            )
        else:
            wanted = self.n_candidates
        return min(wanted, self.n_samples_fit_ - query_is_train)

    def _check_radius(self, radius):
        radius = self.radius if radius is None else radius
        if radius is None:
            raise ValueError(
                "radius_neighbors needs a radius: pass radius=..., or set the "
                "estimator's radius (a distance of its metric)."
            )
        if isinstance(radius, (bool, np.bool_)) or not (
            isinstance(radius, Real) and math.isfinite(radius)
        ):
            raise ValueError(f"radius must be a finite real number, got {radius!r}.")
        return float(radius)

    def _check_fitted_with_y(self, method):
        check_is_fitted(self)
        if not self._has_labels():
            raise ValueError(
                f"{method}() needs the database labels: fit {type(self).__name__} "
                "with fit(X, y)."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.hasher is not None:  # a supervised hasher needs y
            tags.target_tags.required = get_tags(self.hasher).target_tags.required
        return tags

    @abstractmethod
    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest vectors of each query among its candidates.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Query vectors. ``None``: every database vector queries the others,
            not counting itself as its own neighbour.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's. The candidates
            are ``n_candidates``, or ``ceil(oversample * n_neighbors)``.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors), dtype float64
            Distances by ``metric``, exact, ascending; only when
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Database indices; equal distances in index order.
        """

    @abstractmethod
    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        """Find the candidates within a distance of each query.

        The candidates are those of :meth:`kneighbors` with the constructor's
        ``n_neighbors``; a vector that is not among them is not found, however
        close (the Hamming stage decides what is looked at).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Query vectors. ``None``: every database vector queries the others.
        radius : float, default=None
            Candidates at distance ``<= radius`` (by ``metric``) are returned;
            defaults to the constructor's, which must then be set.
        return_distance : bool, default=True
            Whether to return the distances.
        sort_results : bool, default=False
            Sort each query's neighbours by (distance, index); otherwise they
            are in index order.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,), dtype object
            Arrays of float64 distances; only when ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries,), dtype object
            Arrays of database indices.
        """

    @abstractmethod
    def predict(self, X):
        """Labels voted by the ``n_neighbors`` nearest database vectors.

        As :meth:`skhash.HammingNeighbors.predict`, over the rescored
        neighbours; needs the labels given to :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query vectors.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_labels)
        """

    @abstractmethod
    def score(self, X, y=None):
        """Recall@n_neighbors of the queries against the exact float neighbours.

        See :func:`skhash.metrics.recall_at_k` (with distances, ann-benchmarks'
        rule, ``epsilon=1e-3``) and :func:`skhash.metrics.exact_neighbors`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query vectors.
        y : None
            Ignored: the exact neighbours are the reference.

        Returns
        -------
        score : float
            Recall, between 0 and 1.
        """

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph of the k nearest neighbours.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Query vectors; ``None`` uses the database, excluding each itself.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's.
        mode : {"connectivity", "distance"}, default="connectivity"
            Ones, or distances (explicit zeros are kept).

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix; ``graph[i, j]`` is set when ``j`` is a neighbour of ``i``.
        """
        return super().kneighbors_graph(X, n_neighbors, mode)

    def radius_neighbors_graph(
        self, X=None, radius=None, mode="connectivity", sort_results=False
    ):
        """Sparse graph of the candidates within a distance.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Query vectors; ``None`` uses the database, excluding each itself.
        radius : float, default=None
            Distance; defaults to the constructor's.
        mode : {"connectivity", "distance"}, default="connectivity"
            Ones, or distances (explicit zeros are kept).
        sort_results : bool, default=False
            Order each row's entries by (distance, index).

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix.
        """
        return super().radius_neighbors_graph(X, radius, mode, sort_results)


def rescore(queries, vectors, candidates, metric):
    """Exact distances of each query to its candidate rows of ``vectors``
    (shape of ``candidates``).

    Each distinct row is read once (sorted, which suits a memory-mapped
    file), and each pair's distance is computed the same way whatever the
    other pairs (see :func:`skhash.utils._vectors.candidate_distances`), so
    that any split of the candidates gives the same bits.
    """
    rows, local = np.unique(candidates, return_inverse=True)
    gathered = np.asarray(vectors[rows], dtype=np.float64)
    local = local.reshape(candidates.shape)
    return candidate_distances(queries, gathered, local, metric)


def within(distances, candidates, radius, sort_results):
    """The CSR triple of the candidates at most ``radius`` away, each query's
    by (distance, index) or by index."""
    if sort_results:
        distances, candidates = nearest_first(distances, candidates)
    else:
        order = np.argsort(candidates, axis=1)
        distances = np.take_along_axis(distances, order, axis=1)
        candidates = np.take_along_axis(candidates, order, axis=1)
    keep = distances <= radius
    return distances[keep], candidates[keep], csr.indptr_of(keep.sum(axis=1))
