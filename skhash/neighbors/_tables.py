"""The tables of multi-index hashing: codes bucketed by one substring.

A table is a pair of arrays: ``ids[offsets[b]:offsets[b + 1]]`` are the rows of
the codes whose substring is ``b``, ascending. It is the result of a stable
counting sort, so it is a function of the codes alone, and that gives both
of what a table larger than memory needs:

- **building in passes.** Counting the buckets gives every code's position;
  a pass over the codes then writes only the positions of one range, so the
  ids can be built range by range in a buffer of bounded size and written in
  order to a file (``build_table``), whatever the number of codes;
- **checking by building again.** A table read from a file is correct exactly
  when a pass over the codes finds each row at the position a build would
  give it (``table_matches``): sequential reads of the codes and the ids,
  no id used as an index, no memory beyond the bucket counters.
"""

import math

import numpy as np
from numba import njit

# Longest substring: its table has 2 ** bits buckets.
MAX_SUBSTRING_BITS = 28
# Bytes of ids that one pass of a build into a file fills: each pass reads
# every code, so 1 GiB makes 4 passes of a table of 10^9 codes.
FILE_BUILD_BUDGET = 2**30


def layout(n_bytes, n_codes):
    """(starts, lengths) of the substrings of codes of ``n_bytes`` bytes:
    ``8 * n_bytes`` bits cut into tables of about ``log2(n_codes)`` bits."""
    n_bits = 8 * n_bytes
    bits_per_table = max(1, min(MAX_SUBSTRING_BITS, int(math.log2(max(2, n_codes)))))
    n_tables = -(-n_bits // bits_per_table)
    lengths = np.full(n_tables, n_bits // n_tables, np.int64)
    lengths[: n_bits % n_tables] += 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return starts, lengths


@njit(cache=True, nogil=True)
def key(words, row, start, length):
    """Bits start..start+length of a code, as an integer."""
    w, shift = start // 64, start % 64
    bits = words[row, w] >> np.uint64(shift)
    if shift + length > 64:
        bits |= words[row, w + 1] << np.uint64(64 - shift)
    return np.int64(bits & np.uint64((1 << length) - 1))


@njit(cache=True, nogil=True)
def count_buckets(words, start, length, offsets):
    """Bucket offsets of one substring into ``offsets`` (2 ** length + 1)."""
    offsets[:] = 0
    for j in range(words.shape[0]):
        offsets[key(words, j, start, length) + 1] += 1
    for b in range(1, len(offsets)):
        offsets[b] += offsets[b - 1]


@njit(cache=True, nogil=True)
def fill_range(words, start, length, offsets, first, ids):
    """The ids at positions ``first .. first + len(ids)`` of the table whose
    bucket offsets are given (a stable counting sort, restricted)."""
    fill = offsets[:-1].copy()
    last = first + len(ids)
    for j in range(words.shape[0]):
        b = key(words, j, start, length)
        position = fill[b]
        fill[b] += 1
        if first <= position < last:
            ids[position - first] = j


@njit(cache=True, nogil=True)
def _ids_match(words, start, length, offsets, ids):
    """Whether ``ids`` holds each code where a build would put it; the
    offsets are the codes' own, so every position read is in bounds."""
    fill = offsets[:-1].copy()
    for j in range(words.shape[0]):
        b = key(words, j, start, length)
        if ids[fill[b]] != j:
            return False
        fill[b] += 1
    return True


def _row_offsets(words, start, length, n_columns):
    """Bucket offsets of one table, padded with the number of codes to the
    width of the longest substring's."""
    offsets = np.empty(n_columns, np.int32)
    n_buckets = 2 ** int(length)
    offsets[n_buckets + 1 :] = len(words)
    count_buckets(words, start, length, offsets[: n_buckets + 1])
    return offsets


def build_table(words, start, length, offsets, ids, *, budget=None):
    """Build one table into ``offsets`` and ``ids``, which may be mapped from
    a file: in one pass when ``ids`` is in memory (``budget=None``), else in
    passes that each fill a buffer of at most ``budget`` bytes and write it in
    order, so memory stays bounded whatever the number of codes."""
    offsets[:] = _row_offsets(words, start, length, len(offsets))
    if budget is None:
        fill_range(words, start, length, offsets, 0, ids)
        return
    per_pass = max(1, budget // ids.itemsize)
    buffer = np.empty(min(per_pass, len(ids)), ids.dtype)
    for first in range(0, len(ids), per_pass):
        part = buffer[: min(per_pass, len(ids) - first)]
        fill_range(words, start, length, offsets, first, part)
        ids[first : first + len(part)] = part


def table_matches(words, start, length, offsets, ids):
    """Whether ``offsets`` and ``ids`` (of the shapes a table of these codes
    has, read from anywhere) are exactly the table a build would give."""
    expected = _row_offsets(words, start, length, len(offsets))
    return np.array_equal(offsets, expected) and _ids_match(
        words, start, length, expected, ids
    )
