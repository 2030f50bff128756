"""The tables of multi-index hashing: codes bucketed by one substring.

A table is a pair of arrays: ``ids[offsets[b]:offsets[b + 1]]`` are the rows of
the codes whose substring is ``b``, ascending. It is the result of a stable
counting sort, so it is a function of the codes alone, and that gives both
of what a table larger than memory needs:

- **building in passes.** Counting the buckets gives every code's position;
  a pass over the codes then writes only the positions of one range, so the
  ids can be built range by range in a buffer of bounded size and written in
  order to a file (``build_table``), whatever the number of codes;
- **checking in sequential passes.** A table read from a file is the codes'
  own when its buckets are ascending and it holds the same (row, bucket)
  pairs as the codes, which fingerprints of both compare without reading a
  code at a table's id (``tables_match``): sequential reads of the codes
  and the table, no id used as an index, no memory.
"""

import math
import secrets

import numpy as np
from numba import njit

from ._threads import query_blocks, run_blocks

# Longest substring: its table has 2 ** bits buckets.
MAX_SUBSTRING_BITS = 28
# Longest hashed substring (see ``hashed_layout``): one int64 key.
MAX_HASHED_BITS = 63
# Fibonacci hashing: the top bits of ``key * 2^64 / phi`` spread keys longer
# than a table's bucket bits evenly over its buckets.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ALL_BITS = np.uint64(2**64 - 1)
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


def hashed_layout(n_bytes, radius):
    """(starts, lengths) of the ``radius + 1`` substrings of a radius search
    whose tables hash their keys: disjoint, as long as the bits allow (at
    most 63 bits each). Two codes within ``radius`` agree exactly on one of
    them (pigeonhole; the substrings need not cover the code), and a long
    substring is shared by far fewer unrelated codes than a short one."""
    n_bits = 8 * n_bytes
    length = min(MAX_HASHED_BITS, n_bits // (radius + 1))
    lengths = np.full(radius + 1, length, np.int64)
    return np.arange(radius + 1, dtype=np.int64) * length, lengths


@njit(cache=True, nogil=True, inline="always")
def bucket(key, hash_bits):
    """The bucket of a substring's ``key`` in a table: the key itself, or for
    a hashed table (``hash_bits > 0``) its hash on ``hash_bits`` bits."""
    if hash_bits == 0:
        return key
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - hash_bits))


@njit(cache=True, nogil=True)
def key(words, row, start, length):
    """Bits start..start+length of a code, as an integer."""
    w, shift = start // 64, start % 64
    bits = words[row, w] >> np.uint64(shift)
    if shift + length > 64:
        bits |= words[row, w + 1] << np.uint64(64 - shift)
    return np.int64(bits & (_ALL_BITS >> np.uint64(64 - length)))


@njit(cache=True, nogil=True)
def count_buckets(words, start, length, offsets, hash_bits):
    """Bucket offsets of one substring into ``offsets`` (2 ** length + 1, or
    2 ** hash_bits + 1 for a hashed table: see :func:`bucket`)."""
    offsets[:] = 0
    for j in range(words.shape[0]):
        offsets[bucket(key(words, j, start, length), hash_bits) + 1] += 1
    for b in range(1, len(offsets)):
        offsets[b] += offsets[b - 1]


@njit(cache=True, nogil=True)
def fill_range(words, start, length, offsets, first, ids, hash_bits):
    """The ids at positions ``first .. first + len(ids)`` of the table whose
    bucket offsets are given (a stable counting sort, restricted)."""
    fill = offsets[:-1].copy()
    last = first + len(ids)
    for j in range(words.shape[0]):
        b = bucket(key(words, j, start, length), hash_bits)
        position = fill[b]
        fill[b] += 1
        if first <= position < last:
            ids[position - first] = j


# Fingerprints are polynomials over the integers modulo this prime (2^61 - 1,
# a Mersenne prime: a product of two residues is reduced with shifts).
_PRIME = np.uint64(2**61 - 1)
_LOW_32 = np.uint64(2**32 - 1)
_LOW_29 = np.uint64(2**29 - 1)


@njit(cache=True, nogil=True, inline="always")
def _times(a, b):
    """a * b modulo _PRIME, for residues a and b, in 64-bit words."""
    a_high, a_low = a >> np.uint64(32), a & _LOW_32
    b_high, b_low = b >> np.uint64(32), b & _LOW_32
    # a * b = high * 2^64 + middle * 2^32 + low, and 2^61 = 1 modulo _PRIME.
    high = a_high * b_high
    middle = a_high * b_low + a_low * b_high
    low = a_low * b_low
    r = (high << np.uint64(3)) + (middle >> np.uint64(29))
    r += (middle & _LOW_29) << np.uint64(32)
    r += (low >> np.uint64(61)) + (low & _PRIME)
    r = (r >> np.uint64(61)) + (r & _PRIME)
    r = (r >> np.uint64(61)) + (r & _PRIME)
    return r - _PRIME if r >= _PRIME else r


@njit(cache=True, nogil=True, inline="always")
def _factor(point, row, bucket, length):
    """point - (row, bucket) modulo _PRIME, the pair written as one integer
    below 2^59 (rows below 2^31, buckets below 2^28)."""
    pair = (np.uint64(row) << np.uint64(length)) | np.uint64(bucket)
    return point - pair if point >= pair else point + (_PRIME - pair)


@njit(cache=True, nogil=True)
def _codes_fingerprints(words, starts, lengths, point, first, last):
    """For each table, the product over rows first..last of
    (point - (row, the row's bucket)): one pass over the codes for all."""
    products = np.ones(len(starts), np.uint64)
    for j in range(first, last):
        # The tables' products are independent: their multiplications overlap.
        for u in range(len(starts)):
            bucket = key(words, j, starts[u], lengths[u])
            products[u] = _times(products[u], _factor(point, j, bucket, lengths[u]))
    return products


@njit(cache=True, nogil=True)
def _table_fingerprint(offsets, ids, length, point, first, last):
    """The product over buckets first..last of a table of (point - (id,
    bucket)), or _PRIME (never a product) when an id is not a row or the ids
    of a bucket are not ascending. The offsets are in order from 0 to
    len(ids): every read is in bounds."""
    n_codes = len(ids)
    p0 = p1 = np.uint64(1)
    for b in range(first, last):
        previous = -1
        for t in range(offsets[b], offsets[b + 1]):
            row = ids[t]
            if row <= previous or row >= n_codes:
                return _PRIME
            previous = row
            # Two running products, so that multiplications overlap.
            if t & 1:
                p1 = _times(p1, _factor(point, row, b, length))
            else:
                p0 = _times(p0, _factor(point, row, b, length))
    return _times(p0, p1)


def _row_offsets(words, start, length, n_columns, hash_bits):
    """Bucket offsets of one table, padded with the number of codes to the
    width of the longest substring's."""
    offsets = np.empty(n_columns, np.int32)
    n_buckets = 2 ** int(hash_bits or length)
    offsets[n_buckets + 1 :] = len(words)
    count_buckets(words, start, length, offsets[: n_buckets + 1], hash_bits)
    return offsets


def build_table(words, start, length, offsets, ids, *, budget=None, hash_bits=0):
    """Build one table into ``offsets`` and ``ids``, which may be mapped from
    a file: in one pass when ``ids`` is in memory (``budget=None``), else in
    passes that each fill a buffer of at most ``budget`` bytes and write it in
    order, so memory stays bounded whatever the number of codes. With
    ``hash_bits``, the buckets are the substrings' hashes (:func:`bucket`)."""
    offsets[:] = _row_offsets(words, start, length, len(offsets), hash_bits)
    if budget is None:
        fill_range(words, start, length, offsets, 0, ids, hash_bits)
        return
    per_pass = max(1, budget // ids.itemsize)
    buffer = np.empty(min(per_pass, len(ids)), ids.dtype)
    for first in range(0, len(ids), per_pass):
        part = buffer[: min(per_pass, len(ids) - first)]
        fill_range(words, start, length, offsets, first, part, hash_bits)
        ids[first : first + len(part)] = part


def tables_match(words, starts, lengths, offsets, ids, tables, n_jobs=1):
    """Whether each of ``tables`` (rows of ``offsets`` and ``ids``, of the
    shapes the tables of these codes have, read from anywhere) is the table a
    build gives: a boolean per table listed.

    A table's offsets must be in order from 0 to the number of codes, each
    bucket's ids ascending rows, and its pairs (id, bucket) the same set as
    the codes' pairs (row, bucket of the code's substring): that is the table
    of a stable sort. The sets are compared without reading a code at a
    table's id (random reads, slow from a file), by fingerprints: the
    products of ``(z - pair)`` over each set modulo a prime near 2^61, at a
    point ``z`` drawn at random for each check. Equal sets give equal
    products; different ones are polynomials in ``z`` that agree at most at
    ``n_codes`` points, so a wrong table passes with probability below
    ``n_codes / 2^61`` (4e-10 for 10^9 codes), whoever wrote it. One pass
    over the codes serves every table; the codes and the tables are cut into
    ranges for ``n_jobs`` threads (a product is the product of theirs).
    """
    n_codes, prime = len(words), int(_PRIME)
    point = np.uint64(secrets.randbelow(prime))
    tables = list(tables)

    def product(parts):
        result = 1
        for part in parts:
            if part == _PRIME:  # never a product: a table's id was wrong
                return None
            result = result * int(part) % prime
        return result

    by_rows = run_blocks(
        lambda r0, r1: _codes_fingerprints(
            words, starts[tables], lengths[tables], point, r0, r1
        ),
        query_blocks(n_codes, 4 * n_jobs, largest=n_codes), n_jobs,
    )  # fmt: skip
    matches = []
    for i, u in enumerate(tables):
        n_buckets, row = 2 ** int(lengths[u]), offsets[u]
        in_order = row[0] == 0 and (row[n_buckets:] == n_codes).all()
        if not in_order or (np.diff(row[: n_buckets + 1]) < 0).any():
            matches.append(False)
            continue
        by_buckets = run_blocks(
            lambda b0, b1, u=u: _table_fingerprint(
                offsets[u], ids[u], lengths[u], point, b0, b1
            ),
            query_blocks(n_buckets, 4 * n_jobs, largest=n_buckets), n_jobs,
        )  # fmt: skip
        table = product(by_buckets)
        matches.append(table is not None and table == product(p[i] for p in by_rows))
    return np.array(matches, bool)
