"""FAISS ``IndexBinaryFlat`` as a search engine (the ``skhash[faiss]`` extra).

An exhaustive scan whose heap breaks ties by id, so its k nearest are exactly
skhash's. Its ``range_search`` keeps distances strictly below the radius, so it
is called with ``radius + 1``. The index is built on first use, never pickled.

``range_search`` gathers its results inside an OpenMP parallel region, where a
failed allocation cannot reach Python: ``std::bad_alloc`` ends the process
(SIGABRT). So a radius search calls it on blocks of queries, each after
checking with a NumPy allocation (which raises MemoryError) that the block's
worst case, every code found, fits beside the other blocks running; a block
that does not fit is halved, down to one query. The results pile up in NumPy,
where running out of memory is a MemoryError too. Bounded blocks alone are not
enough: a call's buffers would be the first allocation to cross the limit.
``search`` (kNN) writes into output arrays NumPy allocates and allocates
nothing itself: it needs no blocks.
"""

import contextlib

import numpy as np

from ._index import SearchIndex, group
from ._threads import query_blocks, run_blocks

# Query-code pairs of one range_search call: ~10 ms of scanning, so that the
# calls' overhead (~50 us each) is lost in it.
_BLOCK_PAIRS = 1 << 24
# What range_search keeps per found pair: an int64 label, a float32 distance.
_PAIR_BYTES = 12
# What a call may take beyond its results: its first buffer of 2**18 pairs
# (3 MiB), which it allocates whole, and malloc's bookkeeping.
_CALL_BYTES = 1 << 24


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

    @classmethod
    def check_available(cls):
        import_faiss()

    def kneighbors(self, queries, k, *, n_jobs):
        self.faiss.omp_set_num_threads(n_jobs)
        distances, indices = self.index.search(np.ascontiguousarray(queries), k)
        return distances.astype(np.int32), indices.astype(np.intp)

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        queries = np.ascontiguousarray(queries)
        n_queries, n_codes = len(queries), len(self.codes)
        rows = max(1, _BLOCK_PAIRS // max(1, n_codes))
        blocks = query_blocks(max(n_queries, 1), n_jobs, largest=rows)
        n_running = min(n_jobs, len(blocks))

        def search(q0, q1):
            found, size = [], q1 - q0
            while q0 < q1:
                size = min(size, q1 - q0)
                # The pairs sit in FAISS's buffers, then in its result, then
                # in NumPy's copy of it: twice the worst case at any time,
                # for each block running.
                worst = 2 * _PAIR_BYTES * size * n_codes + _CALL_BYTES
                try:
                    _check_room(n_running * worst)
                except MemoryError:
                    if size == 1:
                        raise
                    size = -(-size // 2)  # near the limit: smaller calls
                    continue
                with _omp_threads(self.faiss, 1):
                    limits, distances, indices = self.index.range_search(
                        queries[q0 : q0 + size], radius + 1
                    )
                found.append((np.diff(limits.astype(np.int64)), indices, distances))
                q0 += size
            return _joined(found)

        counts, indices, distances = _joined(run_blocks(search, blocks, n_jobs))
        query_of = np.repeat(np.arange(n_queries), counts)
        return group(query_of, indices, distances, n_queries, by_dist)


def _joined(parts):
    """The (counts, indices, distances) of parts, each joined end to end."""
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))


@contextlib.contextmanager
def _omp_threads(faiss, n_threads):
    """FAISS's OpenMP threads for this thread's calls, restored after.

    The setting is the calling thread's: query blocks on ``n_jobs`` threads
    each make one-thread calls, which wait for no other thread (calls with a
    team of threads each, one per block, wait at their end for the slowest
    thread: 5 to 20 times slower on a busy machine).
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _check_room(n_bytes):
    """Raise MemoryError unless ``n_bytes`` more can be allocated now.

    The array is mapped and unmapped, never touched: it costs microseconds,
    and checks the address space (``RLIMIT_AS``, strict overcommit), where a
    C++ allocation fails; elsewhere the kernel's OOM killer acts instead.
    """
    np.empty(n_bytes, np.uint8)
