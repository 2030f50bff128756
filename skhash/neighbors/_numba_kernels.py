"""Compiled exact Hamming scan for the k nearest neighbours, and shared helpers.

The database is kept word-major (``database_t[w, j]`` is word ``w`` of code
``j``), so the innermost loops run over consecutive codes and compile to AVX2
popcounts. A block of queries walks the database in chunks small enough to stay
in the L1 cache: each chunk loaded from memory serves every query of the block,
which keeps the scan compute-bound at millions of codes.

Selection never builds a distance matrix. Distances are integers
``0..n_bits``, so each query keeps a histogram of its candidates' distances
and, from it, the exact k-th smallest distance ``t`` seen so far: once ``k``
candidates are at or below ``t``, a later code at distance ``t`` has a larger
index and loses every tie, so only codes at distance ``<= t - 1`` can still
enter. That bound tightens after every accepted code, so after the first few
thousand codes almost nothing passes it, and the scan is a vectorised count of
the codes within the bound per run of 512, followed by a look at the rare runs
that have some. Candidates sit in a buffer in index order; a full buffer
drops those past ``t`` and all but the first ones at ``t``. A final stable
counting sort by distance orders the ``k`` survivors by (distance, index).

The kernels are serial and release the GIL; the callers run query blocks on a
pool of ``n_jobs`` threads. That maps ``n_jobs`` exactly, leaves numba's global
thread settings alone and is safe when several threads search at once.

numba is imported here and in ``_multi_index`` only, and those modules on first
use only, so ``import skhash`` stays light. Kernels are compiled once and cached on
disk (``cache=True``); :func:`warm_up` pays and reports that cost.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# A database chunk of this many bytes stays in L1 while a query block scans it.
_CHUNK_BYTES = 16384
# Codes tested together before looking at any of them one by one.
_SUBCHUNK = 512
# Queries that share one pass over the database.
_QUERY_BLOCK = 64
# Bound on one query block's candidate buffers, in bytes.
_BUFFER_BYTES = 1 << 24

#: Seconds spent compiling (or loading from numba's cache) each kernel, filled
#: by :func:`warm_up`.
COMPILE_SECONDS = {}
_compile_lock = threading.RLock()


@intrinsic
def _popcount(typingctx, word):
    """Number of set bits of a uint64 (LLVM's ctpop, vectorised with AVX2)."""
    signature = types.int64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(cache=True, nogil=True)
def _compact(dist, ind, count, threshold, keep_at_threshold):
    """Drop candidates past threshold and all but the first few at it."""
    kept = 0
    for t in range(count):
        d = dist[t]
        if d < threshold or (d == threshold and keep_at_threshold > 0):
            if d == threshold:
                keep_at_threshold -= 1
            dist[kept] = d
            ind[kept] = ind[t]
            kept += 1
    return kept


@njit(cache=True, nogil=True)
def _chunk_distances(query_words, q, database_t, start, stop, acc):
    """Distances over all words but the last, into acc[: stop - start]."""
    n_words = database_t.shape[0]
    # 1-D rows and a zero-based loop let LLVM vectorise the popcounts.
    n = stop - start
    if n_words > 1:
        word = query_words[q, 0]
        row = database_t[0, start:stop]
        for j in range(n):
            acc[j] = _popcount(row[j] ^ word)
        for w in range(1, n_words - 1):
            word = query_words[q, w]
            row = database_t[w, start:stop]
            for j in range(n):
                acc[j] += _popcount(row[j] ^ word)


@njit(cache=True, nogil=True)
def _finish_within(query_words, q, database_t, acc, base, start, stop, bound):
    """Add the last word into acc[start - base : stop - base]; count <= bound."""
    n_words = database_t.shape[0]
    last = n_words - 1
    word = query_words[q, last]
    row = database_t[last, start:stop]
    partial = acc[start - base : stop - base]
    # Counting the codes past the bound takes one vector op less than
    # counting those within it.
    past = 0
    if n_words == 1:
        # No store: the rare codes within the bound are recounted by the caller.
        for j in range(stop - start):
            past += _popcount(row[j] ^ word) > bound
    else:
        for j in range(stop - start):
            d = partial[j] + _popcount(row[j] ^ word)
            partial[j] = d
            past += d > bound
    return stop - start - past


@njit(cache=True, nogil=True)
def _count_within(query_words, q, database_t, acc, base, start, stop, bound):
    """How many codes start..stop are at distance <= bound (vectorised)."""
    n_words = database_t.shape[0]
    last = n_words - 1
    word = query_words[q, last]
    row = database_t[last, start:stop]
    past = 0
    if n_words == 1:
        for j in range(stop - start):
            past += _popcount(row[j] ^ word) > bound
    else:
        partial = acc[start - base : stop - base]
        for j in range(stop - start):
            past += partial[j] + _popcount(row[j] ^ word) > bound
    return stop - start - past


@njit(cache=True, nogil=True)
def knn_block(query_words, database_t, k, exclude_self, q0, q1, chunk, dist, ind):
    """k nearest codes of queries q0..q1, written into rows q0..q1 of dist, ind.

    With ``exclude_self`` query ``q`` is database code ``q`` and is skipped.
    """
    n_words, n_codes = database_t.shape
    n_queries = q1 - q0
    n_bits = 64 * n_words
    capacity = min(k + max(k, 256), n_codes + 1)
    cand_dist = np.empty((n_queries, capacity), np.int32)
    cand_ind = np.empty((n_queries, capacity), np.int64)
    count = np.zeros(n_queries, np.int64)
    # Per query: histogram of the candidates' distances, the k-th smallest
    # distance so far (threshold) and how many candidates are at or below it.
    hists = np.zeros((n_queries, n_bits + 2), np.int32)
    threshold = np.full(n_queries, n_bits, np.int64)
    at_most = np.zeros(n_queries, np.int64)
    bound = np.full(n_queries, n_bits, np.int64)
    acc = np.zeros(chunk, np.int64)
    for c0 in range(0, n_codes, chunk):
        c1 = min(c0 + chunk, n_codes)
        for i in range(n_queries):
            limit = bound[i]
            if limit < 0:
                continue  # k codes at distance 0 already
            q = q0 + i
            _chunk_distances(query_words, q, database_t, c0, c1, acc)
            for s0 in range(c0, c1, _SUBCHUNK):
                s1 = min(s0 + _SUBCHUNK, c1)
                hits = _finish_within(
                    query_words, q, database_t, acc, c0, s0, s1, limit
                )
                if hits == 0:
                    continue
                n, t, le = count[i], threshold[i], at_most[i]
                hist = hists[i]
                found = 0
                word = query_words[q, 0]
                for j in range(s0 - c0, s1 - c0):
                    if n_words == 1:
                        d = _popcount(database_t[0, c0 + j] ^ word)
                    else:
                        d = acc[j]
                    if d > limit:
                        continue
                    found += 1
                    if not (exclude_self and c0 + j == q):
                        if n == capacity:
                            n = _compact(
                                cand_dist[i], cand_ind[i], n, t, k - le + hist[t]
                            )
                            hist[t] = k - le + hist[t]
                            le = k
                        cand_dist[i, n] = d
                        cand_ind[i, n] = c0 + j
                        n += 1
                        hist[d] += 1
                        le += 1
                        if le >= k:
                            # A later code at distance t loses the tie by index.
                            while le - hist[t] >= k:
                                le -= hist[t]
                                t -= 1
                            limit = t - 1
                            if limit < 0:
                                break
                    if found == hits:
                        break
                count[i], threshold[i], at_most[i], bound[i] = n, t, le, limit
                if limit < 0:
                    break
    hist = np.zeros(n_bits + 2, np.int64)
    # Stable counting sort by distance: candidates are in index order already.
    for i in range(n_queries):
        hist[:] = 0
        for t in range(count[i]):
            hist[cand_dist[i, t] + 1] += 1
        for d in range(1, hist.shape[0]):
            hist[d] += hist[d - 1]
        for t in range(count[i]):
            d = cand_dist[i, t]
            position = hist[d]
            hist[d] += 1
            if position < k:
                dist[q0 + i, position] = d
                ind[q0 + i, position] = cand_ind[i, t]


@njit(cache=True, nogil=True)
def _grow(array, size):
    grown = np.empty(size, array.dtype)
    grown[: len(array)] = array
    return grown


@njit(cache=True, nogil=True)
def popcount_sum(database_t, start, stop, repeats):
    """Sum of the popcounts of codes start..stop: a scan with no selection.

    Each L1-sized chunk is summed ``repeats`` times, so with a few repeats
    this times the popcount throughput of the core (the hardware limit of any
    exact scan) rather than the memory bandwidth.
    """
    total = 0
    chunk = chunk_size(database_t.shape[0])
    for c0 in range(start, stop, chunk):
        c1 = min(c0 + chunk, stop)
        for _ in range(repeats):
            for w in range(database_t.shape[0]):
                row = database_t[w, c0:c1]
                for j in range(c1 - c0):
                    total += _popcount(row[j])
    return total


def warm_up():
    """Compile (or load from numba's disk cache) the kNN scan, once per process.

    Returns
    -------
    seconds : dict
        Seconds spent per kernel the first time (all modules' kernels warmed
        up so far); later calls return the same.
    """
    with _compile_lock:
        if "knn_block" in COMPILE_SECONDS:
            return dict(COMPILE_SECONDS)
        words = np.zeros((3, 2), np.uint64)
        words_t = np.ascontiguousarray(words.T)
        dist = np.empty((3, 1), np.int32)
        ind = np.empty((3, 1), np.int64)
        calls = {
            "knn_block": lambda: knn_block(words, words_t, 1, True, 0, 3, 8, dist, ind),
            "popcount_sum": lambda: popcount_sum(words_t, 0, 3, 1),
        }
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            COMPILE_SECONDS[name] = time.perf_counter() - start
        return dict(COMPILE_SECONDS)


@njit(cache=True, nogil=True)
def chunk_size(n_words):
    """Codes per database chunk for codes of ``n_words`` words."""
    return max(_SUBCHUNK, _CHUNK_BYTES // (8 * n_words) // _SUBCHUNK * _SUBCHUNK)


def query_blocks(n_queries, n_jobs, per_query_bytes=0):
    """Query ranges: big enough to share the database scan, enough for n_jobs."""
    size = min(_QUERY_BLOCK, -(-n_queries // max(1, n_jobs)))
    if per_query_bytes:
        size = min(size, _BUFFER_BYTES // per_query_bytes)
    size = max(1, size)
    return [(s, min(s + size, n_queries)) for s in range(0, n_queries, size)]


def run_blocks(function, blocks, n_jobs):
    """function(q0, q1) for every block, on n_jobs threads; results in order."""
    if n_jobs == 1 or len(blocks) == 1:
        return [function(q0, q1) for q0, q1 in blocks]
    return list(_pool(n_jobs).map(lambda block: function(*block), blocks))


_pools = {}


def _pool(n_jobs):
    """A thread pool per thread count, kept: starting threads costs ~0.1 ms."""
    with _compile_lock:
        if n_jobs not in _pools:
            _pools[n_jobs] = ThreadPoolExecutor(
                max_workers=n_jobs, thread_name_prefix="skhash-search"
            )
        return _pools[n_jobs]


def kneighbors(query_words, database_t, k, *, exclude_self, n_jobs):
    """Exact k nearest neighbours; returns (distances int32, indices intp)."""
    warm_up()
    n_queries = len(query_words)
    query_words = np.ascontiguousarray(query_words)
    dist = np.empty((n_queries, k), np.int32)
    ind = np.empty((n_queries, k), np.int64)
    chunk = chunk_size(database_t.shape[0])
    capacity = min(k + max(k, 256), database_t.shape[1] + 1)

    def search(q0, q1):
        knn_block(query_words, database_t, k, exclude_self, q0, q1, chunk, dist, ind)

    run_blocks(search, query_blocks(n_queries, n_jobs, 12 * capacity), n_jobs)
    return dist, ind.astype(np.intp, copy=False)
