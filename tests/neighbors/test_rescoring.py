"""RescoringNeighbors: the Hamming top candidates, rescored exactly."""

import pickle

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

import skhash.utils._memory
from skhash.classical import CCAITQHasher, ITQHasher, SignHasher
from skhash.codes import pack_codes, unpack_codes
from skhash.metrics import exact_neighbors, get_retrieval_scorer, recall_at_k
from skhash.neighbors import RescoringNeighbors

METRICS = ["cosine", "euclidean", "inner_product"]


def _vectors(n, n_features=24, seed=0):
    """Vectors near one low-dimensional subspace (so that sign codes carry
    their neighbourhoods), with exact duplicates when there are enough rows:
    ties at every stage."""
    basis = np.random.RandomState(0).randn(4, n_features)
    rng = np.random.RandomState(seed)
    vectors = rng.randn(n, 4) @ basis + 0.3 * rng.randn(n, n_features)
    if n > 30:
        vectors[[7, 8]] = vectors[30]
    return vectors


def _slow_distance(query, vector, metric):
    if metric == "inner_product":
        return -float(np.dot(query, vector))
    if metric == "euclidean":
        return float(np.sqrt(np.sum((query - vector) ** 2)))
    scale = np.linalg.norm(query) * np.linalg.norm(vector)
    return 1.0 if scale == 0 else 1 - float(np.dot(query, vector)) / scale


def _slow_search(vectors, codes, queries, query_codes, n_candidates, metric, own=None):
    """Each query's candidates (Hamming top n_candidates by (distance,
    index), its own row left out) with their float distances, by loops."""
    n_bits = 8 * codes.shape[1]
    bits = unpack_codes(codes, n_bits).astype(int)
    found = []
    for i, query in enumerate(queries):
        query_bits = unpack_codes(query_codes[i : i + 1], n_bits)[0].astype(int)
        hamming = [
            (int(np.sum(query_bits != bits[j])), j)
            for j in range(len(vectors))
            if own is None or j != own[i]
        ]
        candidates = [j for _, j in sorted(hamming)[:n_candidates]]
        found.append(
            [(_slow_distance(query, vectors[j], metric), j) for j in candidates]
        )
    return found


def _slow_kneighbors(found, k):
    pairs = [sorted(row)[:k] for row in found]
    return (
        np.array([[d for d, _ in row] for row in pairs]),
        np.array([[j for _, j in row] for row in pairs]),
    )


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_candidates", [None, 7, 23])
def test_kneighbors_is_the_float_search_among_the_hamming_candidates(
    metric, n_candidates
):
    vectors = _vectors(80)
    queries = _vectors(12, seed=1)
    queries[3] = vectors[30]  # three database vectors tied at distance 0
    search = RescoringNeighbors(
        ITQHasher(n_bits=8, random_state=0), n_neighbors=5, n_candidates=n_candidates,
        oversample=2.0, metric=metric,
    ).fit(vectors)  # fmt: skip
    found = _slow_search(
        vectors, search.index_.codes, queries, search.hasher_.transform(queries),
        n_candidates or 10, metric,
    )  # fmt: skip
    expected_distances, expected_indices = _slow_kneighbors(found, 5)
    distances, indices = search.kneighbors(queries)
    assert distances.dtype == np.float64
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12, atol=1e-12)
    if metric == "euclidean":  # the duplicates, exactly, in index order
        np.testing.assert_array_equal(indices[3, :3], [7, 8, 30])
        np.testing.assert_array_equal(distances[3, :3], 0.0)


@pytest.mark.parametrize("metric", METRICS)
def test_without_x_each_vector_is_left_out_of_its_own_candidates(metric):
    vectors = _vectors(60)
    search = RescoringNeighbors(n_neighbors=4, metric=metric).fit(vectors)
    own = np.arange(60)
    found = _slow_search(
        vectors, search.index_.codes, vectors, search.index_.codes, 12, metric, own
    )
    expected_distances, expected_indices = _slow_kneighbors(found, 4)
    distances, indices = search.kneighbors()
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12, atol=1e-12)
    assert not (indices == own[:, None]).any()
    if metric == "euclidean":  # a duplicate is found, but never the row itself
        np.testing.assert_array_equal(indices[30, :2], [7, 8])


@pytest.mark.parametrize("metric", METRICS)
def test_every_vector_a_candidate_is_exact_search(metric):
    vectors = _vectors(70).astype(np.float32)
    queries = _vectors(9, seed=2)
    queries[0] = vectors[30]
    expected = exact_neighbors(queries, vectors, 6, metric=metric)
    for n_candidates in [70, 1000]:  # more than the database: all of it
        search = RescoringNeighbors(
            n_neighbors=6, n_candidates=n_candidates, metric=metric
        ).fit(vectors)
        found = search.kneighbors(queries)
        # Bit for bit, ties included: the same float64 distance of each pair.
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])


def test_answers_do_not_depend_on_the_working_memory(monkeypatch):
    vectors = _vectors(90)
    queries = _vectors(25, seed=3)
    search = RescoringNeighbors(n_neighbors=6).fit(vectors)
    expected = search.kneighbors(queries), search.radius_neighbors(queries, 0.2)
    monkeypatch.setattr(skhash.utils._memory, "WORKING_MEMORY", 1)
    distances, indices = search.kneighbors(queries)
    np.testing.assert_array_equal(distances, expected[0][0])
    np.testing.assert_array_equal(indices, expected[0][1])
    for got, want in zip(
        search.radius_neighbors(queries, 0.2)[1], expected[1][1], strict=True
    ):
        np.testing.assert_array_equal(got, want)
    refit = RescoringNeighbors(n_neighbors=6).fit(vectors)  # encoded a row a block
    np.testing.assert_array_equal(refit.index_.codes, search.index_.codes)


@pytest.mark.parametrize("sort_results", [False, True])
def test_radius_neighbors_are_the_candidates_within_the_radius(sort_results):
    vectors = _vectors(70)
    queries = _vectors(10, seed=4)
    search = RescoringNeighbors(n_neighbors=5, metric="euclidean").fit(vectors)
    found = _slow_search(
        vectors, search.index_.codes, queries, search.hasher_.transform(queries), 15,
        "euclidean",
    )  # fmt: skip
    radius = float(np.median([d for row in found for d, _ in row]))
    distances, indices = search.radius_neighbors(
        queries, radius, sort_results=sort_results
    )
    for i, row in enumerate(found):
        within = [(d, j) for d, j in row if d <= radius]
        within = sorted(within) if sort_results else sorted(within, key=lambda p: p[1])
        np.testing.assert_array_equal(indices[i], [j for _, j in within])
        np.testing.assert_allclose(distances[i], [d for d, _ in within], atol=1e-12)
    graph = search.radius_neighbors_graph(queries, radius, mode="distance")
    assert graph.shape == (10, 70)
    for i in range(10):
        np.testing.assert_array_equal(np.sort(graph[i].indices), np.sort(indices[i]))
    # Without X, each vector's own row is never within any radius.
    own = search.radius_neighbors(radius=1e9, return_distance=False)
    assert all(i not in row for i, row in enumerate(own))
    assert all(len(row) == 15 for row in own)


def test_radius_defaults_to_the_constructors_and_must_be_given():
    vectors = _vectors(40)
    search = RescoringNeighbors().fit(vectors)
    with pytest.raises(ValueError, match="needs a radius"):
        search.radius_neighbors(vectors[:2])
    with pytest.raises(ValueError, match="finite real number"):
        search.radius_neighbors(vectors[:2], radius=np.nan)
    search.set_params(radius=0.3)
    expected = search.radius_neighbors(vectors[:3], 0.3)[1]
    for got, want in zip(
        search.radius_neighbors(vectors[:3])[1], expected, strict=True
    ):
        np.testing.assert_array_equal(got, want)
    # inner_product distances are negated similarities: a negative radius.
    search.set_params(metric="inner_product", radius=-1.0)
    distances, _ = search.radius_neighbors(vectors[:3])
    assert all((row <= -1.0).all() for row in distances)


def test_oversample_sets_the_candidates():
    vectors = _vectors(100)
    # 1.1 * 10 is 11.000000000000002 in floating point: still 11 candidates.
    search = RescoringNeighbors(n_neighbors=10, oversample=1.1).fit(vectors)
    counts = [len(row) for row in search.radius_neighbors(vectors[:5], 3.0)[1]]
    assert counts == [11] * 5
    search.set_params(n_candidates=40)
    counts = [len(row) for row in search.radius_neighbors(vectors[:5], 3.0)[1]]
    assert counts == [40] * 5
    search.set_params(n_candidates=500)  # capped at the database
    counts = [len(row) for row in search.radius_neighbors(radius=3.0)[1]]
    assert counts == [99] * 100


def test_kneighbors_graph_holds_the_neighbours():
    vectors = _vectors(50)
    search = RescoringNeighbors(n_neighbors=3).fit(vectors)
    distances, indices = search.kneighbors(vectors[:6])
    graph = search.kneighbors_graph(vectors[:6], mode="distance")
    assert isinstance(graph, csr_matrix) and graph.shape == (6, 50)
    np.testing.assert_array_equal(graph.indices.reshape(6, 3), indices)
    np.testing.assert_array_equal(graph.data.reshape(6, 3), distances)


def test_memory_mapped_vectors_stay_mapped(tmp_path):
    vectors = _vectors(120).astype(np.float32)
    queries = _vectors(8, seed=5)
    in_memory = RescoringNeighbors(n_neighbors=4).fit(vectors)
    for dtype in [np.float32, np.float64]:
        path = tmp_path / f"vectors_{np.dtype(dtype).name}.npy"
        np.save(path, vectors.astype(dtype))
        mapped = np.load(path, mmap_mode="r")
        search = RescoringNeighbors(n_neighbors=4).fit(mapped)
        assert np.shares_memory(search.vectors_, mapped)
        assert search.vectors_.dtype == dtype
        np.testing.assert_array_equal(
            search.kneighbors(queries)[1], in_memory.kneighbors(queries)[1]
        )
        np.testing.assert_array_equal(search.kneighbors()[1], in_memory.kneighbors()[1])


def test_a_frozen_hasher_is_used_as_fitted():
    vectors = _vectors(100)
    # Fitted on a sample: its thresholds are the sample's means, not all rows'.
    hasher = SignHasher(threshold="mean").fit(vectors[:20])
    frozen = FrozenEstimator(hasher)
    search = RescoringNeighbors(frozen, n_neighbors=4).fit(vectors)
    assert search.hasher_ is frozen
    np.testing.assert_array_equal(hasher.threshold_, vectors[:20].mean(axis=0))
    np.testing.assert_array_equal(search.index_.codes, hasher.transform(vectors))
    refitted = RescoringNeighbors(SignHasher(threshold="mean"), n_neighbors=4)
    refitted.fit(vectors)
    assert not np.array_equal(refitted.index_.codes, search.index_.codes)


def test_the_hasher_is_cloned_and_the_default_is_sign_binarization():
    vectors = _vectors(60)
    hasher = ITQHasher(n_bits=8, random_state=0)
    search = RescoringNeighbors(hasher).fit(vectors)
    with pytest.raises(Exception, match="not fitted"):
        check_is_fitted(hasher)
    assert search.hasher is hasher and search.hasher_ is not hasher
    default = RescoringNeighbors().fit(vectors)
    assert isinstance(default.hasher_, SignHasher) and default.hasher is None
    np.testing.assert_array_equal(default.index_.codes, pack_codes(vectors >= 0))


def test_a_supervised_hasher_gets_y_and_predict_votes():
    vectors = _vectors(90)
    y = (vectors[:, 0] > 0).astype(int) + 2 * (vectors[:, 1] > 0)
    search = RescoringNeighbors(CCAITQHasher(n_bits=4, random_state=0))
    assert get_tags(search).target_tags.required
    search.fit(vectors, y)
    np.testing.assert_array_equal(search.classes_, [0, 1, 2, 3])
    indices = search.kneighbors(vectors[:20], return_distance=False)
    votes = [np.bincount(y[row], minlength=4).argmax() for row in indices]
    np.testing.assert_array_equal(search.predict(vectors[:20]), votes)
    with pytest.raises(ValueError, match="needs the database labels"):
        RescoringNeighbors().fit(vectors).predict(vectors[:2])


def test_score_is_recall_against_the_exact_neighbours():
    vectors = _vectors(150)
    queries = _vectors(30, seed=6)
    search = RescoringNeighbors(n_neighbors=7, oversample=1.5).fit(vectors)
    distances, indices = search.kneighbors(queries)
    true_distances, true_indices = exact_neighbors(queries, vectors, 7)
    expected = recall_at_k(
        true_indices, indices, true_distances=true_distances, distances=distances
    )
    assert search.score(queries) == expected
    assert 0 < expected < 1
    assert search.set_params(n_candidates=150).score(queries) == 1.0


def test_grid_search_picks_by_recall():
    vectors = _vectors(240, n_features=32)
    grid = {"hasher__n_bits": [2, 32], "n_candidates": [5, 40]}
    search = RescoringNeighbors(SignHasher(), n_neighbors=5)
    cv = KFold(3, shuffle=True, random_state=0)
    scored = GridSearchCV(
        search, grid, scoring=get_retrieval_scorer("recall@5"), cv=cv
    ).fit(vectors)
    assert scored.best_params_ == {"hasher__n_bits": 32, "n_candidates": 40}
    scores = scored.cv_results_["mean_test_score"]
    assert np.all((scores > 0) & (scores <= 1)) and scores.min() < scores.max()
    # The default scorer (score: recall@n_neighbors) is the same measure.
    default = GridSearchCV(search, grid, cv=cv).fit(vectors)
    np.testing.assert_array_equal(default.cv_results_["mean_test_score"], scores)
    # Each fold's score: the held-out rows query the fitted ones.
    train, test = next(cv.split(vectors))
    fitted = RescoringNeighbors(SignHasher(32), 5, n_candidates=40).fit(vectors[train])
    assert scored.cv_results_["split0_test_score"][-1] == fitted.score(vectors[test])


def test_a_pipeline_ending_in_rescoring_is_scored_on_its_transformed_queries():
    vectors = _vectors(200) * np.arange(1, 25)  # features of unequal scales
    pipe = Pipeline([("scale", StandardScaler()), ("nn", RescoringNeighbors())])
    grid = {"nn__n_candidates": [5, 50]}
    scorer = get_retrieval_scorer("recall@5")
    scored = GridSearchCV(pipe, grid, scoring=scorer, cv=2).fit(vectors)
    assert scored.best_params_ == {"nn__n_candidates": 50}
    pipe.fit(vectors[:150])
    queries = pipe[0].transform(vectors[150:])
    true_distances, true_indices = exact_neighbors(
        queries, pipe[0].transform(vectors[:150]), 5
    )
    distances, indices = pipe[-1].kneighbors(queries)
    assert scorer(pipe, vectors[150:], None) == recall_at_k(
        true_indices, indices, true_distances=true_distances, distances=distances
    )
    assert pipe.score(vectors[150:]) == scorer(pipe, vectors[150:], None)


class _DroppingHasher(TransformerMixin, BaseEstimator):
    """A broken hasher: one code fewer than the rows it encodes."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return pack_codes(np.asarray(X)[:-1] >= 0)


def test_bad_inputs_give_clear_errors():
    vectors = _vectors(40, n_features=8)
    bad = vectors.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="1 row.* NaN or infinite values, .* row 3"):
        RescoringNeighbors().fit(bad)
    search = RescoringNeighbors(n_neighbors=5, n_candidates=3).fit(vectors)
    with pytest.raises(ValueError, match="n_candidates=3 is less than n_neighbors=5"):
        search.kneighbors(vectors[:2])
    with pytest.raises(ValueError, match="X has 1 row.* NaN .* row 1"):
        search.kneighbors(bad[2:4], 2)
    with pytest.raises(
        ValueError, match="X has 5 features, but RescoringNeighbors is "
    ):
        search.kneighbors(vectors[:2, :5], 2)
    with pytest.raises(ValueError, match="returned 39 codes for 40 vectors"):
        RescoringNeighbors(_DroppingHasher()).fit(vectors)
    with pytest.raises(ValueError, match="n_samples_fit = 40"):
        search.kneighbors(vectors[:2], 41)
    for params in [{"oversample": 0.5}, {"metric": "manhattan"}, {"n_candidates": 0}]:
        with pytest.raises(InvalidParameterError):
            RescoringNeighbors(**params).fit(vectors)


def test_pickling_keeps_the_answers_and_checks_the_vectors():
    vectors = _vectors(60)
    search = RescoringNeighbors(n_neighbors=4).fit(vectors)
    loaded = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(loaded.kneighbors()[1], search.kneighbors()[1])
    state = search.__getstate__()
    state["vectors_"] = vectors[:-1]
    with pytest.raises(ValueError, match="do not line up"):
        RescoringNeighbors().__setstate__(state)
