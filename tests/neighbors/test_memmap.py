"""Databases mapped from a file (``np.load(path, mmap_mode="r")``) are searched
where they are, never copied into memory."""

import os

import numpy as np
import pytest

from skhash import HammingNeighbors


def _mapped(tmp_path, codes):
    np.save(tmp_path / "codes.npy", codes)
    return np.load(tmp_path / "codes.npy", mmap_mode="r")


@pytest.mark.parametrize("n_bytes", [8, 5])
@pytest.mark.parametrize("algorithm", ["brute", "multi_index"])
def test_mapped_database_gives_the_in_memory_results(tmp_path, n_bytes, algorithm):
    codes = np.random.default_rng(n_bytes).integers(0, 256, (3000, n_bytes), np.uint8)
    mapped = HammingNeighbors(n_neighbors=5, algorithm=algorithm)
    mapped.fit(_mapped(tmp_path, codes))
    in_memory = HammingNeighbors(n_neighbors=5, algorithm=algorithm).fit(codes)
    for X in (codes[:40], None):
        for got, want in zip(
            mapped.kneighbors(X), in_memory.kneighbors(X), strict=True
        ):
            np.testing.assert_array_equal(got, want)
        got = mapped.radius_neighbors_graph(X, radius=3, mode="distance")
        want = in_memory.radius_neighbors_graph(X, radius=3, mode="distance")
        assert (got != want).nnz == 0


def _anonymous_bytes():
    """Resident memory not backed by a file: what a copy would add to."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux")
def test_mapped_database_is_not_copied(tmp_path):
    # 64 MiB of 64-bit codes, scanned; a copy (of the codes, or of their words)
    # would add at least that much anonymous memory.
    n_codes = 8 * 2**20
    codes = np.lib.format.open_memmap(
        tmp_path / "codes.npy", mode="w+", dtype=np.uint8, shape=(n_codes, 8)
    )
    rng = np.random.default_rng(0)
    for start in range(0, n_codes, 2**20):
        codes[start : start + 2**20] = rng.integers(0, 256, (2**20, 8), np.uint8)
    queries = np.array(codes[:5])
    codes.flush()
    del codes
    mapped = np.load(tmp_path / "codes.npy", mmap_mode="r")
    before = _anonymous_bytes()
    nn = HammingNeighbors(n_neighbors=3, algorithm="brute").fit(mapped)
    distances, indices = nn.kneighbors(queries)
    assert _anonymous_bytes() - before < 16 * 2**20
    np.testing.assert_array_equal(indices[:, 0], np.arange(5))
    assert (distances[:, 0] == 0).all()


def test_warm_up_compiles_what_a_mapped_database_needs(tmp_path):
    # Read-only arrays are a numba specialisation of their own (~50 s to
    # compile cold): warm_up must leave no kernel to compile for a database
    # mapped read-only, whichever search it runs.
    from skhash.neighbors import (
        _multi_index,
        _numba_knn,
        _numba_radius,
        _tables,
        warm_up,
    )

    kernels = [
        _numba_knn.knn_block,
        _numba_radius.radius_block,
        _tables.count_buckets,
        _tables.fill_range,
        _tables._codes_fingerprints,
        _tables._table_fingerprint,
        _multi_index._search_block,
        _multi_index._knn_block,
    ]
    warm_up()
    compiled = [len(kernel.signatures) for kernel in kernels]
    codes = np.random.default_rng(1).integers(0, 256, (500, 16), np.uint8)
    for algorithm in ("brute", "multi_index"):
        nn = HammingNeighbors(algorithm=algorithm).fit(_mapped(tmp_path, codes))
        for X in (codes[:3], None):
            nn.kneighbors(X)
            nn.radius_neighbors(X, radius=2)
    assert [len(kernel.signatures) for kernel in kernels] == compiled
