"""Near-duplicate groups: candidate pairs in Hamming space, verified on the
original vectors, then connected components, one representative per group.

Hash codes collide: at a small radius most pairs of codes are not duplicates,
and their components chain into one giant group. The pairs that decide the
groups are therefore checked against the vectors the codes were computed
from, as near-duplicate pipelines do (candidates, verification, components,
one row kept per group).

The pieces beside the public functions (:func:`pairs_within`,
:func:`spanning_forest`, :func:`group_labels`) also serve ``skhash.dask``,
whose workers run them on their shards and pair partitions.
"""

from numbers import Integral, Real

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from sklearn.utils._param_validation import StrOptions, validate_params

from ..codes import check_codes
from ..utils import _csr as csr
from ..utils._memory import rows_within
from ..utils._param_validation import Interval
from ..utils._vectors import METRICS, check_metric, check_vectors, paired_distances
from ._base import PARAMETER_CONSTRAINTS
from ._hamming_index import HammingIndex

__all__ = ["duplicate_groups", "duplicate_pairs"]

# Bytes a found candidate takes while its block is filtered: its distance,
# index and query (4 + 8 + 8), its masks and its share of the gathered rows.
_BYTES_PER_CANDIDATE = 32
# Queries of the first block, before the density of the candidates is known.
_FIRST_BLOCK = 1024

PARAMETERS = {
    "codes": ["array-like"],
    "radius": [Interval(Integral, 0, None, closed="left")],
    "vectors": ["array-like", None],
    "max_distance": [Interval(Real, None, None, closed="right"), None],
    "metric": [StrOptions(set(METRICS))],
    "algorithm": PARAMETER_CONSTRAINTS["algorithm"],
    "backend": PARAMETER_CONSTRAINTS["backend"],
    "n_jobs": PARAMETER_CONSTRAINTS["n_jobs"],
}


@validate_params(PARAMETERS, prefer_skip_nested_validation=True)
def duplicate_pairs(
    codes,
    *,
    radius,
    vectors=None,
    max_distance=None,
    metric="euclidean",
    algorithm="auto",
    backend="auto",
    n_jobs=None,
):
    """Every pair of rows whose codes are within ``radius``, verified on vectors.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_bytes), dtype uint8
        Packed codes.
    radius : int
        Candidate pairs are the codes at Hamming distance ``<= radius``.
    vectors : array-like of shape (n_samples, n_features), default=None
        The float vectors the codes were computed from, row for row (a
        memory-mapped array is read a block at a time). Given with
        ``max_distance``, only the candidates whose vectors are within
        ``max_distance`` are kept.
    max_distance : float, default=None
        Largest distance of the vectors of a kept pair; non-negative, except
        for ``metric="inner_product"`` whose distance is the negated dot
        product; ``np.inf`` keeps every candidate with its vector distance,
        to choose a threshold from. Goes with ``vectors``: one without the
        other is an error.
    metric : {"euclidean", "cosine", "inner_product"}, default="euclidean"
        Distance of the vectors: ``||u - v||``, ``1 - cos(u, v)`` or
        ``-u.v``.
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        Search method, as in :class:`skhash.HammingNeighbors`.
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        Search engine, as in :class:`skhash.HammingNeighbors`.
    n_jobs : int, default=None
        Threads of the search.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), dtype intp
        Rows ``(i, j)`` with ``i < j``, each unordered pair once, sorted.
    distances : ndarray of shape (n_pairs,)
        The vector distances (float64) of the pairs when ``vectors`` are
        given, else their Hamming distances (int32).

    See Also
    --------
    duplicate_groups : The groups these pairs connect.
    skhash.dask.similarity_join : The same pairs on a Dask cluster.

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> from skhash.neighbors import duplicate_pairs
    >>> codes = pack_codes([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    >>> vectors = [[0.0, 0.0], [5.0, 0.0], [9.0, 9.0], [0.1, 0.0]]
    >>> pairs, distances = duplicate_pairs(codes, radius=1)
    >>> pairs.tolist(), distances.tolist()
    ([[0, 1], [0, 3], [1, 3]], [1, 0, 1])
    >>> pairs, distances = duplicate_pairs(
    ...     codes, radius=1, vectors=vectors, max_distance=0.5
    ... )
    >>> pairs.tolist(), distances.round(2).tolist()
    ([[0, 3]], [0.1])
    """
    search = {"algorithm": algorithm, "backend": backend, "n_jobs": n_jobs}
    parts = list(_all_pairs(codes, radius, vectors, max_distance, metric, search))
    pairs = np.stack([_joined(parts, 0, np.intp), _joined(parts, 1, np.intp)], 1)
    if vectors is None:
        return pairs, _joined(parts, 2, np.int32)
    return pairs, _joined(parts, 3, np.float64)


@validate_params(PARAMETERS, prefer_skip_nested_validation=True)
def duplicate_groups(
    codes,
    *,
    radius,
    vectors=None,
    max_distance=None,
    metric="euclidean",
    algorithm="auto",
    backend="auto",
    n_jobs=None,
):
    """Groups of near-duplicate rows: connected components of verified pairs.

    The candidate pairs are the codes within ``radius`` of each other, found
    by a :class:`skhash.neighbors.HammingIndex` a block of rows at a time;
    with ``vectors``, a pair connects its rows only when their vectors are
    within ``max_distance``. Rows connected by a chain of such pairs form a
    group. The pairs are never all in memory: each block's are folded into a
    spanning forest of the groups found so far (one edge per grouped row).

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_bytes), dtype uint8
        Packed codes.
    radius : int
        Candidate pairs are the codes at Hamming distance ``<= radius``. It
        has no default: a fitting radius depends on the number of bits.
    vectors : array-like of shape (n_samples, n_features), default=None
        The float vectors the codes were computed from, row for row. Without
        them every candidate pair connects its rows: hash collisions then
        chain unrelated rows into large groups.
    max_distance : float, default=None
        Largest distance of the vectors of a connecting pair; non-negative,
        except for ``metric="inner_product"``. Goes with ``vectors``.
    metric : {"euclidean", "cosine", "inner_product"}, default="euclidean"
        Distance of the vectors: ``||u - v||``, ``1 - cos(u, v)`` or
        ``-u.v``.
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        Search method, as in :class:`skhash.HammingNeighbors`.
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        Search engine, as in :class:`skhash.HammingNeighbors`.
    n_jobs : int, default=None
        Threads of the search.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype intp
        The group of each row, named by its smallest row: deterministic, and
        the representatives (one row kept per group) are the rows whose label
        is their own row, ``np.flatnonzero(labels == np.arange(n_samples))``.
        A row without a verified partner is a group of its own.

    See Also
    --------
    duplicate_pairs : The verified pairs themselves.
    skhash.dask.duplicate_groups : The same groups on a Dask cluster.

    Notes
    -----
    Memory holds the codes, the index over them, the forest (at most one
    edge per row), as many pairs awaiting their fold, and the candidates of a
    block of rows, whose size adapts to keep them within skhash's working
    memory; the vectors are read only at the candidates' rows.

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> from skhash.neighbors import duplicate_groups
    >>> codes = pack_codes([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    >>> duplicate_groups(codes, radius=1)
    array([0, 0, 2, 0])
    >>> vectors = [[0.0, 0.0], [5.0, 0.0], [9.0, 9.0], [0.1, 0.0]]
    >>> labels = duplicate_groups(codes, radius=1, vectors=vectors, max_distance=0.5)
    >>> labels
    array([0, 1, 2, 0])
    >>> (labels == range(4)).nonzero()[0]  # the rows to keep
    array([0, 1, 2])
    """
    codes = check_codes(codes)
    search = {"algorithm": algorithm, "backend": backend, "n_jobs": n_jobs}
    nodes = roots = np.zeros(0, np.intp)
    pending, n_pending = [], 0
    for left, right, _, _ in _all_pairs(
        codes, radius, vectors, max_distance, metric, search
    ):
        pending.append((left, right))
        n_pending += len(left)
        # Folding once the pending pairs outnumber the forest costs, in all,
        # a constant number of passes over each pair.
        if n_pending >= max(len(nodes), rows_within(_BYTES_PER_CANDIDATE)):
            nodes, roots = _fold(nodes, roots, pending)
            pending, n_pending = [], 0
    nodes, roots = _fold(nodes, roots, pending)
    return group_labels(np.arange(len(codes)), nodes, roots)


def _all_pairs(codes, radius, vectors, max_distance, metric, search):
    """The verified pairs of the self-join of ``codes``, block by block;
    ``search`` are the index's keyword arguments."""
    codes = check_codes(codes)
    vectors = check_verification(vectors, max_distance, metric, n_rows=len(codes))
    if len(codes) == 0:
        return
    index = HammingIndex(codes, **search)
    yield from pairs_within(
        index,
        index.codes,
        radius,
        upper=True,
        query_vectors=vectors,
        index_vectors=vectors,
        max_distance=max_distance,
        metric=metric,
    )


def _joined(parts, column, dtype):
    return np.concatenate([np.zeros(0, dtype), *(part[column] for part in parts)])


def _fold(nodes, roots, pending):
    if not pending:
        return nodes, roots
    left, right = zip(*pending, strict=True)
    return spanning_forest(
        np.concatenate([nodes, *left]), np.concatenate([roots, *right])
    )


def check_verification(vectors, max_distance, metric, *, n_rows=None):
    """``vectors`` checked (finite, ``n_rows`` of them) when the pairs are
    verified, else None; ``max_distance`` must come with them and have a
    sign the metric can reach. Without ``n_rows`` (Dask collections, which
    their workers check block by block) the vectors come back unchecked."""
    if (vectors is None) != (max_distance is None):
        given, missing = (
            ("vectors", "max_distance") if max_distance is None else
            ("max_distance", "vectors")
        )  # fmt: skip
        raise ValueError(
            f"{given} was given without {missing}: pairs are verified on the "
            "vectors against max_distance, and need both."
        )
    if vectors is None:
        return None
    check_metric(metric)
    if np.isnan(max_distance) or max_distance == -np.inf:
        raise ValueError(f"max_distance must be a number, got {max_distance}.")
    if max_distance < 0 and metric != "inner_product":
        raise ValueError(
            f"max_distance must be >= 0 for the {metric} distance, which is never "
            f"negative; got {max_distance}."
        )
    return vectors if n_rows is None else check_vectors(vectors, n_rows=n_rows)


def pairs_within(
    index,
    queries,
    radius,
    *,
    query_offset=0,
    index_offset=0,
    upper=False,
    query_vectors=None,
    index_vectors=None,
    max_distance=None,
    metric="euclidean",
):
    """The pairs of a radius search of ``queries`` in a :class:`HammingIndex`,
    verified on vectors, a block of queries at a time.

    Yields ``(left, right, distance, vector_distance)`` arrays of the pairs
    of each block, sorted by ``(left, right)``: ``left`` are query rows plus
    ``query_offset``, ``right`` index rows plus ``index_offset``; with
    ``upper`` (the queries and the index numbered alike, as in a self-join)
    only the pairs with ``left < right``. With ``query_vectors`` (the
    queries', row for row) and ``index_vectors`` (the index's), only the
    pairs whose vectors are within ``max_distance`` under ``metric`` are
    kept, with their distance in ``vector_distance`` (else None). A block
    holds as many queries as its candidates let fit in the working memory,
    judged from the previous block's.
    """
    queries = index.check_queries(queries)
    verified = query_vectors is not None
    start, step = 0, _FIRST_BLOCK
    while start < len(queries):
        stop = min(start + step, len(queries))
        distance, right, indptr = index.radius_neighbors(queries[start:stop], radius)
        left = csr.query_of(indptr) + start
        density = max(1, -(-len(right) // (stop - start)))
        # At most four times as many queries as the last block's: dense runs
        # of rows (many collisions) must not find a block sized by sparse ones.
        step = min(4 * step, rows_within(_BYTES_PER_CANDIDATE * density))
        start = stop
        keep = left + query_offset < right + index_offset if upper else None
        if keep is not None:
            left, right, distance = left[keep], right[keep], distance[keep]
        vector_distance = None
        if verified:
            vector_distance = _vector_distances(
                query_vectors, index_vectors, left, right, metric
            )
            keep = vector_distance <= max_distance
            left, right = left[keep], right[keep]
            distance, vector_distance = distance[keep], vector_distance[keep]
        yield left + query_offset, right + index_offset, distance, vector_distance


def _vector_distances(query_vectors, index_vectors, left, right, metric):
    """Distances of the vectors of rows ``left`` to those of rows ``right``,
    gathered a block of pairs at a time."""
    distances = np.empty(len(left))
    step = rows_within(16 * query_vectors.shape[1])
    for start in range(0, len(left), step):
        pair = slice(start, start + step)
        distances[pair] = paired_distances(
            query_vectors[left[pair]], index_vectors[right[pair]], metric
        )
    return distances


def spanning_forest(left, right):
    """The connected components of the graph of edges ``(left[i], right[i])``,
    as a star forest: each node of a component but its smallest, with that
    smallest node (its root).

    The nodes may be any sortable values (rows, ids). The forest of a union
    of graphs is the forest of their forests' edges taken together: forests
    merge in any order, each merge at most one edge per node involved.

    Returns
    -------
    nodes : ndarray
        The non-root nodes, sorted.
    roots : ndarray
        The smallest node of each one's component.
    """
    left, right = np.asarray(left), np.asarray(right)
    nodes, inverse = np.unique(np.concatenate([left, right]), return_inverse=True)
    if len(nodes) == 0:
        return nodes, nodes.copy()
    n_edges = len(left)
    graph = coo_array(
        (np.ones(n_edges, bool), (inverse[:n_edges], inverse[n_edges:])),
        shape=(len(nodes), len(nodes)),
    )
    _, component = connected_components(graph.tocsr(), directed=False)
    # The nodes are sorted: a component's first is its smallest.
    _, first = np.unique(component, return_index=True)
    roots = nodes[first[component]]
    keep = roots != nodes
    return nodes[keep], roots[keep]


def group_labels(ids, nodes, roots):
    """The group of each of ``ids``: its root in the forest ``(nodes,
    roots)`` of :func:`spanning_forest`, or itself when it is no node."""
    ids = np.asarray(ids)
    labels = ids.copy()
    if len(nodes) == 0 or len(ids) == 0:
        return labels
    position = np.searchsorted(nodes, ids)
    found = position < len(nodes)
    found[found] = nodes[position[found]] == ids[found]
    labels[found] = roots[position[found]]
    return labels
