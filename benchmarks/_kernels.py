"""Kernels for the benchmark only: the hardware limit of a Hamming scan.

:func:`popcount_sum` times the popcount throughput of a core on L1-resident
chunks; :func:`popcount_compare` the per-pair work of the one-word kNN scan's
loop with no selection. ``bench_search.py`` reports skhash's scan against them.
"""

import numpy as np
from numba import njit

from skhash.neighbors._numba_common import chunk_size, popcount, rarely


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
                    total += popcount(row[j])
    return total


@njit(cache=True, nogil=True)
def popcount_compare(database_t, start, stop, repeats, bound):
    """Codes start..stop within ``bound`` of four fixed words, by the loop of
    the one-word kNN scan: the per-pair work of that scan, with no selection.

    With a ``bound`` no code meets this times the four XOR, popcount and
    compare per word; each L1-sized chunk is scanned ``repeats`` times.
    Returns how many codes met the bound (found codes are noted in a small
    ring, which keeps the branches as branches, as in the scan).
    """
    found = 0
    noted = np.empty(64, np.int64)
    row_all = database_t[0]
    w0, w1, w2, w3 = row_all[0], row_all[1], row_all[2], row_all[3]
    chunk = chunk_size(1)
    for c0 in range(start, stop, chunk):
        row = row_all[c0 : min(c0 + chunk, stop)]
        for _ in range(repeats):
            for j in range(len(row)):
                x = row[j]
                if rarely(popcount(x ^ w0) <= bound):
                    noted[found & 63] = j
                    found += 1
                if rarely(popcount(x ^ w1) <= bound):
                    noted[found & 63] = j
                    found += 1
                if rarely(popcount(x ^ w2) <= bound):
                    noted[found & 63] = j
                    found += 1
                if rarely(popcount(x ^ w3) <= bound):
                    noted[found & 63] = j
                    found += 1
    return found
