"""Compiled exact Hamming scans: k nearest neighbours and radius neighbours.

The database is kept word-major (``database_t[w, j]`` is word ``w`` of code
``j``), so the innermost loops run over consecutive codes and compile to AVX2
popcounts. A block of queries walks the database in chunks small enough to stay
in the L1 cache: each chunk loaded from memory serves every query of the block,
which keeps the scan compute-bound at millions of codes.

Selection never builds a distance matrix. Each query keeps a buffer of
candidates (distance, index) in index order and a bound: only codes at distance
``<= bound`` enter. When the buffer fills, a histogram of its distances (which
are integers ``0..n_bits``) gives the smallest distance ``t`` with ``k``
candidates at or below it; the buffer keeps those below ``t`` and the earliest
ones at ``t``, and the bound drops to ``t - 1`` (a later code at distance ``t``
has a larger index, so it can never win a tie). A final counting sort by
distance, stable, orders the ``k`` survivors by (distance, index).

The kernels are serial and release the GIL; the callers run query blocks on a
pool of ``n_jobs`` threads. That maps ``n_jobs`` exactly, leaves numba's global
thread settings alone and is safe when several threads search at once.

numba is imported here and nowhere else; this module is imported on first use
only, so ``import skhash`` stays light. Kernels are compiled once and cached on
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
def group_results(query_of, found_ind, found_dist, n_queries, n_distances, by_dist):
    """Order flat (query, index, distance) triples by query, then by distance.

    Both sorts are stable counting sorts, so the incoming order (index order
    for the scans) is kept among equals. Returns indices, distances and the
    offsets of each query's run.
    """
    n_found = len(query_of)
    offsets = np.zeros(n_queries + 1, np.int64)
    for t in range(n_found):
        offsets[query_of[t] + 1] += 1
    for i in range(n_queries):
        offsets[i + 1] += offsets[i]
    fill = offsets[:-1].copy()
    order = np.empty(n_found, np.int64)
    for t in range(n_found):
        order[fill[query_of[t]]] = t
        fill[query_of[t]] += 1
    indices = np.empty(n_found, np.int64)
    distances = np.empty(n_found, np.int32)
    hist = np.zeros(n_distances + 1, np.int64)
    for i in range(n_queries):
        start, stop = offsets[i], offsets[i + 1]
        if by_dist:
            hist[:] = 0
            for t in range(start, stop):
                hist[found_dist[order[t]] + 1] += 1
            for d in range(1, n_distances + 1):
                hist[d] += hist[d - 1]
            for t in range(start, stop):
                d = found_dist[order[t]]
                indices[start + hist[d]] = found_ind[order[t]]
                distances[start + hist[d]] = d
                hist[d] += 1
        else:
            for t in range(start, stop):
                indices[t] = found_ind[order[t]]
                distances[t] = found_dist[order[t]]
    return indices, distances, offsets


@njit(cache=True, nogil=True)
def radius_block(query_words, database_t, radius, exclude_self, q0, q1, chunk, by_dist):
    """Codes within ``radius`` of queries q0..q1 by a full scan.

    Returns flat indices and distances grouped by query (index order, or
    (distance, index) order with ``by_dist``) and the offsets of each query.
    """
    n_words, n_codes = database_t.shape
    last = n_words - 1
    size = 1024
    query_of = np.empty(size, np.int32)
    found_ind = np.empty(size, np.int64)
    found_dist = np.empty(size, np.int32)
    n = 0
    acc = np.zeros(chunk, np.int64)
    for c0 in range(0, n_codes, chunk):
        c1 = min(c0 + chunk, n_codes)
        for i in range(q1 - q0):
            q = q0 + i
            _chunk_distances(query_words, q, database_t, c0, c1, acc)
            word = query_words[q, last]
            for s0 in range(c0, c1, _SUBCHUNK):
                s1 = min(s0 + _SUBCHUNK, c1)
                hits = _count_within(
                    query_words, q, database_t, acc, c0, s0, s1, radius
                )
                if hits == 0:
                    continue
                if n + hits > size:
                    size = 2 * (n + hits)
                    query_of = _grow(query_of, size)
                    found_ind = _grow(found_ind, size)
                    found_dist = _grow(found_dist, size)
                for j in range(s0, s1):
                    d = _popcount(database_t[last, j] ^ word)
                    if n_words > 1:
                        d += acc[j - c0]
                    if d <= radius and not (exclude_self and j == q):
                        query_of[n] = i
                        found_ind[n] = j
                        found_dist[n] = d
                        n += 1
    return group_results(
        query_of[:n], found_ind[:n], found_dist[:n], q1 - q0, 64 * n_words, by_dist
    )


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
    """Compile (or load from numba's disk cache) every kernel, once per process.

    Returns
    -------
    seconds : dict
        Seconds spent per kernel the first time; later calls return the same.
    """
    with _compile_lock:
        if COMPILE_SECONDS:
            return dict(COMPILE_SECONDS)
        words = np.zeros((3, 2), np.uint64)
        words_t = np.ascontiguousarray(words.T)
        dist = np.empty((3, 1), np.int32)
        ind = np.empty((3, 1), np.int64)
        calls = {
            "knn_block": lambda: knn_block(words, words_t, 1, True, 0, 3, 8, dist, ind),
            "radius_block": lambda: radius_block(
                words, words_t, 1, True, 0, 3, 8, True
            ),
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


def radius_neighbors(query_words, database_t, radius, *, exclude_self, n_jobs, by_dist):
    """Exact radius neighbours by a full scan: per-query arrays of the results."""
    warm_up()
    query_words = np.ascontiguousarray(query_words)
    chunk = chunk_size(database_t.shape[0])

    def search(q0, q1):
        return radius_block(
            query_words, database_t, radius, exclude_self, q0, q1, chunk, by_dist
        )

    blocks = query_blocks(len(query_words), n_jobs)
    return split_results(run_blocks(search, blocks, n_jobs))


def split_results(block_results):
    """Per-query (distances, indices) lists from blocks' flat results."""
    distances, indices = [], []
    for found_ind, found_dist, offsets in block_results:
        found_ind = found_ind.astype(np.intp, copy=False)
        bounds = offsets.tolist()  # plain slicing beats np.split ~8x here
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            indices.append(found_ind[start:stop])
            distances.append(found_dist[start:stop])
    return distances, indices
