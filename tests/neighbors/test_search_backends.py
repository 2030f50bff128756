"""Every search backend and algorithm against the NumPy reference implementation."""

import importlib.util
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from skhash import HammingNeighbors
from skhash.codes import pack_codes
from skhash.neighbors import warm_up

HAS_FAISS = importlib.util.find_spec("faiss") is not None
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")


def _has_cuda():
    import torch

    return torch.cuda.is_available()


# (backend, algorithm, device) of every engine the reference is compared with.
ENGINES = [
    pytest.param(("numba", "brute", "auto"), id="numba"),
    pytest.param(("numba", "multi_index", "auto"), id="numba-multi_index"),
    pytest.param(("numba", "auto", "auto"), id="numba-auto"),
    pytest.param(("faiss", "brute", "auto"), id="faiss", marks=needs_faiss),
    pytest.param(("torch", "brute", "cpu"), id="torch-cpu"),
    pytest.param(
        ("torch", "brute", "cuda"),
        id="torch-cuda",
        marks=pytest.mark.skipif("not _has_cuda()", reason="no CUDA device"),
    ),
]


def _codes(n, n_bits, seed, clustered=False):
    rng = np.random.RandomState(seed)
    if clustered:
        # Few centres, sparse flips: long runs of equal distances and duplicates.
        centres = rng.randint(2, size=(3, n_bits))
        bits = centres[rng.randint(3, size=n)] ^ (rng.rand(n, n_bits) < 0.03)
    else:
        bits = rng.randint(2, size=(n, n_bits))
    return pack_codes(bits)


def _engine(engine, **params):
    backend, algorithm, device = engine
    return HammingNeighbors(
        backend=backend, algorithm=algorithm, device=device, **params
    )


def _assert_same_radius(got, want):
    for got_part, want_part in zip(got, want, strict=True):
        assert len(got_part) == len(want_part)
        for got_row, want_row in zip(got_part, want_part, strict=True):
            np.testing.assert_array_equal(got_row, want_row)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n_bits", [8, 13, 64, 100, 256, 1024])
@pytest.mark.parametrize("clustered", [False, True])
def test_engines_match_the_reference(engine, n_bits, clustered):
    D = _codes(120, n_bits, seed=n_bits, clustered=clustered)
    Q = np.concatenate([D[:4], _codes(11, n_bits, n_bits + 1, clustered)])
    reference = HammingNeighbors(backend="numpy").fit(D)
    for n_jobs in [1, 2]:
        nn = _engine(engine, n_jobs=n_jobs).fit(D)
        for X in [Q, None]:
            for k in [1, 3, 119]:
                got = nn.kneighbors(X, n_neighbors=k)
                want = reference.kneighbors(X, n_neighbors=k)
                for got_part, want_part in zip(got, want, strict=True):
                    np.testing.assert_array_equal(got_part, want_part)
                    assert got_part.dtype == want_part.dtype
            for radius in [0, 1, 2, 3, 4]:
                for sort_results in [False, True]:
                    _assert_same_radius(
                        nn.radius_neighbors(X, radius, sort_results=sort_results),
                        reference.radius_neighbors(
                            X, radius, sort_results=sort_results
                        ),
                    )


@pytest.mark.parametrize("engine", ENGINES)
def test_k_equal_to_the_database_and_duplicates(engine):
    D = np.repeat(_codes(6, 20, seed=3), 5, axis=0)  # every code five times
    reference = HammingNeighbors(backend="numpy").fit(D)
    nn = _engine(engine, n_jobs=2).fit(D)
    for X, k in [(D[::4], 30), (None, 29)]:
        for got, want in zip(
            nn.kneighbors(X, k), reference.kneighbors(X, k), strict=True
        ):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n_neighbors", [1, 5, 64, 300])
@pytest.mark.parametrize("clustered", [False, True])
def test_numba_candidate_buffer_refills_exactly(n_neighbors, clustered):
    # Databases much larger than the candidate buffer (k + max(k, 256)) make
    # the kernel shrink its buffer many times, with ties at the threshold.
    D = _codes(4000, 24, seed=n_neighbors, clustered=clustered)
    Q = _codes(70, 24, seed=1, clustered=clustered)
    want = HammingNeighbors(backend="numpy").fit(D).kneighbors(Q, n_neighbors)
    got = HammingNeighbors(backend="numba", n_jobs=2).fit(D).kneighbors(Q, n_neighbors)
    for got_part, want_part in zip(got, want, strict=True):
        np.testing.assert_array_equal(got_part, want_part)


@pytest.mark.parametrize("n_bits", [8, 64, 100, 192, 256, 512])
@pytest.mark.parametrize("clustered", [False, True])
def test_numba_scan_past_the_first_chunk(n_bits, clustered):
    # The first chunk of codes (512 to 2048 of them) seeds each query as a
    # batch; the rest goes through the scans of one, two or four words (four
    # queries per load, 35-query blocks leave lanes past the block) or the
    # scan of any number of words (192 and 512 bits).
    D = _codes(5000, n_bits, seed=n_bits + 20, clustered=clustered)
    Q = np.concatenate([D[3000:3010], _codes(60, n_bits, n_bits + 21, clustered)])
    reference = HammingNeighbors(backend="numpy").fit(D)
    numba = HammingNeighbors(backend="numba", n_jobs=2).fit(D)
    for n_neighbors in (1, 10, 257):
        want = reference.kneighbors(Q, n_neighbors)
        got = numba.kneighbors(Q, n_neighbors)
        for got_part, want_part in zip(got, want, strict=True):
            np.testing.assert_array_equal(got_part, want_part)
    # X=None: each code's own row is left out, wherever it falls.
    want = reference.kneighbors(None, 5)
    got = numba.kneighbors(None, 5)
    for got_part, want_part in zip(got, want, strict=True):
        np.testing.assert_array_equal(got_part, want_part)


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 9])
def test_multi_index_on_a_larger_database(radius):
    D = _codes(20_000, 64, seed=4)
    Q = np.concatenate([D[:20], _codes(20, 64, seed=5)])
    Q[::3, 0] ^= 0b101  # near neighbours at distance 2
    want = HammingNeighbors(backend="numpy").fit(D).radius_neighbors(Q, radius)
    nn = HammingNeighbors(algorithm="multi_index", n_jobs=2).fit(D)
    _assert_same_radius(nn.radius_neighbors(Q, radius), want)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_multi_index_results_outgrow_their_buffers(n_jobs):
    # Every code 1500 times: one query finds more codes than the kernel's
    # first buffers hold (4 per query + 1024), so it stops and resumes.
    D = np.repeat(_codes(4, 64, seed=12), 1500, axis=0)
    Q = np.concatenate([D[::1500], _codes(3, 64, seed=13)])
    want = HammingNeighbors(backend="numpy").fit(D).radius_neighbors(Q, 40)
    nn = HammingNeighbors(algorithm="multi_index", n_jobs=n_jobs).fit(D)
    got = nn.radius_neighbors(Q, 40)
    assert max(len(i) for i in want[1]) >= 1500
    for got_part, want_part in zip(got, want, strict=True):
        for g, w in zip(got_part, want_part, strict=True):
            np.testing.assert_array_equal(g, w)
    graph = nn.radius_neighbors_graph(Q, 40, mode="distance")
    for i, (distances, indices) in enumerate(zip(*want, strict=True)):
        row = graph.getrow(i)
        np.testing.assert_array_equal(row.indices, indices)
        np.testing.assert_array_equal(row.data, distances)


def test_auto_rule_picks_multi_index_for_small_radii_on_spread_codes():
    spread = HammingNeighbors().fit(_codes(20_000, 64, seed=6))
    assert spread.index_.uses_multi_index(0) and spread.index_.uses_multi_index(2)
    assert not spread.index_.uses_multi_index(20)
    # All codes in three tight clusters: buckets are huge, a scan is cheaper.
    clustered = HammingNeighbors().fit(_codes(20_000, 64, seed=6, clustered=True))
    assert not clustered.index_.uses_multi_index(2)
    assert (
        not HammingNeighbors(algorithm="brute")
        .fit(D := _codes(99, 8, 7))
        .index_.uses_multi_index(0)
    )
    assert HammingNeighbors(algorithm="multi_index").fit(D).index_.uses_multi_index(50)
    assert not HammingNeighbors(backend="numpy").fit(D).index_.uses_multi_index(0)


def test_numba_memory_stays_bounded_on_a_large_database():
    # In a fresh process so that the peak RSS belongs to this search alone.
    code = """
import resource, numpy as np
from skhash import HammingNeighbors
from skhash.neighbors import warm_up
warm_up()
rng = np.random.default_rng(0)
D = rng.integers(0, 256, size=(1_000_000, 8), dtype=np.uint8)
nn = HammingNeighbors(n_neighbors=10, n_jobs=2).fit(D)
nn.kneighbors(D[:8])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
distances, indices = nn.kneighbors(D[:2000])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert (indices[:, 0] == np.arange(2000)).all() and (distances[:, 0] == 0).all()
print((after - before) * 1024)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # A 2,000 x 1,000,000 int32 distance matrix alone would be 8 GB.
    assert int(result.stdout.split()[-1]) < 100e6


@pytest.mark.parametrize("engine", ENGINES)
def test_pickle_and_clone_each_backend(engine):
    D = _codes(200, 40, seed=8)
    nn = _engine(engine, n_neighbors=4, radius=3).fit(D, np.arange(200) % 3)
    before = nn.kneighbors(D[:9]), nn.radius_neighbors(D[:9])  # builds indexes
    restored = pickle.loads(pickle.dumps(nn))
    # Only multi-index tables are saved; every other engine is rebuilt.
    assert set(restored.index_._engines) <= {"multi_index"}
    assert restored.backend_ == nn.backend_
    for got, want in zip(restored.kneighbors(D[:9]), before[0], strict=True):
        np.testing.assert_array_equal(got, want)
    _assert_same_radius(restored.radius_neighbors(D[:9]), before[1])
    np.testing.assert_array_equal(restored.predict(D[:9]), nn.predict(D[:9]))
    fresh = clone(nn)
    assert fresh.get_params() == nn.get_params() and not hasattr(fresh, "index_")


def test_faiss_index_is_not_pickled():
    pytest.importorskip("faiss")
    nn = HammingNeighbors(backend="faiss").fit(_codes(50, 16, seed=9))
    nn.kneighbors()
    assert "faiss" in nn.index_._engines
    assert b"IndexBinary" not in pickle.dumps(nn)


def test_missing_faiss_and_cuda_are_clear_errors(monkeypatch):
    D = _codes(10, 16, seed=10)
    with pytest.raises(ValueError, match='needs backend="torch"'):
        HammingNeighbors(backend="numba", device="cuda").fit(D)
    if not _has_cuda():
        with pytest.raises(ValueError, match="cuda.is_available"):
            HammingNeighbors(device="cuda").fit(D)
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        HammingNeighbors(backend="faiss").fit(D)


def test_backend_auto_resolves_and_torch_device_auto():
    D = _codes(10, 16, seed=11)
    assert HammingNeighbors().fit(D).backend_ == "numba"
    nn = HammingNeighbors(backend="torch").fit(D)
    assert nn.device_ == ("cuda" if _has_cuda() else "cpu")


def test_warm_up_reports_compile_seconds():
    seconds = warm_up()
    assert {"knn_block", "radius_block", "multi_index"} <= set(seconds)
    assert all(value >= 0 for value in seconds.values())
    assert warm_up() == seconds  # paid once per process


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("radius", [8, 64, 200, 10**9, 2**64])
def test_radius_beyond_the_code_length_is_every_code_once(engine, radius):
    """Large radii hung (a loop up to the radius), returned duplicates
    (multi-index masks past 63 bits wrapped) or overflowed (2**64)."""
    database = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    nn = _engine(engine).fit(database)
    distances, indices = nn.radius_neighbors(database[:5], radius=radius)
    for query, (found_distances, found) in enumerate(
        zip(distances, indices, strict=True)
    ):
        np.testing.assert_array_equal(found, np.arange(256))
        np.testing.assert_array_equal(
            found_distances, np.bitwise_count(np.arange(256) ^ query)
        )
    graph = nn.radius_neighbors_graph(radius=radius)
    assert graph.nnz == 256 * 255 and (graph.data == 1).all()
    constructed = _engine(engine, radius=radius).fit(database)
    assert constructed.radius_neighbors_graph(database).nnz == 256 * 256


def test_compile_notice_only_with_a_cold_cache(monkeypatch, caplog):
    from skhash.neighbors import _numba_common
    from skhash.neighbors._scan_index import ScanIndex

    monkeypatch.setattr(_numba_common, "COMPILE_SECONDS", {})
    monkeypatch.setattr(_numba_common, "_announced", [])
    with caplog.at_level("WARNING", logger="skhash"):
        ScanIndex.warm_up()
    assert not caplog.records  # the kernels are in numba's cache by now
    monkeypatch.setattr(_numba_common, "COMPILE_SECONDS", {})
    monkeypatch.setattr(_numba_common, "_is_cached", lambda kernel: False)
    with caplog.at_level("WARNING", logger="skhash"):
        ScanIndex.warm_up()
        ScanIndex.warm_up()
    assert [r.getMessage() for r in caplog.records] == [
        "skhash: compiling the Hamming search kernels, once per installation "
        "(about 30 s; numba caches them on disk)."
    ]


def _duplicated_codes(n, n_bits, seed):
    """Codes drawn from a pool of five: long runs of exact duplicates."""
    rng = np.random.RandomState(seed)
    return pack_codes(rng.randint(2, size=(5, n_bits))[rng.randint(5, size=n)])


@pytest.mark.parametrize("n_bits", [8, 16, 64, 100, 128, 512])
@pytest.mark.parametrize("kind", ["uniform", "clustered", "duplicates"])
def test_multi_index_knn_equals_the_scan(n_bits, kind):
    n = 300
    if kind == "duplicates":
        D = _duplicated_codes(n, n_bits, seed=n_bits)
    else:
        D = _codes(n, n_bits, seed=n_bits, clustered=kind == "clustered")
    Q = np.concatenate([D[:20], _codes(20, n_bits, seed=n_bits + 1)])
    index = HammingNeighbors(algorithm="multi_index").fit(D)
    scan = HammingNeighbors(algorithm="brute").fit(D)
    for k in (1, 2, 10, n - 1):
        for X in (Q, None):
            for got, want in zip(
                index.kneighbors(X, k), scan.kneighbors(X, k), strict=True
            ):
                np.testing.assert_array_equal(got, want)
    for got, want in zip(index.kneighbors(Q, n), scan.kneighbors(Q, n), strict=True):
        np.testing.assert_array_equal(got, want)


def test_auto_knn_uses_multi_index_on_clustered_codes_and_scans_uniform_ones():
    # As learned codes are: 5,000 centres of about 100 codes, each a centre with
    # every bit flipped with probability 0.05, so neighbours are a few bits away.
    rng = np.random.RandomState(30)
    centres = rng.randint(2, size=(5000, 64))
    flips = rng.rand(500_000, 64) < 0.05
    clustered = pack_codes(centres[rng.randint(5000, size=500_000)] ^ flips)
    nn = HammingNeighbors(n_neighbors=10).fit(clustered)
    got = nn.kneighbors(clustered[:500])
    assert nn.index_._engines["multi_index"].scan_from_k == np.inf  # no sample failed
    want = HammingNeighbors(n_neighbors=10, algorithm="brute").fit(clustered)
    for got_part, want_part in zip(got, want.kneighbors(clustered[:500]), strict=True):
        np.testing.assert_array_equal(got_part, want_part)

    uniform = _codes(20_000, 64, seed=31)
    nn = HammingNeighbors(n_neighbors=100).fit(uniform)
    got = nn.kneighbors(uniform[:500])
    # A random 64-bit code's 100th neighbour is ~20 bits away: the sample
    # costs more than scans, and the rest of the call (and later ones) scan.
    assert nn.index_._engines["multi_index"].scan_from_k == 100
    want = HammingNeighbors(n_neighbors=100, algorithm="brute").fit(uniform)
    for got_part, want_part in zip(got, want.kneighbors(uniform[:500]), strict=True):
        np.testing.assert_array_equal(got_part, want_part)
    # Self-queries left to the scan still exclude themselves.
    got = nn.kneighbors(n_neighbors=100)
    for got_part, want_part in zip(got, want.kneighbors(), strict=True):
        np.testing.assert_array_equal(got_part, want_part)


_AUTO_KNN_MEMORY = """
import numpy as np
from skhash import HammingNeighbors
from skhash.neighbors import warm_up

def peak():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM"))

warm_up()
# 20,000 random 2048-bit codes (5 MB): their 147 tables would take 21 MB.
codes = np.random.default_rng(0).integers(0, 256, (20_000, 256), np.uint8)
nn = HammingNeighbors(n_neighbors=10).fit(codes)
nn.kneighbors(codes[:2])  # the scan's word-major copy, 5 MB
before = peak()
distances, indices = nn.kneighbors(codes[:200])
index = nn.index_._engines["multi_index"]
print(int(index.built.sum()), index.scan_from_k, (peak() - before) / codes.nbytes)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux")
def test_auto_knn_decides_to_scan_before_building_the_tables():
    # Uniform long codes are the scan's case: "auto" used to build every
    # table (3.4x the database at 4096 bits) before its sample chose the scan.
    run = subprocess.run(
        [sys.executable, "-c", _AUTO_KNN_MEMORY], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    built, scan_from_k, growth = run.stdout.split()
    assert int(built) <= 1  # the first table estimates the cost
    assert scan_from_k == "10"
    assert float(growth) < 0.5  # of the database's size


@pytest.mark.parametrize("save", ["pickle", "skops"])
def test_saved_index_keeps_its_tables(save, monkeypatch):
    """A service restarts without rebuilding the tables."""
    from skhash.neighbors import _multi_index

    D = _codes(3000, 64, seed=40, clustered=True)
    nn = HammingNeighbors(n_neighbors=7, algorithm="multi_index").fit(D)
    expected = nn.kneighbors(D[:50]), nn.radius_neighbors(D[:50], radius=3)
    if save == "pickle":
        data = pickle.dumps(nn)
    else:
        sio = pytest.importorskip("skops.io")
        from skhash.persistence import get_trusted_types

        data = sio.dumps(nn)

    build = _multi_index.build_table

    def no_rebuild(*args, hash_bits=0, **options):
        # A radius's own hashed tables are never saved: built after a restart.
        if not hash_bits:
            raise AssertionError("a saved table was built again")
        build(*args, hash_bits=hash_bits, **options)

    monkeypatch.setattr(_multi_index, "build_table", no_rebuild)
    if save == "pickle":
        restored = pickle.loads(data)
    else:
        restored = sio.loads(data, trusted=get_trusted_types())
    for got, want in zip(restored.kneighbors(D[:50]), expected[0], strict=True):
        np.testing.assert_array_equal(got, want)
    _assert_same_radius(restored.radius_neighbors(D[:50], radius=3), expected[1])


def test_saved_tables_must_fit_the_codes():
    from skhash.neighbors._multi_index import MultiIndex

    D = _codes(3000, 64, seed=41)
    index = MultiIndex(D)
    index.kneighbors(D[:5], 3, n_jobs=1)
    with pytest.raises(ValueError, match="do not fit"):
        MultiIndex(D[:2000], index.saved_tables())
