"""Exact nearest-neighbour search in Hamming space over packed codes."""

from numbers import Integral

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._supervision import check_labels
from ..codes import as_words
from ._brute import distance_block, query_batches, stable_top_k

__all__ = ["HammingNeighbors"]


class HammingNeighbors(BaseEstimator):
    """Exact k-nearest and radius neighbours of packed binary codes.

    Shaped like :class:`sklearn.neighbors.NearestNeighbors`, with the Hamming
    distance between packed codes (see :mod:`skhash.codes`) as an integer number
    of differing bits. Results are exact; neighbours at equal distance are
    ordered by database index.

    Fitted with labels, it also predicts labels by a vote of the neighbours and
    scores retrieval (MAP), so that a ``Pipeline`` of a hasher and
    ``HammingNeighbors`` can be tuned with ``GridSearchCV``.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours of :meth:`kneighbors` and :meth:`predict`.
    radius : int, default=2
        Hamming radius of :meth:`radius_neighbors` (distances ``<= radius``).
    n_jobs : int, default=None
        Threads searching query batches in parallel. ``None`` means 1 unless in
        a :obj:`joblib.parallel_backend` context; ``-1`` means all processors.
        Results do not depend on it.

    Attributes
    ----------
    n_features_in_ : int
        Bytes per code seen during fit.
    n_samples_fit_ : int
        Number of codes in the database.
    classes_ : ndarray of shape (n_classes,)
        Class labels, when fitted with 1-D ``y``.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : The same interface for real vectors.
    skhash.metrics.mean_average_precision : The metric behind :meth:`score`.

    Notes
    -----
    Codes must be ``uint8`` arrays from a hasher's ``transform`` or
    :func:`skhash.codes.pack_codes`. Arrays of 0/1 bits are rejected rather than
    being read as bytes.

    The search scans the database for each batch of queries and keeps memory
    bounded: no queries x database matrix is built for large inputs.

    Examples
    --------
    >>> from skhash import HammingNeighbors, pack_codes
    >>> database = pack_codes([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]])
    >>> nn = HammingNeighbors(n_neighbors=2).fit(database)
    >>> distances, indices = nn.kneighbors(pack_codes([[0, 0, 1, 1]]))
    >>> distances, indices
    (array([[1, 2]], dtype=int32), array([[2, 0]]))
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "radius": [Interval(Integral, 0, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(self, n_neighbors=5, radius=2, *, n_jobs=None):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Index a database of codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bytes), dtype uint8
            Packed codes.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Labels of the codes, needed by :meth:`predict` and :meth:`score`.

        Returns
        -------
        self : HammingNeighbors
            The fitted estimator.
        """
        self._fit_X = self._validate_codes(X, reset=True)
        self.n_samples_fit_ = len(self._fit_X)
        self._fit_words = as_words(self._fit_X)
        self._fit_y = None
        if y is not None:
            y = check_labels(y)
            if len(y) != self.n_samples_fit_:
                raise ValueError(
                    f"X has {self.n_samples_fit_} codes but y has {len(y)} labels."
                )
            self._fit_y = y
            if y.ndim == 1:
                self.classes_ = np.unique(y)
        return self

    def _validate_codes(self, X, *, reset):
        X = validate_data(self, X, dtype=None, reset=reset, order="C")
        if X.dtype != np.uint8:
            if X.dtype == bool or np.isin(X, (0, 1)).all():
                raise ValueError(
                    f"X looks like unpacked bits (dtype {X.dtype}, values 0 and 1); "
                    "pack them with skhash.codes.pack_codes."
                )
            raise ValueError(
                "HammingNeighbors expects packed binary codes of dtype uint8, got "
                f"dtype {X.dtype}; encode X with a hasher's transform first."
            )
        # Packed codes with 7 of every 8 bits always zero are astronomically
        # unlikely; uint8 bits from unpack_codes look exactly like that.
        if X.shape[1] >= 8 and X.max(initial=0) == 1:
            raise ValueError(
                "X looks like unpacked bits (uint8 values 0 and 1 only); pack them "
                "with skhash.codes.pack_codes."
            )
        return X

    def _queries(self, X):
        """Query words, and whether the queries are the database itself."""
        check_is_fitted(self)
        if X is None:
            return self._fit_words, True
        return as_words(self._validate_codes(X, reset=False)), False

    def _map_batches(self, function, query_words, exclude_self):
        """Apply function(distances, rows) to every query batch, in order."""
        batches = query_batches(len(query_words), self.n_samples_fit_)

        def run(rows):
            distances = distance_block(
                query_words, self._fit_words, rows, exclude_self=exclude_self
            )
            return function(distances, rows)

        if effective_n_jobs(self.n_jobs) == 1 or len(batches) == 1:
            return [run(rows) for rows in batches]
        # NumPy releases the GIL in the XOR / popcount / partition kernels.
        return Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(run)(rows) for rows in batches
        )

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest codes of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes. ``None``: every database code queries the others, not
            counting itself as its own neighbour.
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
        query_words, query_is_train = self._queries(X)
        n_neighbors = self.n_neighbors if n_neighbors is None else n_neighbors
        if not isinstance(n_neighbors, Integral) or n_neighbors < 1:
            raise ValueError(
                f"n_neighbors must be a positive integer, got {n_neighbors!r}."
            )
        available = self.n_samples_fit_ - query_is_train
        if n_neighbors > available:
            relation = "<" if query_is_train else "<="
            raise ValueError(
                f"Expected n_neighbors {relation} n_samples_fit, but n_neighbors = "
                f"{n_neighbors}, n_samples_fit = {self.n_samples_fit_}, "
                f"n_samples = {len(query_words)}"
            )

        def nearest(distances, rows):
            indices = stable_top_k(distances, n_neighbors)
            return np.take_along_axis(distances, indices, axis=1), indices

        results = self._map_batches(nearest, query_words, query_is_train)
        distances = np.concatenate([d for d, _ in results]).astype(np.int32)
        indices = np.concatenate([i for _, i in results]).astype(np.intp)
        return (distances, indices) if return_distance else indices

    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        """Find the codes within a Hamming radius of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes. ``None``: every database code queries the others.
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
        query_words, query_is_train = self._queries(X)
        radius = self.radius if radius is None else radius
        if not isinstance(radius, Integral) or radius < 0:
            raise ValueError(f"radius must be a non-negative integer, got {radius!r}.")
        if sort_results and not return_distance:
            raise ValueError("return_distance must be True if sort_results is True.")

        def within(distances, rows):
            found = []
            for row in distances:
                indices = np.flatnonzero(row <= radius)
                if sort_results:
                    indices = indices[np.argsort(row[indices], kind="stable")]
                found.append((row[indices].astype(np.int32), indices))
            return found

        found = [
            pair
            for batch in self._map_batches(within, query_words, query_is_train)
            for pair in batch
        ]
        indices = _object_array([i for _, i in found])
        if not return_distance:
            return indices
        return _object_array([d for d, _ in found]), indices

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
            CSR matrix; ``graph[i, j]`` is set when ``j`` is a neighbour of ``i``.
        """
        _check_mode(mode)
        n_neighbors = self.n_neighbors if n_neighbors is None else n_neighbors
        distances, indices = self.kneighbors(X, n_neighbors)
        n_queries = len(indices)
        data = np.ones(indices.size) if mode == "connectivity" else distances.ravel()
        indptr = np.arange(0, n_queries * n_neighbors + 1, n_neighbors)
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
            CSR matrix.
        """
        _check_mode(mode)
        distances, indices = self.radius_neighbors(
            X, radius, return_distance=True, sort_results=sort_results
        )
        lengths = [len(i) for i in indices]
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        flat_indices = np.concatenate([*indices, np.empty(0, np.intp)])
        if mode == "connectivity":
            data = np.ones(len(flat_indices))
        else:
            data = np.concatenate([*distances, np.empty(0, np.int32)])
        return csr_matrix(
            (data, flat_indices, indptr), shape=(len(indices), self.n_samples_fit_)
        )

    def predict(self, X):
        """Labels voted by the ``n_neighbors`` nearest database codes.

        1-D labels: the most frequent class among the neighbours (ties go to
        the smallest class). Multi-label indicators: each label is on when more
        than half of the neighbours have it.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_labels)
        """
        self._check_fitted_with_y("predict")
        indices = self.kneighbors(X, return_distance=False)
        neighbour_labels = self._fit_y[indices]
        if self._fit_y.ndim == 2:
            return (neighbour_labels.mean(axis=1) > 0.5).astype(self._fit_y.dtype)
        class_ids = np.searchsorted(self.classes_, neighbour_labels)
        votes = np.zeros((len(indices), len(self.classes_)), dtype=np.intp)
        np.add.at(votes, (np.arange(len(indices))[:, None], class_ids), 1)
        return self.classes_[votes.argmax(axis=1)]

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
        from ..metrics import mean_average_precision

        self._check_fitted_with_y("score")
        X = self._validate_codes(X, reset=False)
        return mean_average_precision(X, self._fit_X, y, self._fit_y)

    def _check_fitted_with_y(self, method):
        check_is_fitted(self)
        if self._fit_y is None:
            raise ValueError(
                f"{method}() needs the database labels: fit HammingNeighbors with "
                "fit(codes, y)."
            )

    def __getstate__(self):
        # The word view is derived from _fit_X; rebuild it rather than pickle it.
        state = dict(super().__getstate__())  # a copy: never mutate the live object
        state.pop("_fit_words", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_fit_X" in state:
            self._fit_words = as_words(self._fit_X)


def _check_mode(mode):
    if mode not in ("connectivity", "distance"):
        raise ValueError(f'mode must be "connectivity" or "distance", got {mode!r}.')


def _object_array(arrays):
    out = np.empty(len(arrays), dtype=object)
    for i, array in enumerate(arrays):
        out[i] = array
    return out
