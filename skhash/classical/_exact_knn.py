"""Exact k nearest neighbours of every training row (STH's graph step)."""

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

# Distances in flight per thread (64 MiB of float32).
_BLOCK_DISTANCES = 1 << 24


def nearest_neighbors(X, n_neighbors, *, cosine=False, n_jobs=None):
    """The k nearest other rows of each row of `X`, by blocks of matrix products.

    Neighbours are chosen on float32 distances from ``|x|^2 + |z|^2 - 2 x.z``
    (cosine distances from ``1 - x.z`` of unit rows), and the chosen ones'
    distances are recomputed in float64. Each pair is computed once: the
    block of rows ``I`` against the rows from ``I`` on serves the rows of
    ``I`` and, transposed, the later rows, which halves the matrix products
    of the one step of STH that grows with ``n_samples^2``. With several
    jobs, each thread takes every n-th block with one BLAS thread, keeping its
    own best lists, merged at the end.

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors)
    neighbours : ndarray of shape (n_samples, n_neighbors)
        Indices of each row's neighbours, the row itself excluded; order
        within a row is unspecified.
    """
    X = np.asarray(X, dtype=np.float64)
    if cosine:
        X = normalize(X)
    single = X.astype(np.float32)
    norms = np.einsum("ij,ij->i", single, single)
    n_samples = len(X)
    size = max(1, _BLOCK_DISTANCES // n_samples)
    starts = range(0, n_samples, size)
    n_threads = min(effective_n_jobs(n_jobs), len(starts))

    def search(block_starts):
        best = _BestLists(n_samples, n_neighbors)
        for start in block_starts:
            stop = min(start + size, n_samples)
            block = single[start:stop] @ single[start:].T
            if cosine:
                np.subtract(1, block, out=block)
            else:
                block *= -2
                block += norms[None, start:]
                block += norms[start:stop, None]
            block[np.arange(stop - start), np.arange(stop - start)] = np.inf
            best.offer(slice(start, stop), block, start)
            # The later rows' distances to this block, columns turned to rows.
            best.offer(slice(stop, n_samples), block[:, stop - start :].T, start)
        return best

    with threadpool_limits(1 if n_threads > 1 else None, user_api="blas"):
        found = Parallel(n_jobs=n_threads, prefer="threads")(
            delayed(search)(starts[thread::n_threads]) for thread in range(n_threads)
        )
    best = found[0]
    for other in found[1:]:
        best.merge(other)
    neighbours = best.indices
    distances = np.empty((n_samples, n_neighbors))
    for start in range(0, n_samples, size):
        rows = slice(start, start + size)
        if cosine:
            distances[rows] = 1 - np.einsum("ij,ikj->ik", X[rows], X[neighbours[rows]])
        else:
            difference = X[rows, None, :] - X[neighbours[rows]]
            distances[rows] = np.sqrt(np.einsum("ikj,ikj->ik", difference, difference))
    return distances, neighbours


class _BestLists:
    """Per row, the k smallest distances offered so far and their columns."""

    def __init__(self, n_rows, k):
        self.k = k
        self.distances = np.full((n_rows, k), np.inf, dtype=np.float32)
        self.indices = np.zeros((n_rows, k), dtype=np.intp)

    def offer(self, rows, block, first_column):
        """Merge the k smallest of each row of `block` (columns numbered from
        `first_column`) into the lists of `rows`."""
        if block.shape[1] > self.k:
            columns = np.argpartition(block, self.k - 1, axis=1)[:, : self.k]
        else:
            columns = np.broadcast_to(np.arange(block.shape[1]), block.shape)
        distances = np.take_along_axis(block, columns, axis=1)
        self._keep(rows, distances, columns + first_column)

    def merge(self, other):
        self._keep(slice(None), other.distances, other.indices)

    def _keep(self, rows, distances, indices):
        distances = np.concatenate([self.distances[rows], distances], axis=1)
        indices = np.concatenate([self.indices[rows], indices], axis=1)
        keep = np.argpartition(distances, self.k - 1, axis=1)[:, : self.k]
        self.distances[rows] = np.take_along_axis(distances, keep, axis=1)
        self.indices[rows] = np.take_along_axis(indices, keep, axis=1)
