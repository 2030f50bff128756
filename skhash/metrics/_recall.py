"""Recall of approximate neighbours against the exact float neighbours.

The measure vector databases publish for binary quantization with rescoring
(and ann-benchmarks for every method): the fraction of the true k nearest
neighbours, by a float distance between the original vectors, that a search
returns. The ground truth comes from :func:`exact_neighbors`, an exact search
over any number of vectors in bounded memory.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params

from ..utils._memory import rows_within
from ..utils._param_validation import Interval
from ..utils._vectors import (
    METRICS,
    candidate_distances,
    check_metric,
    check_vectors,
    distance_matrix,
    nearest_first,
    rounding_bound,
    squared_norms,
)

__all__ = ["exact_neighbors", "recall_at_k"]

# Bytes per (query, database row) pair of a block: its approximate distance,
# a masked copy, its argpartition and the merge's keys.
_PAIR_BYTES = 48
# Database rows a query block is sized for, beside the running k nearest.
_DATABASE_ROWS = 4096

# Kept apart from the decorator so that the scorers check them when made.
RECALL_CONSTRAINTS = {
    "k": [Interval(Integral, 1, None, closed="left"), None],
    "epsilon": [Interval(Real, 0, None, closed="left")],
}


@validate_params(
    {
        "queries": ["array-like"],
        "database": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
    },
    prefer_skip_nested_validation=True,
)
def exact_neighbors(queries, database, n_neighbors, *, metric="cosine"):
    """Exact k nearest neighbours of float vectors, in bounded memory.

    The ground truth of :func:`recall_at_k`: every database vector is compared
    with every query, in blocks of queries and of database rows sized from
    the working memory, each block's candidates merged into a running k
    nearest per query. Neither the database (a ``np.memmap`` is read a block
    at a time) nor a queries x database matrix is ever held whole.

    Parameters
    ----------
    queries : array-like of shape (n_queries, n_features)
        Query vectors.
    database : array-like of shape (n_samples, n_features)
        Database vectors; float32 or float64 arrays are used in place.
    n_neighbors : int
        Neighbours per query, at most ``n_samples``.
    metric : {"cosine", "euclidean", "inner_product"}, default="cosine"
        ``1 - cos(q, v)`` (a zero vector at distance 1 from everything),
        ``||q - v||``, or ``-q.v``; smaller is closer for all three.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors), dtype float64
        Ascending.
    indices : ndarray of shape (n_queries, n_neighbors)
        Database rows; equal distances in index order.

    Notes
    -----
    Each distance is the one :class:`skhash.neighbors.RescoringNeighbors`
    computes for the same pair, to the last bit, whatever the blocks: so
    rescoring every database vector returns exactly this answer, ties
    included, and the answer does not depend on the working memory. Matrix
    products (BLAS) find each block's candidates fast but sum in an order
    that depends on the block's shape; the candidates within the rounding
    bound of a block's k-th nearest are then recomputed pair by pair in
    float64, which decides the order.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash.metrics import exact_neighbors
    >>> database = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    >>> distances, indices = exact_neighbors([[2.0, 0.1]], database, 2)
    >>> indices
    array([[0, 2]])
    >>> exact_neighbors([[2.0, 0.0]], database, 2, metric="euclidean")[0]
    array([[1.        , 1.41421356]])
    """
    metric = check_metric(metric)
    database = check_vectors(database, name="database")
    queries = check_vectors(queries, name="queries")
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} features but the database has "
            f"{database.shape[1]}."
        )
    if n_neighbors > len(database):
        raise ValueError(
            f"n_neighbors={n_neighbors} is more than the {len(database)} database "
            "vectors."
        )
    distances = np.empty((len(queries), n_neighbors))
    indices = np.empty((len(queries), n_neighbors), dtype=np.intp)
    step = rows_within(
        _PAIR_BYTES * (n_neighbors + min(len(database), _DATABASE_ROWS))
        + 8 * queries.shape[1]
    )
    for start in range(0, len(queries), step):
        rows = slice(start, start + step)
        distances[rows], indices[rows] = _nearest_of_block(
            np.asarray(queries[rows], dtype=np.float64), database, n_neighbors, metric
        )
    return distances, indices


def _nearest_of_block(queries, database, k, metric):
    """The k nearest of a block of queries, over database blocks in turn."""
    n_features = database.shape[1]
    best = np.full((len(queries), k), np.inf)
    # Past every real row, so that an unfilled place loses every tie.
    best_rows = np.full((len(queries), k), len(database), dtype=np.intp)
    query_norms = squared_norms(queries)
    step = rows_within(_PAIR_BYTES * len(queries) + 8 * n_features)
    for start in range(0, len(database), step):
        block = np.asarray(database[start : start + step], dtype=np.float64)
        norms = squared_norms(block)
        approximate = distance_matrix(queries, block, metric, vector_norms=norms)
        slack = rounding_bound(query_norms, norms.max(), n_features, metric)
        # A row is a candidate unless its exact distance is surely beyond the
        # running k-th's, or beyond k rows of the block's own (both bounds
        # are strict, so a row tied with the k-th stays for its index to
        # decide).
        limit = best[:, -1] + slack
        if len(block) > k:
            kth = np.partition(approximate, k - 1, axis=1)[:, k - 1]
            limit = np.minimum(limit, kth + 2 * slack)
        kept = approximate <= limit[:, None]
        width = int(kept.sum(axis=1).max())
        if width == 0:
            continue
        if width < len(block):
            # Rows with fewer candidates than the widest fill up with others:
            # recomputing those exactly is harmless.
            masked = np.where(kept, approximate, np.inf)
            columns = np.argpartition(masked, width - 1, axis=1)[:, :width]
        else:
            columns = np.broadcast_to(np.arange(len(block)), kept.shape)
        exact = candidate_distances(queries, block, columns, metric, vector_norms=norms)
        best, best_rows = nearest_first(
            np.concatenate([best, exact], axis=1),
            np.concatenate([best_rows, columns + start], axis=1),
            k,
        )
    return best, best_rows


@validate_params(
    {
        "true_indices": ["array-like"],
        "indices": ["array-like"],
        "true_distances": ["array-like", None],
        "distances": ["array-like", None],
        **RECALL_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def recall_at_k(
    true_indices, indices, *, true_distances=None, distances=None, k=None, epsilon=1e-3
):
    """k-NN recall: the fraction of the true k nearest neighbours returned.

    With distances, as ann-benchmarks defines it [1]_: a returned neighbour
    (among the first ``k``) counts when its distance is at most the k-th true
    distance plus ``epsilon``. Neighbours tied with the k-th true one are then
    all correct, whichever of them a search returned. Without distances, the
    size of the intersection of the first ``k`` returned indices with the
    ``k`` true ones: a neighbour tied with the k-th but returned in its place
    counts as a miss.

    Parameters
    ----------
    true_indices : array-like of shape (n_queries, n_true)
        The exact neighbours of each query, nearest first (from
        :func:`exact_neighbors`), ``n_true >= k``.
    indices : array-like of shape (n_queries, n_returned)
        The neighbours a search returned, nearest first; fewer than ``k``
        columns count the missing ones as misses.
    true_distances : array-like of shape (n_queries, n_true), default=None
        Distances of ``true_indices``; give both distances or neither.
    distances : array-like of shape (n_queries, n_returned), default=None
        Exact distances of ``indices`` (recomputed from the vectors, as
        ann-benchmarks does, not a search's approximate ones).
    k : int, default=None
        The k of recall@k; ``None`` means ``n_true``.
    epsilon : float, default=1e-3
        Tolerance on the k-th true distance, in the distance's units
        (ann-benchmarks' default); used only with distances.

    Returns
    -------
    recall : float
        Mean over the queries, between 0 and 1.

    References
    ----------
    .. [1] M. Aumüller, E. Bernhardsson and A. Faithfull, "ANN-Benchmarks: A
       benchmarking tool for approximate nearest neighbor algorithms",
       Information Systems 87, 2020 (``knn`` in ``plotting/metrics.py``).

    Examples
    --------
    >>> from skhash.metrics import recall_at_k
    >>> true_indices = [[0, 1, 2], [3, 4, 5]]
    >>> recall_at_k(true_indices, [[0, 2, 9], [3, 4, 5]])
    0.8333333333333334

    Query 0's neighbours 2 and 9 are tied at the 3rd true distance: by
    distance, both count.

    >>> recall_at_k(true_indices, [[0, 2, 9], [3, 4, 5]],
    ...             true_distances=[[0.1, 0.2, 0.3], [0.1, 0.1, 0.2]],
    ...             distances=[[0.1, 0.3, 0.3], [0.1, 0.1, 0.2]])
    1.0
    """
    true_indices = _as_2d(true_indices, "true_indices", integer=True)
    indices = _as_2d(indices, "indices", integer=True)
    if true_indices.min() < 0:
        raise ValueError("true_indices must be database rows, >= 0.")
    k = true_indices.shape[1] if k is None else k
    if k > true_indices.shape[1]:
        raise ValueError(
            f"k={k} but true_indices has {true_indices.shape[1]} neighbours a query."
        )
    if len(indices) != len(true_indices):
        raise ValueError(
            f"{len(true_indices)} queries in true_indices but {len(indices)} in "
            "indices."
        )
    if (true_distances is None) != (distances is None):
        raise ValueError("Pass both true_distances and distances, or neither.")
    if distances is None:
        return float(_shared_per_query(true_indices[:, :k], indices[:, :k]).mean() / k)
    true_distances = _as_2d(true_distances, "true_distances", true_indices.shape)
    distances = _as_2d(distances, "distances", indices.shape)
    threshold = true_distances[:, k - 1 : k] + epsilon
    return float((distances[:, :k] <= threshold).sum(axis=1).mean() / k)


def _as_2d(array, name, shape=None, *, integer=False):
    array = np.asarray(array)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"{name} must be a 2-D array with a row per query, got shape {array.shape}."
        )
    if integer and array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices, got dtype {array.dtype}.")
    if not integer and array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real distances, got dtype {array.dtype}.")
    if shape is not None and array.shape != shape:
        raise ValueError(
            f"{name} has shape {array.shape} but its indices have shape {shape}."
        )
    return array


def _shared_per_query(true_indices, indices):
    """How many indices each row of two integer arrays has in common (each
    counted once), without a loop over rows: each (row, index) pair becomes
    one integer key."""
    width = int(max(true_indices.max(initial=0), indices.max(initial=0))) + 1
    row = np.arange(len(indices))[:, None]
    # A negative index is a place a search left empty (FAISS's -1): a miss.
    found = np.unique((row * width + indices)[indices >= 0])
    true = np.unique(row * width + true_indices)
    hits = found[np.isin(found, true, assume_unique=True)]
    return np.bincount(hits // width, minlength=len(indices))


def check_vector_search(search):
    """The fitted float vectors of a search that recall can score; TypeError
    for anything else."""
    vectors = getattr(search, "vectors_", None)
    if not (isinstance(vectors, np.ndarray) and hasattr(search, "kneighbors")):
        raise TypeError(
            "Recall scorers score a fitted search over float vectors held in "
            "memory (skhash.neighbors.RescoringNeighbors, or a Pipeline ending in "
            f"one); got {type(search).__name__}. A search on Dask scores with its "
            "own score method."
        )
    return vectors


def search_recall(search, queries, k, *, epsilon=1e-3):
    """Recall@k of a fitted :class:`~skhash.neighbors.RescoringNeighbors` (or
    any search with ``kneighbors``, ``vectors_`` and ``metric``) on
    ``queries``, against the exact neighbours among its fitted vectors; ``k``
    is capped at the database's size."""
    vectors = check_vector_search(search)
    k = min(k, len(vectors))
    distances, indices = search.kneighbors(queries, k)
    true_distances, true_indices = exact_neighbors(
        queries, vectors, k, metric=search.metric
    )
    return recall_at_k(
        true_indices, indices, true_distances=true_distances, distances=distances,
        epsilon=epsilon,
    )  # fmt: skip
