"""Compiled exact radius scan: every code within a Hamming radius, by a full scan.

The scan of :mod:`._numba_knn` with a fixed bound: each run of codes is first
counted with vectorised popcounts, and only runs with codes inside the radius
are looked at one by one. Found pairs go to growable flat buffers and are
grouped by query at the end with stable counting sorts, so each query's
neighbours come in index order, or in (distance, index) order.
"""

import numpy as np
from numba import njit

from ._numba_common import SUBCHUNK, chunk_distances, grow, popcount


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
            past += popcount(row[j] ^ word) > bound
    else:
        partial = acc[start - base : stop - base]
        for j in range(stop - start):
            past += partial[j] + popcount(row[j] ^ word) > bound
    return stop - start - past


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
def radius_block(query_words, database_t, radius, q0, q1, chunk, by_dist):
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
            chunk_distances(query_words, q, database_t, c0, c1, acc)
            word = query_words[q, last]
            for s0 in range(c0, c1, SUBCHUNK):
                s1 = min(s0 + SUBCHUNK, c1)
                hits = _count_within(
                    query_words, q, database_t, acc, c0, s0, s1, radius
                )
                if hits == 0:
                    continue
                if n + hits > size:
                    size = 2 * (n + hits)
                    query_of = grow(query_of, size)
                    found_ind = grow(found_ind, size)
                    found_dist = grow(found_dist, size)
                for j in range(s0, s1):
                    d = popcount(database_t[last, j] ^ word)
                    if n_words > 1:
                        d += acc[j - c0]
                    if d <= radius:
                        query_of[n] = i
                        found_ind[n] = j
                        found_dist[n] = d
                        n += 1
    return group_results(
        query_of[:n], found_ind[:n], found_dist[:n], q1 - q0, 64 * n_words, by_dist
    )
