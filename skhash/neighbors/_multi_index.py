"""Exact radius search by multi-index hashing (Norouzi, Punjani & Fleet, 2012).

The ``8 * n_bytes`` bits of a code (read as one little-endian integer, as
:func:`skhash.codes.as_words` lays them out) are cut into ``m`` disjoint
substrings of about ``log2(n_codes)`` bits each, and every substring indexes its
own table of buckets. If two codes differ in at most ``r`` bits, write
``r = m * r' + a`` with ``0 <= a < m``; by pigeonhole one of the first ``a + 1``
substrings differs in at most ``r'`` bits, or one of the others in at most
``r' - 1``. Probing those tables at those radii and checking each candidate's
full distance finds every code within ``r`` and nothing else: the search is
exact. A candidate found again in a later table is recognised by its substring
distances and reported once. For small radii only ``r + 1`` tables are probed
and each probe meets about one code, so the cost does not grow with the
database as a scan's does.

A radius below ``m - 1`` probes only ``r + 1`` tables, each exactly, and
needs no more than ``r + 1`` disjoint substrings: where codes share short
substrings without being near (clustered codes, whose first table is
crowded) it gets tables of its own, of substrings as long as the code
allows, hashed into as many buckets (:meth:`MultiIndex.radius_tables`),
which such codes share far less.

Tables are built on first use (a counting sort, linear in the database), kept,
and saved with a fitted ``HammingNeighbors``; see
:meth:`MultiIndex.cheaper_than_scan` for when the automatic choice prefers
them.
"""

import math
import threading

import numpy as np
from numba import njit

from ._index import SearchIndex
from ._numba_common import compile_once, grow, popcount, prefetch, read_only
from ._snapshot import digest, mapped_path
from ._tables import (
    FILE_BUILD_BUDGET,
    build_table,
    hashed_layout,
    layout,
    tables_match,
)
from ._tables import bucket as _bucket
from ._tables import key as _key
from ._threads import join_blocks, query_blocks, run_blocks

# Fewest queries worth handing to another thread: radius search, kNN.
_QUERIES_PER_THREAD = 2048
_KNN_PER_THREAD = 64
# Cost of a bucket probe or a candidate in the kNN search, in scanned words:
# measured 2M uniform 64-bit codes, one thread (a candidate ~0.2-0.4 us, a
# scanned word ~1 ns). Higher than the radius search's, whose small balls
# overlap their misses better.
_KNN_ACCESS_COST = 256
# Cost of one bucket probe or one candidate check, in scanned words (a random
# memory access against a streamed, vectorised popcount).
_RANDOM_ACCESS_COST = 64


@njit(cache=True, nogil=True, inline="always")
def _next_mask(mask):
    """The next larger integer with as many set bits (Gosper's hack)."""
    low = mask & -mask
    ripple = mask + low
    return (((ripple ^ mask) >> 2) // low) | ripple


@njit(cache=True, nogil=True)
def _sort_segment(indices, distances, start, stop, distance_weight):
    """Sort start..stop by index, or by (distance, index) with a weight of n_codes.

    Balls are usually small: insertion sort, without allocating, below 32.
    """
    if stop - start > 32:
        keys = indices[start:stop] + distances[start:stop] * np.int64(distance_weight)
        order = np.argsort(keys)
        indices[start:stop] = indices[start:stop][order]
        distances[start:stop] = distances[start:stop][order]
        return
    for t in range(start + 1, stop):
        index, distance = indices[t], distances[t]
        key = index + distance * np.int64(distance_weight)
        u = t - 1
        while (
            u >= start and indices[u] + distances[u] * np.int64(distance_weight) > key
        ):
            indices[u + 1] = indices[u]
            distances[u + 1] = distances[u]
            u -= 1
        indices[u + 1] = index
        distances[u + 1] = distance


@njit(cache=True, nogil=True)
def _search_block(
    query_words, words, starts, lengths, probe_radius, offsets, ids, hash_bits,
    radius, q0, q1, by_dist, found_ind, found_dist, found_offsets,
):  # fmt: skip
    """Codes within radius of queries q0..q1, into the given buffers.

    With ``hash_bits > 0`` the tables' buckets are their substrings' hashes
    (see ``_tables.bucket``): a code in a probed bucket whose own substring
    is not the probed one collided there and is skipped.

    Query ``q0 + i``'s indices and distances go to
    ``found_*[found_offsets[i] : found_offsets[i + 1]]``. Returns how many
    queries were done: fewer than ``q1 - q0`` when the buffers filled up (the
    caller continues with larger ones). Buffers that never change inside the
    loop spare numba reference counting there, which otherwise costs more
    than the search at small radii.
    """
    n_words = words.shape[1]
    n_codes = words.shape[0]
    n_tables = len(probe_radius)
    capacity = len(found_ind)
    n = 0
    found_offsets[0] = 0
    query_keys = np.empty((q1 - q0, n_tables), np.int64)
    for i in range(q1 - q0):
        for u in range(n_tables):
            query_keys[i, u] = _key(query_words, q0 + i, starts[u], lengths[u])
    for i in range(q1 - q0):
        q = q0 + i
        # At millions of codes every access below is a cache miss. Asking for
        # the next query's buckets, and for the codes in this query's own
        # buckets (the only probes of a small radius), before reading any of
        # them overlaps the misses: about twice as fast at 10M codes.
        if i + 1 < q1 - q0:
            for u in range(n_tables):
                prefetch(offsets[u], _bucket(query_keys[i + 1, u], hash_bits))
        for u in range(n_tables):
            b = _bucket(query_keys[i, u], hash_bits)
            for t in range(offsets[u, b], offsets[u, b + 1]):
                prefetch(words, ids[u, t] * n_words)
        for u in range(n_tables):
            for flips in range(probe_radius[u] + 1):
                # Gosper's hack: every mask of `flips` bits among lengths[u].
                mask = (1 << flips) - 1
                # (2 ** 63 would overflow: a hashed substring has 63 bits.)
                while mask >> lengths[u] == 0:
                    key = query_keys[i, u] ^ mask
                    b = _bucket(key, hash_bits)
                    for t in range(offsets[u, b], offsets[u, b + 1]):
                        c = ids[u, t]
                        if hash_bits and _key(words, c, starts[u], lengths[u]) != key:
                            continue
                        seen = False
                        for v in range(u):
                            other = _key(words, c, starts[v], lengths[v])
                            if (
                                popcount(np.uint64(other ^ query_keys[i, v]))
                                <= (probe_radius[v])
                            ):
                                seen = True
                                break
                        if seen:
                            continue
                        d = 0
                        for w in range(n_words):
                            d += popcount(words[c, w] ^ query_words[q, w])
                        if d <= radius:
                            if n == capacity:
                                return i
                            found_ind[n] = c
                            found_dist[n] = d
                            n += 1
                    if mask == 0:
                        break
                    mask = _next_mask(mask)
        first = found_offsets[i]
        _sort_segment(found_ind, found_dist, first, n, n_codes if by_dist else 0)
        found_offsets[i + 1] = n
    return q1 - q0


@njit(cache=True, nogil=True)
def _knn_block(
    query_words, words, starts, lengths, offsets, ids,
    k, q0, q1, budget, dist, ind, left,
):  # fmt: skip
    """k nearest codes of queries q0..q1 by growing substring radii.

    Round ``rho`` probes every table at exactly ``rho`` flipped bits, table by
    table. A code not found after table ``u`` of round ``rho`` differs in more
    than ``rho`` bits on tables ``0..u`` and more than ``rho - 1`` on the
    others (pigeonhole), so its distance is at least the sum of those bounds;
    once the k-th smallest distance found is below it, every code that could
    rank among the k is found, ties included. A query whose work passes
    ``budget`` scanned words is marked in ``left`` for the scan instead.
    """
    n_codes, n_words = words.shape
    n_tables = len(lengths)
    n_bits = 64 * n_words
    query_keys = np.empty(n_tables, np.int64)
    hist = np.zeros(n_bits + 1, np.int64)
    capacity = 4 * k + 256
    cand_dist = np.empty(capacity, np.int64)
    cand_ind = np.empty(capacity, np.int64)
    for q in range(q0, q1):
        for u in range(n_tables):
            query_keys[u] = _key(query_words, q, starts[u], lengths[u])
        hist[:] = 0
        held = 0  # candidates in the buffer, all at distance <= threshold
        threshold = n_bits  # the k-th smallest distance once k are held
        at_most = 0  # candidates at distance <= threshold
        work = 0
        finished = False
        for rho in range(lengths.max() + 1):
            for u in range(n_tables):
                if rho > lengths[u]:
                    continue
                mask = (1 << rho) - 1
                while mask < (1 << lengths[u]):
                    key = query_keys[u] ^ mask
                    first, last = offsets[u, key], offsets[u, key + 1]
                    work += _KNN_ACCESS_COST * (1 + last - first)
                    # Every candidate is a cache miss: ask for them all first.
                    for t in range(first, last):
                        prefetch(words, ids[u, t] * n_words)
                    for t in range(first, last):
                        c = ids[u, t]
                        seen = False
                        for v in range(n_tables):
                            if v == u:
                                continue
                            other = _key(words, c, starts[v], lengths[v])
                            sd = popcount(np.uint64(other ^ query_keys[v]))
                            # Found before: at a lower round, or by an earlier
                            # table of this round.
                            if sd < rho or (v < u and sd == rho):
                                seen = True
                                break
                        if seen:
                            continue
                        d = 0
                        for w in range(n_words):
                            d += popcount(words[c, w] ^ query_words[q, w])
                        if at_most >= k and d > threshold:
                            continue
                        if held == capacity:
                            # Keep what can still rank; grow if that is most.
                            kept = 0
                            for e in range(held):
                                if cand_dist[e] <= threshold:
                                    cand_dist[kept] = cand_dist[e]
                                    cand_ind[kept] = cand_ind[e]
                                    kept += 1
                            held = kept
                            if held > capacity // 2:
                                capacity *= 2
                                cand_dist = grow(cand_dist, capacity)
                                cand_ind = grow(cand_ind, capacity)
                        cand_dist[held] = d
                        cand_ind[held] = c
                        held += 1
                        hist[d] += 1
                        at_most += 1
                        # Lower the threshold while k candidates stay at or
                        # below the next distance down.
                        while threshold > 0 and at_most - hist[threshold] >= k:
                            at_most -= hist[threshold]
                            threshold -= 1
                    if mask == 0:
                        break
                    mask = _next_mask(mask)
                if work > budget:
                    break
                # Distance of any code not found yet, at least; a table probed
                # to its whole length has found every code.
                bound = 0
                for v in range(n_tables):
                    probed = rho if v <= u else rho - 1
                    if probed >= lengths[v]:
                        bound = n_bits + 1
                        break
                    bound += probed + 1
                if at_most >= k and threshold < bound:
                    finished = True
                    break
            if finished or work > budget:
                break
        if not finished:
            left[q] = True
            continue
        # The k smallest (distance, index) among the held candidates.
        keys = np.empty(held, np.int64)
        n = 0
        for e in range(held):
            if cand_dist[e] <= threshold:
                keys[n] = cand_dist[e] * n_codes + cand_ind[e]
                n += 1
        keys = np.sort(keys[:n])
        for j in range(k):
            dist[q, j] = keys[j] // n_codes
            ind[q, j] = keys[j] % n_codes


def _saved_array(tables, key, dtype, shape):
    array = tables[key]
    if not isinstance(array, np.ndarray) or array.dtype != dtype:
        raise ValueError(f"{key} is not an array of dtype {np.dtype(dtype)}.")
    if array.shape != shape:
        raise ValueError(f"{key} has shape {array.shape}, not {shape}.")
    return array


def _is_permutation(ids):
    """Whether ids holds each of 0..len(ids)-1 once."""
    if len(ids) and (ids.min() < 0 or ids.max() >= len(ids)):
        return False
    seen = np.zeros(len(ids), bool)
    seen[ids] = True
    return bool(seen.all())


def probe_plan(radius, n_tables):
    """Probe radius of each table that must be searched (pigeonhole, see above)."""
    base, extra = divmod(radius, n_tables)
    plan = [base] * (extra + 1) + [base - 1] * (n_tables - extra - 1)
    return np.array([r for r in plan if r >= 0], np.int64)


class MultiIndex(SearchIndex):
    """Multi-index hash tables over a database of codes, built lazily.

    Tables not yet needed cost nothing. Searches from several threads are
    safe: a table is built under a lock and marked built only once complete.

    Parameters
    ----------
    codes : ndarray of shape (n_codes, n_bytes), dtype uint8
        The database (the words' padding bytes are not indexed).
    """

    #: Time of a multi-index k-nearest search over that of a radius search at
    #: the k-th distance: 1.6 to 2.4 measured (10^6 and 5 * 10^6 clustered
    #: 64-bit codes, k = 10; the candidates' checks cost more).
    knn_over_radius = 2.0
    #: Queries that decide whether a k-nearest search under "auto" uses the
    #: tables (see :meth:`prefers_scan` and :meth:`kneighbors_or_leave`).
    knn_sample = 32

    def __init__(self, codes, tables=None):
        if len(codes) >= 2**31:
            raise ValueError("multi-index hashing supports up to 2**31 - 1 codes.")
        super().__init__(codes)
        n_codes, n_bytes = codes.shape
        self.starts, self.lengths = layout(n_bytes, n_codes)
        n_tables, n_buckets = len(self.lengths), 2 ** int(self.lengths.max())
        # Rows are filled on first use; untouched rows are never paged in.
        self.offsets = np.empty((n_tables, n_buckets + 1), np.int32)
        self.ids = np.empty((n_tables, n_codes), np.int32)
        self.built = np.zeros(n_tables, bool)
        # Expected codes per bucket probe, from the first table (on first use).
        self.per_probe = None
        # The smallest k for which a sample of kNN queries found the scan
        # cheaper (see kneighbors_or_leave).
        self.scan_from_k = math.inf
        self._lock = threading.Lock()
        # A radius's own tables of hashed long substrings (radius_tables).
        self._hashed = {}
        # Tables mapped from files (map_tables), checked rather than built.
        self._mapped = False
        if tables is not None:
            self.restore(tables)

    def saved_tables(self):
        """What rebuilding would cost most to redo: the built tables, as arrays,
        with a digest of them and of the codes that :meth:`restore` checks."""
        offsets, ids = self.offsets[self.built], self.ids[self.built]
        return {
            "offsets": offsets,
            "ids": ids,
            "built": self.built.copy(),
            "per_probe": self.per_probe,
            "digest": digest(self.codes, self.built, offsets, ids),
        }

    def restore(self, tables):
        """Take back tables from :meth:`saved_tables`, or raise ValueError.

        They come from a file, which may be damaged or crafted: the kernels
        index with them unchecked, so every id must be a code, every table a
        permutation and its bucket offsets non-decreasing from 0 to the number
        of codes, which keeps every read in bounds whatever the file holds.
        The digest then tells tables saved with other codes, or altered since.
        """
        try:
            built = _saved_array(tables, "built", bool, self.built.shape)
            n_built = int(built.sum())
            n_codes, n_columns = len(self.codes), self.offsets.shape[1]
            offsets = _saved_array(tables, "offsets", np.int32, (n_built, n_columns))
            ids = _saved_array(tables, "ids", np.int32, (n_built, n_codes))
            per_probe = tables["per_probe"]
            if per_probe is not None and not (
                isinstance(per_probe, float) and 0 <= per_probe < math.inf
            ):
                raise ValueError(f"per_probe is {per_probe!r}.")
            for u, row, table in zip(np.flatnonzero(built), offsets, ids, strict=True):
                self._check_table(u, row, table)
            if tables["digest"] != digest(self.codes, built, offsets, ids):
                raise ValueError("their digest does not match them and the codes.")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                "The saved multi-index tables do not fit these codes "
                f"({error}); the file is damaged or was altered."
            ) from error
        self.offsets[built] = offsets
        self.ids[built] = ids
        self.built = built
        self.per_probe = per_probe

    def _check_table(self, u, row, table):
        """Raise ValueError unless table ``u`` (its bucket offsets ``row`` and
        its ``table`` of ids) keeps every read of the kernels in bounds."""
        n_buckets, n_codes = 2 ** int(self.lengths[u]), len(self.codes)
        if row[0] != 0 or (row[n_buckets:] != n_codes).any():
            raise ValueError(f"table {u} does not span the codes.")
        if row.min() < 0 or (np.diff(row[: n_buckets + 1]) < 0).any():
            raise ValueError(f"table {u} has decreasing bucket offsets.")
        if not _is_permutation(table):
            raise ValueError(f"table {u} is not a permutation of the codes.")

    def map_tables(self, offsets, ids, per_probe=None):
        """Use every table from arrays mapped from files, in place, or raise
        ValueError for arrays of the wrong shape or dtype.

        Nothing is read now. Each table is checked on its first use, where it
        would otherwise be built, every table at once: each must be the table
        a build gives (see ``_tables.tables_match``: sequential passes over
        the codes and the tables), and one that differs raises ValueError
        there. The kernels never read a table unchecked, and a checked one
        answers as a built one.
        """
        tables = {"offsets": offsets, "ids": ids}
        for name in tables:
            expected = getattr(self, name).shape
            if not _saved_array(tables, name, np.int32, expected).flags.c_contiguous:
                raise ValueError(f"{name} is not C-contiguous.")
        if per_probe is not None and not (
            isinstance(per_probe, float) and 0 <= per_probe < math.inf
        ):
            raise ValueError(f"per_probe is {per_probe!r}.")
        self.offsets, self.ids = offsets, ids
        self.built[:] = False
        self.per_probe = per_probe
        self._mapped = True

    @property
    def has_tables(self):
        """Whether every table is there without building it: built, or
        mapped from files (and checked, not built, on first use)."""
        return self._mapped or bool(self.built.all())

    @property
    def n_tables(self):
        return len(self.lengths)

    def probe_plan(self, radius):
        """Probe radius of each table to search (see :func:`probe_plan`).

        A table probed to its full substring length already meets every
        code: a larger probe radius would enumerate masks past the substring
        (and shifts past 63 bits wrap around), repeating buckets.
        """
        plan = probe_plan(radius, self.n_tables)
        return np.minimum(plan, self.lengths[: len(plan)])

    def _ensure_tables(self, n_tables, n_jobs=1):
        if self.built[:n_tables].all():
            return
        self.warm_up()
        with self._lock:
            # Another thread may have done it while this one waited.
            missing = np.flatnonzero(~self.built[:n_tables]).tolist()
            if not missing:
                return
            if self._mapped:
                # One pass over the codes checks every table: all at once.
                self._check_mapped(np.flatnonzero(~self.built), n_jobs)
                return
            # Tables are independent: one a thread (the kernels free the GIL).
            run_blocks(self._build, [(u, u + 1) for u in missing], n_jobs)
            self.built[missing] = True

    def _build(self, u, _):
        start, length = self.starts[u], self.lengths[u]
        build_table(self.words, start, length, self.offsets[u], self.ids[u])

    def _check_mapped(self, tables, n_jobs):
        matches = tables_match(
            self.words, self.starts, self.lengths, self.offsets, self.ids,
            tables, n_jobs,
        )  # fmt: skip
        if not matches.all():
            files = f"{mapped_path(self.offsets)} and {mapped_path(self.ids)}"
            raise ValueError(
                f"The multi-index tables mapped from {files} do not fit the "
                f"codes (table {tables[np.argmin(matches)]} is not the one they "
                "give); the saved index is damaged or was altered."
            )
        self.built[tables] = True

    def _first_table_per_probe(self, n_jobs=1):
        """Expected codes in a probed bucket of the first table, built (or
        its mapped tables checked) on ``n_jobs`` threads if need be."""
        if self.per_probe is None:
            self._ensure_tables(1, n_jobs)
            self.per_probe = self._codes_per_probe(self.offsets[0])
        return self.per_probe

    def crowded(self, n_jobs=1):
        """Whether the first table's buckets hold more than twice what those
        of uniform random codes would: codes that share short substrings
        without being near, as clustered ones do. Only then do a radius's
        long substrings pay (:meth:`radius_tables`); on uniform codes they
        meet as many codes, at the cost of a hash."""
        uniform = 1 + len(self.codes) / 2 ** int(self.lengths[0])
        return self._first_table_per_probe(n_jobs) > 2 * uniform

    def _codes_per_probe(self, offsets):
        """Expected codes in a probed bucket of the first table, given its
        bucket offsets (see :meth:`estimated_cost`)."""
        sizes = np.diff(offsets[: 2 ** int(self.lengths[0]) + 1]).astype(np.float64)
        return float(np.dot(sizes, sizes)) / max(1, len(self.codes))

    def complete(self, n_jobs=1):
        """Build every table now (or check it, when mapped from a file)."""
        self._ensure_tables(self.n_tables, n_jobs)

    def write_tables(self, ids, n_jobs=1):
        """Every table into ``ids``, an array of this index's shape of ids
        (mapped from a file to save them), and their bucket offsets returned.

        Tables built already are copied; the others are built straight into
        ``ids`` in passes of bounded memory (``_tables.FILE_BUILD_BUDGET``),
        and not kept: a database whose tables outgrow memory gets them on
        disk, to be mapped (see :meth:`map_tables`).
        """
        offsets = np.empty_like(self.offsets)

        def write(u, _):
            start, length = self.starts[u], self.lengths[u]
            if self.built[u]:
                offsets[u], ids[u] = self.offsets[u], self.ids[u]
            else:
                build_table(
                    self.words, start, length, offsets[u], ids[u],
                    budget=FILE_BUILD_BUDGET,
                )  # fmt: skip

        self.warm_up()
        with self._lock:
            run_blocks(write, [(u, u + 1) for u in range(self.n_tables)], n_jobs)
            if self.per_probe is None:
                self.per_probe = self._codes_per_probe(offsets[0])
        return offsets

    def estimated_cost(self, radius, n_jobs=1):
        """(multi-index cost, scan cost) of one query, in scanned words.

        Candidates are estimated from the first table's buckets: a query like
        the database codes meets ``sum(bucket_size ** 2) / n_codes`` codes per
        probe, so skewed (clustered) codes count as the expensive case they are.
        Building that table (or checking mapped ones) uses ``n_jobs`` threads.
        """
        n_codes, n_words = self.words.shape
        per_probe = self._first_table_per_probe(n_jobs)
        probes = sum(
            sum(math.comb(int(self.lengths[u]), t) for t in range(r + 1))
            for u, r in enumerate(self.probe_plan(radius))
        )
        cost = _RANDOM_ACCESS_COST * (probes + probes * per_probe) + probes * (
            per_probe * n_words
        )
        return cost, float(n_codes * n_words)

    def cheaper_than_scan(self, radius, n_jobs=1):
        """The automatic rule: whether the estimated cost is under a scan's.

        Cost is counted in scanned words: a scan reads ``n_codes * n_words``;
        the multi-index search pays ``64`` per bucket probe and per candidate
        (random memory accesses) plus the candidate's words, with probes
        counted exactly from the probe plan and candidates estimated from the
        bucket occupancy.
        """
        multi_index_cost, scan_cost = self.estimated_cost(radius, n_jobs)
        return multi_index_cost < scan_cost

    def knn_cost(self, kth_distance):
        """Estimated cost of a k-nearest query whose k-th neighbour is at
        ``kth_distance``, in scanned words: it probes the buckets of a radius
        search at that distance, each candidate costing more
        (:attr:`knn_over_radius`). Needs only the first table."""
        return self.knn_over_radius * self.estimated_cost(kth_distance)[0]

    def prefers_scan(self, kth_distances, k):
        """The automatic rule for k nearest before the tables are built (they
        can take more memory than the database): whether more than a quarter
        of a sample of queries, whose k-th distances a scan found, would cost
        the index more than a scan. A yes holds for later searches with as
        large a ``k``."""
        scan_cost = self.scan_cost()
        distances, counts = np.unique(kth_distances, return_counts=True)
        costly = sum(
            int(n)
            for d, n in zip(distances, counts, strict=True)
            if self.knn_cost(int(d)) > scan_cost
        )
        if costly > 0.25 * len(kth_distances):
            self.scan_from_k = min(self.scan_from_k, k)
        return k >= self.scan_from_k

    def kneighbors(self, queries, k, *, n_jobs):
        distances, indices, _ = self.kneighbors_or_leave(
            queries, k, n_jobs=n_jobs, budget=math.inf
        )
        return distances, indices

    def kneighbors_or_leave(self, queries, k, *, n_jobs, budget):
        """k nearest codes of the queries that cost at most ``budget`` each.

        ``budget`` is in scanned words (a scan costs ``n_codes * n_words`` per
        query). Returns distances, indices and a mask of the queries left
        undone; their rows hold nothing. With a finite budget, the first
        queries serve as a sample: when more than a quarter of them are left,
        the search stops there and leaves the rest too, so codes that suit the
        scan (uniform ones, a large ``k``) lose little to the attempt; later
        calls with this ``k`` or a larger one leave every query at once.
        """
        query_words = self.query_words(queries)
        n_queries = len(query_words)
        distances = np.empty((n_queries, k), np.int32)
        indices = np.empty((n_queries, k), np.int64)
        left = np.zeros(n_queries, bool)
        if math.isfinite(budget) and k >= self.scan_from_k:
            # An earlier sample chose the scan: no table is needed.
            left[:] = True
            return distances, indices.astype(np.intp, copy=False), left
        self._ensure_tables(self.n_tables, n_jobs)

        def search(q0, q1):
            _knn_block(
                query_words, self.words, self.starts, self.lengths, self.offsets,
                self.ids, k, q0, q1, float(budget), distances,
                indices, left,
            )  # fmt: skip

        start = 0
        if math.isfinite(budget):
            start = min(n_queries, self.knn_sample)
            search(0, start)
            if left[:start].mean() > 0.25:
                self.scan_from_k = min(self.scan_from_k, k)
                left[start:] = True
                return distances, indices.astype(np.intp, copy=False), left
        n_threads = max(1, min(n_jobs, (n_queries - start) // _KNN_PER_THREAD))
        blocks = query_blocks(n_queries - start, n_threads, largest=n_queries)
        run_blocks(lambda q0, q1: search(start + q0, start + q1), blocks, n_jobs)
        return distances, indices.astype(np.intp, copy=False), left

    def scan_cost(self):
        """A scan's cost per query, in scanned words: the budget of ``auto``."""
        return float(self.words.shape[0] * self.words.shape[1])

    def radius_tables(self, radius, n_jobs=1):
        """(starts, lengths, probe plan, offsets, ids, hash bits) of the
        tables that a radius search probes.

        Below ``n_tables - 1``, a radius probes ``radius + 1`` tables exactly,
        and so can tables of its own: ``radius + 1`` longer substrings hashed
        into as many buckets (``_tables.hashed_layout``). On clustered codes,
        whose short substrings many unrelated codes share, these meet far
        fewer candidates (2.8 to 12 times faster queries in
        ``benchmarks/results/radius_tables.md``); on uniform random codes as
        many, at a hash's cost: they are used where the first table is
        :meth:`crowded`. They are built in memory once per radius
        and never saved; tables mapped from files are used as they are,
        since building more would read the whole database.
        """
        plan = self.probe_plan(radius)
        short = self._mapped or radius + 1 >= self.n_tables
        if short or not self.crowded(n_jobs):
            self._ensure_tables(len(plan), n_jobs)
            return self.starts, self.lengths, plan, self.offsets, self.ids, 0
        with self._lock:
            if radius not in self._hashed:
                self._hashed[radius] = self._build_hashed(radius, n_jobs)
            return self._hashed[radius]

    def _build_hashed(self, radius, n_jobs):
        self.warm_up()
        starts, lengths = hashed_layout(self.codes.shape[1], radius)
        hash_bits = int(self.lengths.max())
        offsets = np.empty((radius + 1, 2**hash_bits + 1), np.int32)
        ids = np.empty((radius + 1, len(self.codes)), np.int32)

        def build(u, _):
            build_table(
                self.words, starts[u], lengths[u], offsets[u], ids[u],
                hash_bits=hash_bits,
            )  # fmt: skip

        run_blocks(build, [(u, u + 1) for u in range(radius + 1)], n_jobs)
        return starts, lengths, np.zeros(radius + 1, np.int64), offsets, ids, hash_bits

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        starts, lengths, plan, offsets, ids, hash_bits = self.radius_tables(
            radius, n_jobs
        )
        query_words = self.query_words(queries)

        def search(q0, q1):
            parts, capacity = [], 4 * (q1 - q0) + 1024
            while q0 < q1:
                found_ind = np.empty(capacity, np.int64)
                found_dist = np.empty(capacity, np.int32)
                found_offsets = np.empty(q1 - q0 + 1, np.int64)
                done = _search_block(
                    query_words, self.words, starts, lengths, plan,
                    offsets, ids, hash_bits, radius, q0, q1, by_dist,
                    found_ind, found_dist, found_offsets,
                )  # fmt: skip
                if done:
                    parts.append((found_ind, found_dist, found_offsets[: done + 1]))
                q0 += done
                capacity *= 2
            return parts

        # No scan to share: blocks as large as the threads allow, but a pool
        # thread costs ~0.1 ms to wake, the work of hundreds of small-radius
        # queries: below 2048 queries a thread, one thread was faster.
        n_threads = max(1, min(n_jobs, len(query_words) // _QUERIES_PER_THREAD))
        blocks = query_blocks(len(query_words), n_threads, largest=len(query_words))
        parts = [part for block in run_blocks(search, blocks, n_jobs) for part in block]
        return join_blocks(parts)

    @classmethod
    def warm_up(cls):
        compile_once("multi_index", _search_block, _first_calls)
        compile_once("multi_index_knn", _knn_block, _first_knn_call)


def _first_tables(words):
    starts, lengths = layout(1, len(words))
    offsets = np.empty((len(lengths), 2 ** int(lengths.max()) + 1), np.int32)
    ids = np.empty((len(lengths), len(words)), np.int32)
    for u in range(len(lengths)):
        build_table(words, starts[u], lengths[u], offsets[u], ids[u])
    tables_match(words, starts, lengths, offsets, ids, range(len(lengths)))
    return starts, lengths, offsets, ids


def _database_kinds():
    """(query words, database words) of each kind numba compiles apart: a
    database mapped read-only (``mmap_mode="r"``) has read-only words, and so
    do its queries when it queries itself."""
    words = np.zeros((4, 1), np.uint64)
    mapped = read_only(words)
    return [(words, words), (words, mapped), (mapped, mapped)]


def _first_calls():
    for query_words, words in _database_kinds():
        starts, lengths, offsets, ids = _first_tables(words)
        plan = probe_plan(1, len(lengths))
        for by_dist in (False, True):
            _search_block(
                query_words, words, starts, lengths, plan, offsets, ids, 0,
                1, 0, 4, by_dist,
                np.empty(8, np.int64), np.empty(8, np.int32), np.empty(5, np.int64),
            )  # fmt: skip


def _first_knn_call():
    for query_words, words in _database_kinds():
        starts, lengths, offsets, ids = _first_tables(words)
        _knn_block(
            query_words, words, starts, lengths, offsets, ids, 1, 0, 4, np.inf,
            np.empty((4, 1), np.int32), np.empty((4, 1), np.int64), np.zeros(4, bool),
        )  # fmt: skip
