import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline

import skhash.utils._memory
from skhash import HammingNeighbors, LSHHasher
from skhash.codes import pack_codes, unpack_codes


def _codes(n, n_bits, seed, clustered=False):
    rng = np.random.RandomState(seed)
    if clustered:
        # A few centres with sparse flips: many exact ties and duplicates.
        centres = rng.randint(2, size=(4, n_bits))
        bits = centres[rng.randint(4, size=n)] ^ (rng.rand(n, n_bits) < 0.05)
    else:
        bits = rng.randint(2, size=(n, n_bits))
    return pack_codes(bits)


def _reference(Q, D, exclude_self=False):
    """Full distance matrix and the (distance, index) order of each row."""
    dist = (
        unpack_codes(Q, 8 * Q.shape[1])[:, None, :]
        != unpack_codes(D, 8 * D.shape[1])[None, :, :]
    ).sum(axis=2)
    if exclude_self:
        np.fill_diagonal(dist, 10**6)
    order = np.array([np.lexsort((np.arange(len(D)), row)) for row in dist])
    return dist, order


@pytest.mark.parametrize("n_bits", [8, 13, 64, 100, 1024])
@pytest.mark.parametrize("clustered", [False, True])
def test_kneighbors_matches_brute_force(n_bits, clustered):
    D = _codes(40, n_bits, seed=n_bits, clustered=clustered)
    Q = _codes(9, n_bits, seed=n_bits + 1, clustered=clustered)
    dist, order = _reference(Q, D)
    nn = HammingNeighbors().fit(D)
    for k in [1, 2, 7, 39, 40]:
        distances, indices = nn.kneighbors(Q, n_neighbors=k)
        assert distances.dtype == np.int32
        np.testing.assert_array_equal(indices, order[:, :k])
        np.testing.assert_array_equal(
            distances, np.take_along_axis(dist, order[:, :k], 1)
        )


@pytest.mark.parametrize("clustered", [False, True])
def test_kneighbors_without_x_excludes_each_point_itself(clustered):
    D = _codes(30, 13, seed=2, clustered=clustered)
    D[5] = D[6]  # a duplicate: its twin is at distance 0 but it is not itself
    dist, order = _reference(D, D, exclude_self=True)
    distances, indices = HammingNeighbors(n_neighbors=29).fit(D).kneighbors()
    np.testing.assert_array_equal(indices, order[:, :29])
    assert not (indices == np.arange(30)[:, None]).any()
    assert indices[5, 0] == 6 and distances[5, 0] == 0


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_radius_neighbors_matches_brute_force(radius):
    D = _codes(50, 13, seed=3, clustered=True)
    Q = _codes(8, 13, seed=4, clustered=True)
    dist, order = _reference(Q, D)
    nn = HammingNeighbors(radius=radius).fit(D)
    distances, indices = nn.radius_neighbors(Q)
    sorted_distances, sorted_indices = nn.radius_neighbors(Q, sort_results=True)
    assert indices.dtype == object and len(indices) == len(Q)
    assert any(len(row) == 0 for row in indices)  # rows with no neighbour too
    for q in range(len(Q)):
        assert distances[q].dtype == np.int32 and indices[q].dtype == np.intp
        expected = np.flatnonzero(dist[q] <= radius)
        np.testing.assert_array_equal(indices[q], expected)
        np.testing.assert_array_equal(distances[q], dist[q, expected])
        ranked = [i for i in order[q] if dist[q, i] <= radius]
        np.testing.assert_array_equal(sorted_indices[q], ranked)
        np.testing.assert_array_equal(sorted_distances[q], dist[q, ranked])
    only = nn.radius_neighbors(Q, return_distance=False)
    for q in range(len(Q)):
        np.testing.assert_array_equal(only[q], indices[q])


def test_radius_neighbors_without_x_excludes_itself():
    D = _codes(20, 8, seed=5, clustered=True)
    _, indices = HammingNeighbors(radius=8).fit(D).radius_neighbors()
    for i, row in enumerate(indices):
        np.testing.assert_array_equal(row, np.delete(np.arange(20), i))


def test_graphs_match_sklearn_on_unpacked_bits():
    n_bits = 16
    D = _codes(25, n_bits, seed=6, clustered=True)
    Q = _codes(7, n_bits, seed=7, clustered=True)
    bits_D, bits_Q = unpack_codes(D, n_bits), unpack_codes(Q, n_bits)
    ours = HammingNeighbors(n_neighbors=4, radius=2).fit(D)
    theirs = NearestNeighbors(n_neighbors=4, radius=2 / n_bits, metric="hamming")
    theirs.fit(bits_D)
    # Same neighbour sets and distances; sklearn reports distances as fractions.
    for mode in ["connectivity", "distance"]:
        scale = 1 if mode == "connectivity" else n_bits
        ours_r = ours.radius_neighbors_graph(Q, mode=mode)
        theirs_r = theirs.radius_neighbors_graph(bits_Q, mode=mode)
        np.testing.assert_allclose(ours_r.toarray(), theirs_r.toarray() * scale)
        assert ours_r.nnz == theirs_r.nnz  # explicit zero distances are stored
    graph = ours.kneighbors_graph(Q, mode="distance")
    distances, indices = ours.kneighbors(Q)
    assert graph.shape == (7, 25) and graph.nnz == 28
    for q in range(7):
        np.testing.assert_array_equal(graph[q].indices, indices[q])
        np.testing.assert_array_equal(graph[q].data, distances[q])
    np.testing.assert_array_equal(ours.kneighbors_graph(Q).data, np.ones(28))
    assert ours.kneighbors_graph().shape == (25, 25)


def test_results_do_not_depend_on_batches_or_threads(monkeypatch):
    D = _codes(300, 37, seed=8, clustered=True)
    Q = _codes(60, 37, seed=9, clustered=True)
    expected = HammingNeighbors(n_neighbors=10).fit(D).kneighbors(Q)
    expected_radius = HammingNeighbors().fit(D).radius_neighbors(Q)[1]
    monkeypatch.setattr(skhash.utils._memory, "WORKING_MEMORY", 1000 * 16)
    for n_jobs in [1, 2]:
        nn = HammingNeighbors(n_neighbors=10, n_jobs=n_jobs).fit(D)
        for got, want in zip(nn.kneighbors(Q), expected, strict=True):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(nn.radius_neighbors(Q)[1], expected_radius, strict=True):
            np.testing.assert_array_equal(got, want)


def test_memory_stays_bounded_on_a_large_database():
    import tracemalloc

    D = _codes(400_000, 64, seed=10)
    Q = D[:200]
    nn = HammingNeighbors(n_neighbors=3).fit(D)
    tracemalloc.start()
    distances, indices = nn.kneighbors(Q)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # A full 200 x 400,000 int32 matrix alone would be 320 MB.
    assert peak < 150e6
    np.testing.assert_array_equal(indices[:, 0], np.arange(200))
    assert (distances[:, 0] == 0).all()


def test_predict_single_and_multi_label():
    D = pack_codes([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]])
    y = np.array([2, 2, 1, 1])
    nn = HammingNeighbors(n_neighbors=3).fit(D, y)
    np.testing.assert_array_equal(nn.classes_, [1, 2])
    np.testing.assert_array_equal(nn.predict(pack_codes([[0, 0, 0, 0]])), [2])
    # Neighbours 3, 2, 1 vote 1, 1, 2.
    np.testing.assert_array_equal(nn.predict(pack_codes([[1, 1, 1, 1]])), [1])
    # Two neighbours split the vote: the smallest class wins.
    nn2 = HammingNeighbors(n_neighbors=2).fit(D, y)
    np.testing.assert_array_equal(nn2.predict(pack_codes([[0, 0, 1, 1]])), [1])
    Y = np.array([[1, 0], [1, 1], [0, 1], [0, 1]])
    nn3 = HammingNeighbors(n_neighbors=3).fit(D, Y)
    np.testing.assert_array_equal(nn3.predict(pack_codes([[0, 0, 0, 0]])), [[1, 1]])
    np.testing.assert_array_equal(nn3.predict(pack_codes([[1, 1, 1, 1]])), [[0, 1]])


@pytest.mark.parametrize("multilabel", [False, True])
def test_score_is_map_of_queries_against_database(multilabel):
    rng = np.random.RandomState(11)
    D, Q = _codes(40, 12, seed=12, clustered=True), _codes(10, 12, seed=13)
    if multilabel:
        yd, yq = rng.randint(2, size=(40, 3)), rng.randint(2, size=(10, 3))
        relevant = (yq @ yd.T) > 0
    else:
        yd, yq = rng.randint(3, size=40), rng.randint(3, size=10)
        relevant = yq[:, None] == yd[None, :]
    _, order = _reference(Q, D)
    aps = []
    for q in range(10):
        ranked = relevant[q, order[q]]
        hits = np.cumsum(ranked)
        precisions = hits[ranked] / (np.flatnonzero(ranked) + 1)
        aps.append(precisions.mean() if ranked.any() else 0.0)
    assert HammingNeighbors().fit(D, yd).score(Q, yq) == pytest.approx(np.mean(aps))


def test_pickle_and_clone_keep_results():
    D = _codes(50, 20, seed=14)
    nn = HammingNeighbors(n_neighbors=4, n_jobs=2).fit(D, np.arange(50) % 3)
    restored = pickle.loads(pickle.dumps(nn))
    for got, want in zip(restored.kneighbors(D[:5]), nn.kneighbors(D[:5]), strict=True):
        np.testing.assert_array_equal(got, want)
    assert restored.score(D[:5], np.arange(5) % 3) == nn.score(D[:5], np.arange(5) % 3)
    fresh = clone(nn)
    assert fresh.get_params() == nn.get_params() and not hasattr(fresh, "index_")


def test_grid_search_over_bits_of_a_pipeline():
    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("hash", LSHHasher(random_state=0)), ("nn", HammingNeighbors())])
    search = GridSearchCV(pipe, {"hash__n_bits": [16, 32, 64]}, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert ((scores > 0.2) & (scores < 1)).all()
    assert search.best_params_ == {"hash__n_bits": 64}


@pytest.mark.parametrize(
    "X, match",
    [
        (np.full((3, 2), 0.5), "transform"),
        (np.zeros((3, 16), dtype=bool), "unpacked bits"),
        (np.array([[0, 1] * 8] * 3, dtype=np.int64), "pack_codes"),
        (np.array([[np.nan, 1.0]]), "dtype uint8, got dtype float64"),
        (np.zeros(4, dtype=np.uint8), "2D array"),
    ],
)
def test_fit_rejects_what_is_not_packed_codes(X, match):
    with pytest.raises(ValueError, match=match):
        HammingNeighbors().fit(X)


def test_codes_of_zero_and_one_bytes_are_codes():
    # One-hot codes over 64 classes (as ClassifierCodes(n_bits=64) makes) of
    # classes at bit 7 of a byte: every byte is 0 or 1, and these are valid
    # packed codes for search as for the metrics, one query at a time too.
    from skhash.metrics import mean_average_precision

    y = np.random.RandomState(0).choice(np.arange(7, 64, 8), size=50)
    codes = pack_codes(np.eye(64, dtype=np.uint8)[y])
    assert codes.max() == 1
    nn = HammingNeighbors(n_neighbors=3).fit(codes, y)
    for q in range(5):
        distances, indices = nn.kneighbors(codes[q : q + 1])
        expected, order = _reference(codes[q : q + 1], codes)
        np.testing.assert_array_equal(indices[0], order[0, :3])
        np.testing.assert_array_equal(distances[0], expected[0, order[0, :3]])
        assert nn.predict(codes[q : q + 1])[0] == y[q]
        (found,) = nn.radius_neighbors(codes[q : q + 1], radius=0)[1]
        np.testing.assert_array_equal(found, np.flatnonzero(y == y[q]))
    assert nn.score(codes[:20], y[:20]) == mean_average_precision(
        codes[:20], codes, y[:20], y
    )


def test_query_errors():
    D = _codes(10, 16, seed=15)
    nn = HammingNeighbors().fit(D)
    with pytest.raises(ValueError, match="features"):
        nn.kneighbors(_codes(2, 24, seed=16))
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        nn.kneighbors(D, n_neighbors=11)
    with pytest.raises(ValueError, match="n_neighbors < n_samples_fit"):
        nn.kneighbors(n_neighbors=10)
    with pytest.raises(ValueError, match="non-negative integer"):
        nn.radius_neighbors(D, radius=-1)
    with pytest.raises(ValueError, match="mode"):
        nn.kneighbors_graph(D, mode="weights")
    with pytest.raises(ValueError, match="needs the database labels"):
        nn.predict(D)
    with pytest.raises(ValueError, match="needs the database labels"):
        nn.score(D, np.zeros(10))
    with pytest.raises(ValueError, match="10 codes but y has 9"):
        HammingNeighbors().fit(D, np.zeros(9))
    with pytest.raises(NotFittedError):
        HammingNeighbors().kneighbors(D)


def test_get_database_returns_the_fitted_codes_and_labels():
    D = _codes(10, 16, seed=3)
    y = np.arange(10) % 3
    with pytest.raises(NotFittedError):
        HammingNeighbors().get_database()
    codes, labels = HammingNeighbors().fit(D, y).get_database()
    np.testing.assert_array_equal(codes, D)
    np.testing.assert_array_equal(labels, y)
    assert HammingNeighbors().fit(D).get_database()[1] is None
