"""Ranking codes by Hamming distance in bounded blocks: the ground floor that the
metrics and the NumPy search engine share.

Queries are processed in batches whose distance blocks fit the working
memory (``skhash.utils._memory``), so memory stays bounded whatever the number
of queries and database codes; ties are broken by database index everywhere.
"""

import numpy as np

from .codes import distances_from_words
from .utils._memory import rows_within

# Bytes per query-code pair of a batch: its distance, its relevance and the
# sort keys and histograms made from them.
_PAIR_BYTES = 16


def query_batches(n_queries, n_database):
    """Slices of query rows whose distance blocks fit the working memory."""
    size = rows_within(_PAIR_BYTES * n_database)
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


def distance_histograms(distances, relevant, n_bins):
    """Per query (row): the items and the relevant items at each distance
    ``0..n_bins - 1``; distances past that (an excluded self) are dropped.

    What every ranking metric is computed from, on one machine or summed over
    shards: no sort is needed.
    """
    n_rows = len(distances)
    flat = np.minimum(distances, n_bins) + (n_bins + 1) * np.arange(n_rows)[:, None]
    size = n_rows * (n_bins + 1)
    items = np.bincount(flat.ravel(), minlength=size).reshape(n_rows, -1)
    hits = np.bincount(flat[relevant], minlength=size).reshape(n_rows, -1)
    return items[:, :n_bins], hits[:, :n_bins]


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
