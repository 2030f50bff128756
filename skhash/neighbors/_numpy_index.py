"""The NumPy search engine: the simple reference every faster engine is tested
against. Distance blocks of bounded size (:mod:`skhash._ranking`), selection by
``argpartition`` and stable sorts, NumPy's kernels releasing the GIL for
``n_jobs`` threads.
"""

import numpy as np
from joblib import Parallel, delayed

from .._ranking import distance_block, query_batches, stable_top_k
from ..utils import _csr as csr
from ._index import SearchIndex


class NumpyIndex(SearchIndex):
    def kneighbors(self, queries, k, *, n_jobs):
        def nearest(distances):
            indices = stable_top_k(distances, k)
            return np.take_along_axis(distances, indices, axis=1), indices

        results = self._map_batches(nearest, queries, n_jobs)
        distances = np.concatenate([d for d, _ in results]).astype(np.int32)
        indices = np.concatenate([i for _, i in results]).astype(np.intp)
        return distances, indices

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        def within(distances):
            rows, columns = np.nonzero(distances <= radius)
            found = distances[rows, columns]
            if by_dist:  # nonzero is row-major: a stable sort keeps index order
                order = np.lexsort((columns, found, rows))
                rows, columns, found = rows[order], columns[order], found[order]
            counts = np.bincount(rows, minlength=len(distances))
            return found.astype(np.int32), columns.astype(np.intp), counts

        parts = self._map_batches(within, queries, n_jobs)
        return csr.concatenate((d, i, csr.indptr_of(c)) for d, i, c in parts)

    def _map_batches(self, function, queries, n_jobs):
        """function(distances) for every query batch, in order."""
        query_words = self.query_words(queries)
        batches = query_batches(len(query_words), len(self.words))

        def run(rows):
            return function(distance_block(query_words, self.words, rows))

        if n_jobs == 1 or len(batches) == 1:
            return [run(rows) for rows in batches]
        # NumPy releases the GIL in the XOR / popcount / partition kernels.
        return Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(run)(rows) for rows in batches
        )
