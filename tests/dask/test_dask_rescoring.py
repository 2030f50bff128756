"""skhash.dask.RescoringNeighbors answers as skhash.neighbors.RescoringNeighbors."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402

from skhash.classical import ITQHasher, SignHasher  # noqa: E402
from skhash.dask import RescoringNeighbors  # noqa: E402
from skhash.neighbors import RescoringNeighbors as LocalRescoring  # noqa: E402

# Uneven row blocks and an empty one.
CHUNKS = (37, 0, 90, 53)
QUERY_CHUNKS = (9, 0, 14)
METRICS = ["cosine", "euclidean", "inner_product"]


def _vectors(n, seed):
    basis = np.random.RandomState(0).randn(4, 16)
    rng = np.random.RandomState(seed)
    return rng.randn(n, 4) @ basis + 0.3 * rng.randn(n, 16)


@pytest.fixture(scope="module")
def data():
    vectors = _vectors(sum(CHUNKS), seed=1)
    vectors[[5, 100]] = vectors[150]  # duplicates in three blocks: exact ties
    queries = _vectors(sum(QUERY_CHUNKS), seed=2)
    queries[4] = vectors[150]
    return vectors, queries


def _assert_same(got, expected):
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("metric", METRICS)
def test_kneighbors_equal_the_single_machine(client, data, metric):
    vectors, queries = data
    params = {"n_neighbors": 5, "metric": metric}
    local = LocalRescoring(**params).fit(vectors)
    search = RescoringNeighbors(**params).fit(da.from_array(vectors, (CHUNKS, 16)))
    assert search.vectors_.chunks[0] == CHUNKS
    # NumPy queries: NumPy answers, bit for bit the single machine's.
    found = search.kneighbors(queries)
    assert isinstance(found[0], np.ndarray)
    _assert_same(found, local.kneighbors(queries))
    if metric == "euclidean":  # the three copies, tied at 0, in index order
        np.testing.assert_array_equal(found[1][4, :3], [5, 100, 150])
    # Dask queries: lazy answers with the queries' row chunks.
    lazy = search.kneighbors(da.from_array(queries, (QUERY_CHUNKS, 16)), 7)
    assert lazy[1].chunks == (QUERY_CHUNKS, (7,))
    _assert_same(dask.compute(*lazy), local.kneighbors(queries, 7))
    # Without X: lazy (the vectors were), each vector left out of its own.
    own = search.kneighbors()
    assert own[0].chunks[0] == CHUNKS
    _assert_same(dask.compute(*own), local.kneighbors())


def test_every_vector_a_candidate_is_exact(client, data):
    vectors, queries = data
    params = {"n_neighbors": 6, "n_candidates": len(vectors), "metric": "euclidean"}
    search = RescoringNeighbors(**params).fit(da.from_array(vectors, (CHUNKS, 16)))
    _assert_same(
        search.kneighbors(queries),
        LocalRescoring(**params).fit(vectors).kneighbors(queries),
    )
    assert search.score(queries) == 1.0


@pytest.mark.parametrize("sort_results", [False, True])
def test_radius_neighbors_and_graphs_equal_the_single_machine(
    client, data, sort_results
):
    vectors, queries = data
    local = LocalRescoring(n_neighbors=4, radius=0.25).fit(vectors)
    search = RescoringNeighbors(n_neighbors=4, radius=0.25).fit(
        da.from_array(vectors, (CHUNKS, 16))
    )
    expected = local.radius_neighbors(queries, sort_results=sort_results)
    assert sum(len(row) for row in expected[1]) > len(queries)  # not vacuous
    lazy = search.radius_neighbors(
        da.from_array(queries, (QUERY_CHUNKS, 16)), sort_results=sort_results
    )
    for got in [
        search.radius_neighbors(queries, sort_results=sort_results),
        dask.compute(*lazy),
    ]:
        for rows, expected_rows in zip(got, expected, strict=True):
            for row, expected_row in zip(rows, expected_rows, strict=True):
                np.testing.assert_array_equal(row, expected_row)
    for graph in ["kneighbors_graph", "radius_neighbors_graph"]:
        got = getattr(search, graph)(mode="distance")
        want = getattr(local, graph)(mode="distance")
        assert (got != want).nnz == 0 and got.nnz == want.nnz


def test_score_equals_the_single_machine(client, data):
    vectors, queries = data
    local = LocalRescoring(n_neighbors=8, oversample=1.5).fit(vectors)
    search = RescoringNeighbors(n_neighbors=8, oversample=1.5).fit(
        da.from_array(vectors, (CHUNKS, 16))
    )
    expected = local.score(queries)
    assert 0 < expected < 1
    assert search.score(queries) == expected
    assert search.score(da.from_array(queries, (QUERY_CHUNKS, 16))) == expected


def test_a_frozen_hasher_and_float32_vectors(client, data):
    vectors, queries = data
    vectors = vectors.astype(np.float32)
    hasher = FrozenEstimator(ITQHasher(n_bits=8, random_state=0).fit(vectors[:60]))
    local = LocalRescoring(hasher, n_neighbors=5).fit(vectors)
    search = RescoringNeighbors(hasher, n_neighbors=5).fit(
        da.from_array(vectors, (CHUNKS, 16))
    )
    assert search.hasher_ is hasher and search.vectors_.dtype == np.float32
    _assert_same(search.kneighbors(queries), local.kneighbors(queries))


def test_the_hasher_is_fitted_from_the_blocks_sums(client, data):
    vectors, _ = data
    search = RescoringNeighbors(SignHasher(threshold="mean")).fit(
        da.from_array(vectors, (CHUNKS, 16))
    )
    np.testing.assert_allclose(search.hasher_.threshold_, vectors.mean(axis=0))
    with pytest.raises(ValueError, match="pass FrozenEstimator"):
        RescoringNeighbors(SignHasher(threshold="median")).fit(
            da.from_array(vectors, (CHUNKS, 16))
        )


def test_bad_inputs_give_clear_errors(client, data):
    vectors, queries = data
    bad = vectors.copy()
    bad[100, 3] = np.nan
    with pytest.raises(ValueError, match="1 row.* NaN or infinite values, .* row 100"):
        RescoringNeighbors().fit(da.from_array(bad, (CHUNKS, 16)))
    search = RescoringNeighbors(n_candidates=3).fit(
        da.from_array(vectors, (CHUNKS, 16))
    )
    with pytest.raises(ValueError, match="n_candidates=3 is less than n_neighbors=5"):
        search.kneighbors(queries)
    with pytest.raises(ValueError, match="X has 4 features, but RescoringNeighbors"):
        search.kneighbors(queries[:, :4], 2)
    with pytest.raises(ValueError, match="X has 1 row.* NaN"):
        search.kneighbors(bad[99:101], 2)
    with pytest.raises(NotImplementedError, match="does not predict"):
        search.predict(queries)
