"""The compiled scan as a search engine (``backend="numba"``, the default).

Keeps the database word-major (``database_t[w, j]`` is word ``w`` of code
``j``) for the kernels of :mod:`._numba_knn` and :mod:`._numba_radius`, and runs
their query blocks on :mod:`._threads`.
"""

import functools

import numpy as np

from ._index import SearchIndex
from ._numba_common import chunk_size, compile_once, read_only
from ._numba_knn import knn_block
from ._numba_radius import radius_block
from ._threads import join_blocks, query_blocks, run_blocks


class ScanIndex(SearchIndex):
    @functools.cached_property
    def words_t(self):
        return np.ascontiguousarray(self.words.T)

    def kneighbors(self, queries, k, *, n_jobs):
        self.warm_up()
        query_words = self.query_words(queries)
        n_queries, database_t = len(query_words), self.words_t
        dist = np.empty((n_queries, k), np.int32)
        ind = np.empty((n_queries, k), np.int64)
        chunk = chunk_size(database_t.shape[0])
        capacity = min(k + max(k, 256), database_t.shape[1] + 1)

        def search(q0, q1):
            knn_block(query_words, database_t, k, q0, q1, chunk, dist, ind)

        run_blocks(search, query_blocks(n_queries, n_jobs, 12 * capacity), n_jobs)
        return dist, ind.astype(np.intp, copy=False)

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        self.warm_up()
        query_words = self.query_words(queries)
        database_t = self.words_t
        chunk = chunk_size(database_t.shape[0])

        def search(q0, q1):
            return radius_block(query_words, database_t, radius, q0, q1, chunk, by_dist)

        blocks = query_blocks(len(query_words), n_jobs)
        return join_blocks(run_blocks(search, blocks, n_jobs))

    @classmethod
    def warm_up(cls):
        words = np.zeros((3, 2), np.uint64)
        words_t = np.ascontiguousarray(words.T)
        dist = np.empty((3, 1), np.int32)
        ind = np.empty((3, 1), np.int64)

        def first_calls(kernel, *args):
            # A database mapped read-only queries itself with read-only words,
            # which numba compiles separately: both kinds now, not mid-search.
            for query_words in (words, read_only(words)):
                kernel(query_words, words_t, *args)

        compile_once(
            "knn_block",
            knn_block,
            lambda: first_calls(knn_block, 1, 0, 3, 8, dist, ind),
        )
        compile_once(
            "radius_block",
            radius_block,
            lambda: first_calls(radius_block, 1, 0, 3, 8, True),
        )
