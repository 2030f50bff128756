"""Compiled exact Hamming scan for the k nearest neighbours.

The database is kept word-major (``database_t[w, j]`` is word ``w`` of code
``j``), so the innermost loops run over consecutive codes. A block of queries
walks the database in chunks small enough to stay in the L1 cache: each chunk
loaded from memory serves every query of the block, which keeps the scan
compute-bound at millions of codes.

Selection never builds a distance matrix. Distances are integers
``0..n_bits``, so each query keeps a histogram of its candidates' distances
and, from it, the exact k-th smallest distance ``t`` seen so far: once ``k``
candidates are at or below ``t``, a later code at distance ``t`` has a larger
index and loses every tie, so only codes at distance ``<= t - 1`` can still
enter. Each query starts from the first chunk taken as a batch (its
histogram gives ``t`` at once); after that the bound lets almost nothing
through, so the scan is a test per code and a rare entry. Codes of one, two
or four words (up to 64, 128 and 256 bits) are tested four queries per load
by a scalar loop whose entry branch is marked unlikely; that beats a
vectorised count on machines whose AVX2 has no popcount instruction. Codes of
other widths are summed word by word with vectorised popcounts, the codes
within the bound counted per run of 512 and only runs with some looked at one
by one. Candidates sit in a buffer in index order; a full buffer drops those
past ``t`` and all but the first ones at ``t``. A final stable counting sort
by distance orders the ``k`` survivors by (distance, index).
"""

import numpy as np
from numba import njit

from ._numba_common import SUBCHUNK, chunk_distances, popcount, rarely


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
def _finish_within(query_words, q, database_t, acc, base, start, stop, bound):
    """Add the last word into acc[start - base : stop - base]; count <= bound."""
    last = database_t.shape[0] - 1
    word = query_words[q, last]
    row = database_t[last, start:stop]
    partial = acc[start - base : stop - base]
    # Counting the codes past the bound takes one vector op less than
    # counting those within it.
    past = 0
    for j in range(stop - start):
        d = partial[j] + popcount(row[j] ^ word)
        partial[j] = d
        past += d > bound
    return stop - start - past


# The kNN search state is one int64 row per query, so the rare call that
# updates it passes one array, not seven. Columns: candidates held, the k-th
# smallest distance among them (threshold), how many are at or below it, the
# bound a code must meet to enter, the buffer's capacity, then the histogram
# of the candidates' distances, their distances and their indices (capacity
# columns each, in index order).
_HELD, _THRESHOLD, _AT_MOST, _BOUND, _CAPACITY, _HIST = range(6)


@njit(cache=True, nogil=True)
def _new_state(n_queries, n_bits, capacity):
    state = np.zeros((n_queries, _HIST + n_bits + 1 + 2 * capacity), np.int64)
    state[:, _THRESHOLD] = n_bits
    state[:, _BOUND] = n_bits
    state[:, _CAPACITY] = capacity
    return state


@njit(cache=True, nogil=True, inline="always")
def _candidates(row):
    """Views of a state row: distance histogram, distances, indices."""
    capacity = row[_CAPACITY]
    end = len(row)
    return (
        row[_HIST : end - 2 * capacity],
        row[end - 2 * capacity : end - capacity],
        row[end - capacity :],
    )


@njit(cache=True, nogil=True, inline="always")
def _offer(state, i, d, index, k):
    """Make code ``index`` at distance ``d`` a candidate of query ``i``.

    Returns the bound a later code must meet.
    """
    row = state[i]
    hist, cand_dist, cand_ind = _candidates(row)
    n, t, le = row[_HELD], row[_THRESHOLD], row[_AT_MOST]
    if n == len(cand_dist):
        # Full (so le >= k): keep those below t and the first ones at t.
        keep_at_t = k - le + hist[t]
        n = _compact(cand_dist, cand_ind, n, t, keep_at_t)
        hist[t] = keep_at_t
        le = k
    cand_dist[n] = d
    cand_ind[n] = index
    hist[d] += 1
    le += 1  # d <= bound <= t
    limit = row[_BOUND]
    if le >= k:
        # A later code at distance t loses the tie by index.
        while le - hist[t] >= k:
            le -= hist[t]
            t -= 1
        limit = t - 1
    row[_HELD], row[_THRESHOLD], row[_AT_MOST], row[_BOUND] = n + 1, t, le, limit
    return limit


@njit(cache=True, nogil=True)
def _seed(state, i, query_words, q, database_t, n_seed, k, acc):
    """Start query i from codes 0..n_seed, leaving the state that offering
    them one by one would, in three vectorisable or predictable passes.

    Early in a scan most codes enter (the bound is loose), and each entry is
    a mispredicted branch and an update: the first codes are better taken as
    a batch, by their distance histogram.
    """
    acc[:n_seed] = 0
    for w in range(database_t.shape[0]):
        word = query_words[q, w]
        row = database_t[w, :n_seed]
        for j in range(n_seed):
            acc[j] += popcount(row[j] ^ word)
    hist, cand_dist, cand_ind = _candidates(state[i])
    for j in range(n_seed):
        hist[acc[j]] += 1
    # The k-th smallest distance t and how many codes at t to keep, or every
    # code when there are fewer than k.
    t, le = 0, hist[0]
    while le < k and t < len(hist) - 1:
        t += 1
        le += hist[t]
    keep_at_t = hist[t] - max(0, le - k)
    hist[t] = keep_at_t
    hist[t + 1 :] = 0
    le = min(le, k)
    n = 0
    for j in range(n_seed):
        d = acc[j]
        if d < t or (d == t and keep_at_t > 0):
            keep_at_t -= d == t
            cand_dist[n] = d
            cand_ind[n] = j
            n += 1
    state[i, _HELD], state[i, _THRESHOLD], state[i, _AT_MOST] = n, t, le
    state[i, _BOUND] = t - 1 if le >= k else len(hist) - 1


@njit(cache=True, nogil=True, inline="always")
def _group_bound(state, g):
    """The loosest bound among queries g..g+3 of the block."""
    limit = -1
    for i in range(g, min(g + 4, len(state))):
        limit = max(limit, state[i, _BOUND])
    return limit


@njit(cache=True, nogil=True)
def _offer_in_group(state, g, lane, d, index, k):
    """Offer a code that met the group's bound to query g + lane, if it meets
    that query's own bound; returns the group's new bound."""
    i = g + lane
    if i < len(state) and d <= state[i, _BOUND]:
        _offer(state, i, d, index, k)
    return _group_bound(state, g)


@njit(cache=True, nogil=True, inline="always")
def _lane_queries(query_words, q0, g, n_block, w):
    """Word w of queries g..g+3 of the block; lanes past its end repeat the last."""
    last = min(g + 3, n_block - 1)
    return (
        query_words[q0 + g, w],
        query_words[q0 + min(g + 1, last), w],
        query_words[q0 + min(g + 2, last), w],
        query_words[q0 + last, w],
    )


# The group scans: four queries share each load of a database word and one
# bound, the loosest of theirs, so that everything stays in registers. A code
# within it (rare once the bounds have tightened) leaves the loop through a
# branch marked unlikely. Each code width has its own loop because with the
# words written out LLVM keeps the query words in registers: a loop over the
# words ran at half the speed. On AVX2 machines without a vector popcount
# these scalar loops beat vectorised counts (at 1M codes, 2 threads: 0.46
# against 1.0 ns per pair at 128 bits, 0.74 against 1.4 at 256).


@njit(cache=True, nogil=True)
def _scan_one_word(query_words, database_t, c0, c1, q0, g, k, state):
    """Offer codes c0..c1 to queries g..g+3 of the block (codes of one word)."""
    limit = _group_bound(state, g)
    if limit < 0:
        return  # each query has k codes at distance 0 already
    qa0, qb0, qc0, qd0 = _lane_queries(query_words, q0, g, len(state), 0)
    row = database_t[0, c0:c1]
    for j in range(c1 - c0):
        x = row[j]
        d = popcount(x ^ qa0)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 0, d, c0 + j, k)
        d = popcount(x ^ qb0)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 1, d, c0 + j, k)
        d = popcount(x ^ qc0)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 2, d, c0 + j, k)
        d = popcount(x ^ qd0)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 3, d, c0 + j, k)


@njit(cache=True, nogil=True)
def _scan_two_words(query_words, database_t, c0, c1, q0, g, k, state):
    """Offer codes c0..c1 to queries g..g+3 of the block (codes of two words)."""
    limit = _group_bound(state, g)
    if limit < 0:
        return
    qa0, qb0, qc0, qd0 = _lane_queries(query_words, q0, g, len(state), 0)
    qa1, qb1, qc1, qd1 = _lane_queries(query_words, q0, g, len(state), 1)
    row0, row1 = database_t[0, c0:c1], database_t[1, c0:c1]
    for j in range(c1 - c0):
        x0, x1 = row0[j], row1[j]
        d = popcount(x0 ^ qa0) + popcount(x1 ^ qa1)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 0, d, c0 + j, k)
        d = popcount(x0 ^ qb0) + popcount(x1 ^ qb1)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 1, d, c0 + j, k)
        d = popcount(x0 ^ qc0) + popcount(x1 ^ qc1)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 2, d, c0 + j, k)
        d = popcount(x0 ^ qd0) + popcount(x1 ^ qd1)
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 3, d, c0 + j, k)


@njit(cache=True, nogil=True)
def _scan_four_words(query_words, database_t, c0, c1, q0, g, k, state):
    """Offer codes c0..c1 to queries g..g+3 of the block (codes of four words)."""
    limit = _group_bound(state, g)
    if limit < 0:
        return
    qa0, qb0, qc0, qd0 = _lane_queries(query_words, q0, g, len(state), 0)
    qa1, qb1, qc1, qd1 = _lane_queries(query_words, q0, g, len(state), 1)
    qa2, qb2, qc2, qd2 = _lane_queries(query_words, q0, g, len(state), 2)
    qa3, qb3, qc3, qd3 = _lane_queries(query_words, q0, g, len(state), 3)
    row0, row1 = database_t[0, c0:c1], database_t[1, c0:c1]
    row2, row3 = database_t[2, c0:c1], database_t[3, c0:c1]
    for j in range(c1 - c0):
        x0, x1, x2, x3 = row0[j], row1[j], row2[j], row3[j]
        d = (
            popcount(x0 ^ qa0)
            + popcount(x1 ^ qa1)
            + popcount(x2 ^ qa2)
            + popcount(x3 ^ qa3)
        )
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 0, d, c0 + j, k)
        d = (
            popcount(x0 ^ qb0)
            + popcount(x1 ^ qb1)
            + popcount(x2 ^ qb2)
            + popcount(x3 ^ qb3)
        )
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 1, d, c0 + j, k)
        d = (
            popcount(x0 ^ qc0)
            + popcount(x1 ^ qc1)
            + popcount(x2 ^ qc2)
            + popcount(x3 ^ qc3)
        )
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 2, d, c0 + j, k)
        d = (
            popcount(x0 ^ qd0)
            + popcount(x1 ^ qd1)
            + popcount(x2 ^ qd2)
            + popcount(x3 ^ qd3)
        )
        if rarely(d <= limit):
            limit = _offer_in_group(state, g, 3, d, c0 + j, k)


@njit(cache=True, nogil=True)
def _scan_words(query_words, database_t, c0, c1, q0, i, k, state, acc):
    """Offer codes c0..c1 to query i of the block (codes of several words).

    All words but the last are summed with vectorised popcounts into ``acc``;
    the last word is added while counting the codes within the bound per run
    of 512, and only runs with some are looked at one by one.
    """
    q = q0 + i
    limit = state[i, _BOUND]
    if limit < 0:
        return
    chunk_distances(query_words, q, database_t, c0, c1, acc)
    for s0 in range(c0, c1, SUBCHUNK):
        s1 = min(s0 + SUBCHUNK, c1)
        hits = _finish_within(query_words, q, database_t, acc, c0, s0, s1, limit)
        found = 0
        for j in range(s0 - c0, s1 - c0):
            if found == hits:
                break
            d = acc[j]
            if d <= limit:
                found += 1
                limit = _offer(state, i, d, c0 + j, k)
        if limit < 0:
            return


@njit(cache=True, nogil=True)
def knn_block(query_words, database_t, k, q0, q1, chunk, dist, ind):
    """k nearest codes of queries q0..q1, written into rows q0..q1 of dist, ind."""
    n_words, n_codes = database_t.shape
    n_queries = q1 - q0
    n_bits = 64 * n_words
    state = _new_state(n_queries, n_bits, min(k + max(k, 256), n_codes + 1))
    acc = np.zeros(chunk, np.int64)
    n_seed = min(chunk, n_codes)
    for i in range(n_queries):
        _seed(state, i, query_words, q0 + i, database_t, n_seed, k, acc)
    for c0 in range(n_seed, n_codes, chunk):
        c1 = min(c0 + chunk, n_codes)
        args = (query_words, database_t, c0, c1, q0)
        if n_words == 1:
            for g in range(0, n_queries, 4):
                _scan_one_word(*args, g, k, state)
        elif n_words == 2:
            for g in range(0, n_queries, 4):
                _scan_two_words(*args, g, k, state)
        elif n_words == 4:
            for g in range(0, n_queries, 4):
                _scan_four_words(*args, g, k, state)
        else:
            for i in range(n_queries):
                _scan_words(query_words, database_t, c0, c1, q0, i, k, state, acc)
    # Stable counting sort by distance: candidates are in index order already.
    start = np.zeros(n_bits + 2, np.int64)
    for i in range(n_queries):
        _, cand_dist, cand_ind = _candidates(state[i])
        start[:] = 0
        for t in range(state[i, _HELD]):
            start[cand_dist[t] + 1] += 1
        for d in range(1, n_bits + 2):
            start[d] += start[d - 1]
        for t in range(state[i, _HELD]):
            d = cand_dist[t]
            position = start[d]
            start[d] += 1
            if position < k:
                dist[q0 + i, position] = d
                ind[q0 + i, position] = cand_ind[t]
