"""Searches under load: many Python threads on one fitted object, fresh or not."""

import threading
import time

import numpy as np
import pytest

from skhash import HammingNeighbors, ITQHasher, pack_codes
from skhash.neighbors import _multi_index, warm_up

warm_up()


def _clustered_codes(n_codes, n_bits=64, seed=0):
    """Codes a few bits from 50 centres: many neighbours within small radii."""
    rng = np.random.RandomState(seed)
    centres = rng.randint(0, 2, size=(50, n_bits))
    flips = rng.rand(n_codes, n_bits) < 0.03
    return pack_codes(centres[rng.randint(50, size=n_codes)] ^ flips)


def _all_results(nn, queries):
    """Every search method's output, as plain comparable arrays."""
    distances, indices = nn.kneighbors(queries)
    radius_distances, radius_indices = nn.radius_neighbors(queries, radius=3)
    self_graph = nn.radius_neighbors_graph(radius=2, mode="distance")
    k_graph = nn.kneighbors_graph(queries, mode="distance")
    return [
        distances,
        indices,
        np.concatenate(list(radius_distances)),
        np.concatenate(list(radius_indices)),
        self_graph.indptr,
        self_graph.indices,
        self_graph.data,
        k_graph.toarray(),
    ]


def _run_together(n_threads, work):
    """work(t) on n_threads threads released at once; their results, in order."""
    start = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def run(t):
        try:
            start.wait()
            results[t] = work(t)
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("algorithm", ["auto", "brute", "multi_index"])
@pytest.mark.parametrize("backend", ["numba", "numpy", "faiss", "torch"])
def test_threads_on_fresh_objects_give_the_serial_results(algorithm, backend):
    """The first calls build the lazy structures; racing them must be safe."""
    pytest.importorskip(backend if backend != "numba" else "numba")
    database = _clustered_codes(1500)
    queries = database[::7]
    params = {"algorithm": algorithm, "backend": backend, "n_neighbors": 9}
    expected = _all_results(HammingNeighbors(**params).fit(database), queries)
    # The compiled backend's lazy structures are the intricate ones: more rounds.
    for _ in range(5 if backend == "numba" else 2):
        nn = HammingNeighbors(n_jobs=2, **params).fit(database)
        for got in _run_together(8, lambda t, nn=nn: _all_results(nn, queries)):
            for got_part, want in zip(got, expected, strict=True):
                np.testing.assert_array_equal(got_part, want)


def test_multi_index_tables_are_built_once_under_contention(monkeypatch):
    """Two threads building one table at once corrupted it (a segfault)."""
    built = []
    build = _multi_index.build_table

    def slow_build(words, start, length, offsets, ids, **options):
        # A table is its substring and its buckets (a radius's own hashed).
        built.append((int(start), int(length), options.get("hash_bits", 0)))
        time.sleep(0.05)  # widen the window in which a racing thread would enter
        build(words, start, length, offsets, ids, **options)

    monkeypatch.setattr(_multi_index, "build_table", slow_build)
    database = _clustered_codes(20_000)
    nn = HammingNeighbors(algorithm="multi_index").fit(database)
    results = _run_together(8, lambda t: nn.radius_neighbors(database[:50])[1])
    assert len(built) == len(set(built)), f"tables built more than once: {built}"
    expected = HammingNeighbors(algorithm="brute").fit(database)
    for indices in results:
        for got, want in zip(
            indices, expected.radius_neighbors(database[:50])[1], strict=True
        ):
            np.testing.assert_array_equal(got, want)


def test_transform_from_threads_gives_the_serial_codes():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 32))
    hasher = ITQHasher(n_bits=16, random_state=0).fit(X)
    expected = hasher.transform(X)
    for codes in _run_together(8, lambda t: hasher.transform(X)):
        np.testing.assert_array_equal(codes, expected)


def test_search_threads_are_shared_and_bounded():
    """Every n_jobs value kept a pool of its own: 511 threads after n_jobs 2-39."""
    database = _clustered_codes(5000)
    for n_jobs in range(2, 40):
        nn = HammingNeighbors(n_jobs=n_jobs).fit(database)
        nn.kneighbors(database)
        nn.radius_neighbors(database, radius=1)
    search_threads = [
        t for t in threading.enumerate() if t.name.startswith("skhash-search")
    ]
    from joblib import cpu_count

    assert len(search_threads) <= max(1, cpu_count() - 1)


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.skipif(
    not __import__("os").path.exists("/proc/self/statm"), reason="needs Linux /proc"
)
def test_repeated_searches_do_not_grow_resident_memory():
    database = _clustered_codes(5000)
    queries = database[:2000]
    nn = HammingNeighbors(n_neighbors=50, n_jobs=2).fit(database)

    def calls():
        nn.kneighbors(queries)  # 2000 x 50 results: 1.2 MB a call
        nn.radius_neighbors(queries, radius=2)
        nn.radius_neighbors_graph(queries, radius=2)

    for _ in range(10):  # reach the steady state of the allocator first
        calls()
    before = _resident_bytes()
    for _ in range(100):
        calls()
    # Keeping even one call's results each time would add over 120 MB.
    assert _resident_bytes() - before < 32 * 2**20
