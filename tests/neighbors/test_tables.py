"""Multi-index tables: built in passes of bounded memory they equal the tables
built in one, out of core they equal those built in memory, and a table is
accepted only when it is exactly the one the codes give."""

import numpy as np
import pytest

from skhash import HammingNeighbors
from skhash.codes import as_words
from skhash.neighbors import _multi_index, _tables, load_index, save_index


def _clustered(n_codes, n_bytes=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (30, n_bytes), np.uint8)
    flips = np.packbits(rng.random((n_codes, 8 * n_bytes)) < 0.05, axis=1)
    return centres[rng.integers(0, 30, n_codes)] ^ flips[:, :n_bytes]


def _slow_table(codes, start, length):
    """The table by its definition: rows sorted by (substring, row)."""
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, start : start + length]
    keys = bits.astype(np.int64) @ (1 << np.arange(length, dtype=np.int64))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=2**length))])
    return offsets, np.argsort(keys, kind="stable")


def test_fingerprint_arithmetic_is_modulo_the_prime():
    # Python's integers are the oracle for the 64-bit-word products.
    prime = 2**61 - 1
    rng = np.random.default_rng(0)
    edges = [0, 1, 2, 2**29, 2**32 - 1, 2**32, 2**60, prime - 2, prime - 1]
    values = edges + [int(v) for v in rng.integers(0, prime, 500)]
    for a in values:
        for b in values[::7]:
            assert int(_tables._times(np.uint64(a), np.uint64(b))) == a * b % prime
    for _ in range(500):
        point, row, bucket = (int(rng.integers(0, m)) for m in (prime, 2**31, 2**28))
        factor = _tables._factor(np.uint64(point), row, bucket, 28)
        assert int(factor) == (point - (row << 28 | bucket)) % prime


@pytest.mark.parametrize("n_bytes", [1, 5, 8, 16])
def test_a_table_is_the_codes_sorted_by_substring(n_bytes):
    codes = _clustered(3000, n_bytes, seed=n_bytes)
    words = as_words(codes)
    starts, lengths = _tables.layout(n_bytes, len(codes))
    for start, length in zip(starts, lengths, strict=True):
        offsets = np.empty(2 ** int(length) + 1, np.int32)
        ids = np.empty(len(codes), np.int32)
        _tables.build_table(words, start, length, offsets, ids)
        want_offsets, want_ids = _slow_table(codes, int(start), int(length))
        np.testing.assert_array_equal(offsets, want_offsets)
        np.testing.assert_array_equal(ids, want_ids)


@pytest.mark.parametrize("budget", [4, 400, 4004, 12_000, 10**6])
def test_building_in_passes_gives_the_same_table(budget, monkeypatch):
    codes = _clustered(2999)
    words = as_words(codes)
    offsets, ids = np.empty(2**11 + 1, np.int32), np.empty(len(codes), np.int32)
    _tables.build_table(words, 3, 11, offsets, ids)
    filled = []
    fill = _tables.fill_range

    def counted_fill(words, start, length, offsets, first, part, hash_bits):
        filled.append(len(part))
        fill(words, start, length, offsets, first, part, hash_bits)

    monkeypatch.setattr(_tables, "fill_range", counted_fill)
    in_passes = np.full_like(ids, -1)
    passed_offsets = np.empty_like(offsets)
    _tables.build_table(words, 3, 11, passed_offsets, in_passes, budget=budget)
    np.testing.assert_array_equal(passed_offsets, offsets)
    np.testing.assert_array_equal(in_passes, ids)
    # Each pass fills at most the budget, and the passes cover the table once.
    assert max(filled) * 4 <= max(budget, 4)
    assert sum(filled) == len(codes)
    assert len(filled) == -(-len(codes) * 4 // budget)


def _matches(words, start, length, offsets, ids):
    """tables_match on one table."""
    (match,) = _tables.tables_match(
        words, np.array([start]), np.array([length]), offsets[None], ids[None], [0]
    )
    return match


def test_only_the_codes_own_table_matches():
    codes = _clustered(2000)
    words = as_words(codes)
    offsets, ids = np.empty(2**10 + 1, np.int32), np.empty(len(codes), np.int32)
    _tables.build_table(words, 20, 10, offsets, ids)
    for _ in range(5):  # a new random point each time
        assert _matches(words, 20, 10, offsets, ids)
    first, last = ids[0], ids[-1]
    swapped = ids.copy()
    swapped[[0, -1]] = last, first  # a permutation, offsets untouched
    assert not _matches(words, 20, 10, offsets, swapped)
    unsorted = ids.copy()
    bucket = np.flatnonzero(np.diff(offsets) >= 2)[0]
    a = offsets[bucket]
    unsorted[[a, a + 1]] = unsorted[[a + 1, a]]  # right bucket, wrong order
    assert not _matches(words, 20, 10, offsets, unsorted)
    moved = offsets.copy()
    moved[bucket + 1] += 1  # a code counted in the wrong bucket
    assert not _matches(words, 20, 10, moved, ids)
    for wrong in (10**9, -5, 2000):  # never used as an index: just not rows
        far = ids.copy()
        far[5] = wrong
        assert not _matches(words, 20, 10, offsets, far)
    repeated = ids.copy()
    repeated[a + 1] = repeated[a]  # a row twice, another missing
    assert not _matches(words, 20, 10, offsets, repeated)
    # Another table of the same codes is not this one either.
    assert not _matches(words, 21, 10, offsets, ids)


def test_tables_are_checked_on_ranges_of_any_number_of_threads():
    codes = _clustered(3001, 16)
    words = as_words(codes)
    starts, lengths = _tables.layout(16, len(codes))
    offsets = np.empty((len(lengths), 2 ** int(lengths.max()) + 1), np.int32)
    ids = np.empty((len(lengths), len(codes)), np.int32)
    for u in range(len(lengths)):
        _tables.build_table(words, starts[u], lengths[u], offsets[u], ids[u])
    every = range(len(lengths))
    for n_jobs in (1, 2, 3):
        assert _tables.tables_match(
            words, starts, lengths, offsets, ids, every, n_jobs
        ).all()
    ids[2, [7, 8]] = ids[2, [8, 7]]
    got = _tables.tables_match(words, starts, lengths, offsets, ids, every, 2)
    np.testing.assert_array_equal(got, np.arange(len(lengths)) != 2)
    np.testing.assert_array_equal(
        _tables.tables_match(words, starts, lengths, offsets, ids, [2, 0], 2),
        [False, True],
    )


@pytest.mark.parametrize("built_before", [False, True])
def test_tables_saved_out_of_core_equal_those_built_in_memory(
    tmp_path, monkeypatch, built_before
):
    codes = _clustered(5000, 16)
    nn = HammingNeighbors(n_neighbors=5, algorithm="multi_index").fit(codes)
    if built_before:
        nn.kneighbors(codes[:3])
    engine = nn.index_._engines.get("multi_index") or nn.index_._engine("multi_index")
    # 1 KiB a pass: 20 passes for each table of 5000 ids.
    monkeypatch.setattr(_multi_index, "FILE_BUILD_BUDGET", 1024)
    path = save_index(nn, tmp_path / "index")
    # Built into the files, not kept in memory (unless built before).
    assert engine.built.all() == built_before
    saved = np.load(f"{path}/multi_index_ids.npy")
    saved_offsets = np.load(f"{path}/multi_index_offsets.npy")
    memory = HammingNeighbors(algorithm="multi_index").fit(codes).index_
    memory = memory._engine("multi_index")
    memory.complete()
    np.testing.assert_array_equal(saved, memory.ids)
    np.testing.assert_array_equal(saved_offsets, memory.offsets)
    assert load_index(path).index_._engines["multi_index"].per_probe == (
        memory._codes_per_probe(memory.offsets[0])
    )
    reopened = load_index(path, verify=True)
    for got, want in zip(
        reopened.kneighbors(codes[:50]), nn.kneighbors(codes[:50]), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_mapped_tables_are_checked_all_at_once_and_once(tmp_path, monkeypatch):
    codes = _clustered(4000)
    nn = HammingNeighbors(n_neighbors=3, radius=1, n_jobs=2)
    path = save_index(nn.fit(codes), tmp_path / "index")
    checked = []
    match = _multi_index.tables_match

    def counted(words, starts, lengths, offsets, ids, tables, n_jobs):
        checked.append(list(tables))
        # On the search's threads, even when "auto" checks them to decide.
        assert n_jobs == 2
        return match(words, starts, lengths, offsets, ids, tables, n_jobs)

    monkeypatch.setattr(_multi_index, "tables_match", counted)
    reopened = load_index(path)
    # A radius search needs the first table (for the automatic choice) and
    # those its probe plan names; every table is checked then, in one pass.
    reopened.radius_neighbors(codes[:20])
    for _ in range(3):
        reopened.kneighbors(codes[:20])
    engine = reopened.index_._engines["multi_index"]
    assert checked == [list(range(engine.n_tables))]


def test_auto_takes_mapped_tables_as_there(tmp_path):
    # A scan of a sample decides whether to build tables under "auto"; tables
    # mapped from a saved index are there already: no sample is scanned (at
    # 10^9 codes it would take seconds a query).
    codes = _clustered(3000)
    nn = HammingNeighbors(n_neighbors=4).fit(codes)
    reopened = load_index(save_index(nn, tmp_path / "index"))
    index = reopened.index_

    def no_sample(*args):
        raise AssertionError("a sample was scanned to decide")

    index._scan_is_cheaper = no_sample
    for got, want in zip(
        reopened.kneighbors(codes[:30]), nn.kneighbors(codes[:30]), strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("start, length", [(0, 63), (1, 63), (40, 43), (64, 63)])
def test_a_key_is_its_bits_across_words(start, length):
    codes = _clustered(50, n_bytes=16)
    words = as_words(codes)
    bits = np.unpackbits(codes, axis=1, bitorder="little")
    for row in range(len(codes)):
        want = sum(int(b) << i for i, b in enumerate(bits[row, start : start + length]))
        assert int(_tables.key(words, row, start, length)) == want


@pytest.mark.parametrize("n_bytes, radius", [(16, 0), (16, 2), (8, 1), (3, 4)])
def test_a_hashed_table_is_the_codes_sorted_by_hashed_substring(n_bytes, radius):
    codes = _clustered(2000, n_bytes, seed=radius)
    words = as_words(codes)
    starts, lengths = _tables.hashed_layout(n_bytes, radius)
    # radius + 1 disjoint substrings, as long as 63 bits allow.
    assert len(starts) == radius + 1
    assert (lengths == min(63, 8 * n_bytes // (radius + 1))).all()
    assert (starts == np.arange(radius + 1) * lengths[0]).all()
    bits = np.unpackbits(codes, axis=1, bitorder="little")
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        offsets = np.empty(2**9 + 1, np.int32)
        ids = np.empty(len(codes), np.int32)
        _tables.build_table(words, start, length, offsets, ids, hash_bits=9)
        # Fibonacci hashing in Python's integers: the top 9 bits of the key
        # times 2^64 / phi, modulo 2^64; rows sorted by (bucket, row).
        keys = [
            sum(int(b) << i for i, b in enumerate(row[start : start + length]))
            for row in bits
        ]
        buckets = np.array([(k * 0x9E3779B97F4A7C15) % 2**64 >> 55 for k in keys])
        want_offsets = np.concatenate(
            [[0], np.cumsum(np.bincount(buckets, minlength=512))]
        )
        np.testing.assert_array_equal(offsets, want_offsets)
        np.testing.assert_array_equal(ids, np.argsort(buckets, kind="stable"))


@pytest.mark.parametrize("n_bytes", [3, 8, 16])
def test_radius_search_over_hashed_tables_equals_the_scan(n_bytes):
    # Clustered codes with repeated rows: many codes share every substring,
    # and with 2,000 codes the hashed keys collide in 2^10 buckets, so a
    # candidate is met in several tables and as a collision.
    codes = _clustered(2000, n_bytes)
    codes[1000:1100] = codes[:100]
    queries = np.concatenate([codes[::7], _clustered(100, n_bytes, seed=9)])
    nn = HammingNeighbors(algorithm="multi_index", n_jobs=2).fit(codes)
    brute = HammingNeighbors(algorithm="brute").fit(codes)
    for radius in range(8 * n_bytes // 4):
        for sort in (False, True):
            got = nn.radius_neighbors(queries, radius, sort_results=sort)
            want = brute.radius_neighbors(queries, radius, sort_results=sort)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(np.concatenate(g), np.concatenate(w))
        engine = nn.index_._engines["multi_index"]
        # A radius has hashed tables of its own exactly when it probes fewer
        # tables than the multi-index has.
        assert (radius in engine._hashed) == (radius + 1 < engine.n_tables)


def test_hashed_tables_meet_fewer_candidates_on_clustered_codes():
    # Codes that share their short substrings with many unrelated codes:
    # 40 centres of 128 bits, 2,000 codes each, 5% of the bits flipped: a
    # 16-bit substring is shared with 0.95^32 of its cluster, a 42-bit one
    # with 0.95^84, 14 times fewer.
    rng = np.random.default_rng(0)
    centres = rng.random((40, 128)) < 0.5
    bits = centres[rng.integers(0, 40, 80_000)] ^ (rng.random((80_000, 128)) < 0.05)
    codes = np.packbits(bits, axis=1, bitorder="little")
    index = _multi_index.MultiIndex(codes)
    index._ensure_tables(3)
    words = as_words(codes[:200])

    def met(starts, lengths, plan, offsets, ids, hash_bits):
        # Codes in the buckets a radius-2 search probes (plan: exact probes).
        assert len(plan) == 3 and not plan.any()
        keys = [
            _tables.key(words, q, starts[u], lengths[u])
            for q in range(len(words))
            for u in range(3)
        ]
        buckets = [_tables.bucket(k, hash_bits) for k in keys]
        return sum(
            int(offsets[u % 3, b + 1] - offsets[u % 3, b])
            for u, b in enumerate(buckets)
        )

    short = (index.starts, index.lengths, index.probe_plan(2), index.offsets, index.ids)
    assert met(*short, 0) > 8 * met(*index.radius_tables(2))


def test_hashed_tables_only_where_the_first_table_is_crowded():
    # Uniform random codes meet as many codes in long substrings' buckets as
    # in short ones', at the cost of a hash: they keep the short tables.
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 256, (20_000, 16), np.uint8)
    clustered = _clustered(20_000, n_bytes=16)
    for codes, crowded in ((uniform, False), (clustered, True)):
        nn = HammingNeighbors(algorithm="multi_index").fit(codes)
        got = nn.radius_neighbors(codes[:300], 2)
        want = HammingNeighbors(algorithm="brute").fit(codes)
        for g, w in zip(got, want.radius_neighbors(codes[:300], 2), strict=True):
            np.testing.assert_array_equal(np.concatenate(g), np.concatenate(w))
        engine = nn.index_._engines["multi_index"]
        assert engine.crowded() == crowded
        assert (2 in engine._hashed) == crowded


def test_mapped_tables_build_no_hashed_tables(tmp_path):
    # Building tables for a reopened index would read its whole database.
    codes = _clustered(3000, n_bytes=16)
    nn = HammingNeighbors(algorithm="multi_index").fit(codes)
    reopened = load_index(save_index(nn, tmp_path / "index"))
    for radius in (0, 1, 3):
        for got, want in zip(
            reopened.radius_neighbors(codes[:50], radius),
            nn.radius_neighbors(codes[:50], radius),
            strict=True,
        ):
            np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))
    assert reopened.index_._engines["multi_index"]._hashed == {}
    assert set(nn.index_._engines["multi_index"]._hashed) == {0, 1, 3}
