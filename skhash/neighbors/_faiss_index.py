"""FAISS ``IndexBinaryFlat`` as a search engine (the ``skhash[faiss]`` extra).

An exhaustive scan whose heap breaks ties by id, so its k nearest are exactly
skhash's. Its ``range_search`` keeps distances strictly below the radius, so it
is called with ``radius + 1``. The index is built on first use, never pickled.
"""

import numpy as np

from ._index import SearchIndex, drop_self, group


def import_faiss():
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            'backend="faiss" needs FAISS: pip install faiss-cpu (or skhash[faiss]).'
        ) from error
    return faiss


class FaissIndex(SearchIndex):
    def __init__(self, codes):
        super().__init__(codes)
        self.faiss = import_faiss()
        self.index = self.faiss.IndexBinaryFlat(8 * codes.shape[1])
        self.index.add(codes)

    def kneighbors(self, queries, k, *, n_jobs):
        exclude_self = queries is None
        queries = self.codes if exclude_self else np.ascontiguousarray(queries)
        self.faiss.omp_set_num_threads(n_jobs)
        distances, indices = self.index.search(queries, k + exclude_self)
        if exclude_self:
            distances, indices = drop_self(distances, indices, range(len(queries)))
        return distances.astype(np.int32), indices.astype(np.intp)

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        exclude_self = queries is None
        queries = self.codes if exclude_self else np.ascontiguousarray(queries)
        self.faiss.omp_set_num_threads(n_jobs)
        limits, distances, indices = self.index.range_search(queries, radius + 1)
        counts = np.diff(limits.astype(np.int64))
        query_of = np.repeat(np.arange(len(queries)), counts)
        return group(query_of, indices, distances, len(queries), exclude_self, by_dist)
