"""Exact brute-force search in NumPy: HammingNeighbors' reference backend.

The simple implementation that every faster backend is tested against, and
the blocks the metrics share. Queries are processed in batches whose distance
block holds at most ``_BATCH_ELEMENTS`` entries, so memory stays bounded
whatever the number of queries and database codes.
"""

import numpy as np
from joblib import Parallel, delayed

from ..codes import distances_from_words

_BATCH_ELEMENTS = 1 << 22


def query_batches(n_queries, n_database):
    """Slices of query rows whose distance blocks have bounded size."""
    size = max(1, _BATCH_ELEMENTS // max(1, n_database))
    return [
        slice(start, min(start + size, n_queries))
        for start in range(0, n_queries, size)
    ]


def distance_block(query_words, database_words, rows, *, exclude_self=False):
    """Distances of the queries ``rows`` to every database code.

    With ``exclude_self`` the queries are the database itself and each query's
    own column is set past any real distance (``8 * bytes + 1``), so it ranks
    last and lies outside every radius.
    """
    distances = distances_from_words(query_words[rows], database_words)
    if exclude_self:
        own = np.arange(rows.start, rows.stop)
        distances[own - rows.start, own] = 64 * database_words.shape[1] + 1
    return distances


def stable_top_k(distances, k):
    """Columns of the ``k`` smallest distances of each row, by (distance, column).

    Ties are broken by column (database index), so the result is exact and
    deterministic; the cost is linear in the number of columns.
    """
    n_rows, n_columns = distances.shape
    if k >= n_columns:
        # Distances fit in 16 bits; NumPy sorts those stably with a radix sort.
        return np.argsort(distances.astype(np.uint16), axis=1, kind="stable")[:, :k]
    # distance * n + column is unique per row and orders exactly by (d, column).
    keys = distances.astype(np.int64) * n_columns + np.arange(n_columns)
    part = np.argpartition(keys, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _map_batches(function, query_words, database_words, exclude_self, n_jobs):
    """Apply function(distances) to every query batch, in order."""
    batches = query_batches(len(query_words), len(database_words))

    def run(rows):
        distances = distance_block(
            query_words, database_words, rows, exclude_self=exclude_self
        )
        return function(distances)

    if n_jobs == 1 or len(batches) == 1:
        return [run(rows) for rows in batches]
    # NumPy releases the GIL in the XOR / popcount / partition kernels.
    return Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(run)(rows) for rows in batches
    )


def kneighbors(query_words, database_words, k, *, exclude_self, n_jobs):
    """k nearest codes by (distance, index): (distances int32, indices intp)."""

    def nearest(distances):
        indices = stable_top_k(distances, k)
        return np.take_along_axis(distances, indices, axis=1), indices

    results = _map_batches(nearest, query_words, database_words, exclude_self, n_jobs)
    distances = np.concatenate([d for d, _ in results]).astype(np.int32)
    indices = np.concatenate([i for _, i in results]).astype(np.intp)
    return distances, indices


def radius_neighbors(
    query_words, database_words, radius, *, exclude_self, n_jobs, by_dist
):
    """Per-query lists (distances, indices) of the codes within radius."""

    def within(distances):
        found = []
        for row in distances:
            indices = np.flatnonzero(row <= radius)
            if by_dist:
                indices = indices[np.argsort(row[indices], kind="stable")]
            found.append((row[indices].astype(np.int32), indices))
        return found

    batches = _map_batches(within, query_words, database_words, exclude_self, n_jobs)
    found = [pair for batch in batches for pair in batch]
    return [d for d, _ in found], [i for _, i in found]
