"""Query blocks on a shared pool of threads, and their results joined.

The kernels are serial and release the GIL; a search splits its queries into
blocks and runs them on ``n_jobs`` threads: the calling thread and pool
threads. That maps ``n_jobs`` exactly, leaves numba's global thread settings
alone and is safe when several threads search at once.
"""

import functools
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from joblib import cpu_count

from ..utils import _csr as csr
from ..utils._memory import WORKING_MEMORY

# Queries that share one pass over the database.
QUERY_BLOCK = 64
# Bound on one query block's candidate buffers: a quarter of the working
# memory, as up to a few blocks run at once.
_BUFFER_BYTES = WORKING_MEMORY // 4


def query_blocks(n_queries, n_jobs, per_query_bytes=0, largest=QUERY_BLOCK):
    """Query ranges: big enough to share the database scan (at most
    ``largest`` queries), enough for n_jobs."""
    size = min(largest, -(-n_queries // max(1, n_jobs)))
    if per_query_bytes:
        size = min(size, _BUFFER_BYTES // per_query_bytes)
    size = max(1, size)
    return [(s, min(s + size, n_queries)) for s in range(0, n_queries, size)]


def run_blocks(function, blocks, n_jobs):
    """function(q0, q1) for every block, on n_jobs threads; results in order.

    The calling thread takes blocks too, beside ``n_jobs - 1`` pool threads:
    handing work to a pool thread costs ~40 us here, more than a small
    radius search of a whole block.
    """
    n_threads = min(n_jobs, len(blocks))
    if n_threads == 1:
        return [function(q0, q1) for q0, q1 in blocks]
    results = [None] * len(blocks)
    next_block = itertools.count()  # next() on it is atomic under the GIL

    def work():
        for b in iter(next_block.__next__, None):
            if b >= len(blocks):
                return
            results[b] = function(*blocks[b])

    helpers = [_pool().submit(work) for _ in range(n_threads - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            # A helper still queued behind other searches' has nothing left to
            # do: cancel it rather than wait for its turn.
            if not helper.cancel():
                helper.result()
    return results


@functools.cache
def max_threads():
    """The processors this process may use: more threads than that only wait.

    joblib reads the CPU affinity and cgroup limits each time (~30 us, a third
    of a one-query radius search), so once per process.
    """
    return cpu_count()


_pool_lock = threading.Lock()
_shared_pool = []


def _pool():
    """The search threads, kept (starting one costs ~0.1 ms) and shared by
    every search: one fewer than the processors, since callers work too."""
    with _pool_lock:
        if not _shared_pool:
            _shared_pool.append(
                ThreadPoolExecutor(
                    max_workers=max(1, max_threads() - 1),
                    thread_name_prefix="skhash-search",
                )
            )
        return _shared_pool[0]


def join_blocks(block_results):
    """Flat (distances, indices, indptr) of all queries from blocks' results.

    Each block gives (indices, distances, offsets) with its queries' runs at
    ``offsets[i]:offsets[i + 1]``; query ``i`` of the whole search gets
    ``indptr[i]:indptr[i + 1]`` of the joined arrays, as in a CSR matrix.
    """
    return csr.concatenate(
        (
            found_dist[offsets[0] : offsets[-1]],
            found_ind[offsets[0] : offsets[-1]].astype(np.intp, copy=False),
            offsets - offsets[0],
        )
        for found_ind, found_dist, offsets in block_results
    )
