"""Exact float neighbours, recall@k and the recall scorers."""

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import skhash.utils._memory
from skhash import HammingNeighbors, LSHHasher
from skhash.metrics import (
    exact_neighbors,
    get_retrieval_scorer,
    make_retrieval_scorer,
    recall_at_k,
)
from skhash.neighbors import RescoringNeighbors
from skhash.utils._vectors import candidate_distances, nearest_first

METRICS = ["cosine", "euclidean", "inner_product"]


def _database(n=150, n_features=12, seed=0):
    rng = np.random.RandomState(seed)
    database = rng.randn(n, n_features)
    database[[10, 20, 21]] = database[40]  # exact ties
    database[5] = 0.0  # cosine: at distance 1 from everything
    return database, rng.randn(17, n_features)


def _slow_distance(query, vector, metric):
    if metric == "inner_product":
        return -float(np.dot(query, vector))
    if metric == "euclidean":
        return float(np.sqrt(np.sum((query - vector) ** 2)))
    scale = np.linalg.norm(query) * np.linalg.norm(vector)
    return 1.0 if scale == 0 else 1 - float(np.dot(query, vector)) / scale


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_neighbors_match_a_slow_search(metric, dtype):
    database, queries = _database()
    database = database.astype(dtype)
    queries[3] = database[40]
    distances, indices = exact_neighbors(queries, database, 9, metric=metric)
    for i, query in enumerate(queries):
        pairs = sorted(
            (_slow_distance(query, vector.astype(np.float64), metric), j)
            for j, vector in enumerate(database)
        )[:9]
        np.testing.assert_array_equal(indices[i], [j for _, j in pairs])
        np.testing.assert_allclose(distances[i], [d for d, _ in pairs], atol=1e-12)
    if metric == "euclidean":  # four copies tied at 0, in index order
        np.testing.assert_array_equal(indices[3, :4], [10, 20, 21, 40])
        np.testing.assert_array_equal(distances[3, :4], 0.0)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("working_memory", [1, 700, 5000])
def test_exact_neighbors_in_tiny_blocks_equal_one_block(
    metric, working_memory, monkeypatch
):
    database, queries = _database()
    queries = np.vstack([queries, database[[40, 5, 77]]])
    # One block: every distance of every query at once, then the order.
    every = np.broadcast_to(np.arange(len(database)), (len(queries), len(database)))
    one_block = nearest_first(
        candidate_distances(queries, database, every, metric), every, 11
    )
    monkeypatch.setattr(skhash.utils._memory, "WORKING_MEMORY", working_memory)
    distances, indices = exact_neighbors(queries, database, 11, metric=metric)
    # Bit for bit: each pair's distance does not depend on the blocks.
    np.testing.assert_array_equal(distances, one_block[0])
    np.testing.assert_array_equal(indices, one_block[1])


def test_exact_neighbors_break_a_wide_tie_by_index(monkeypatch):
    rng = np.random.RandomState(1)
    database = np.repeat(rng.randn(3, 6), 40, axis=0)[rng.permutation(120)]
    query = database[:1]
    monkeypatch.setattr(skhash.utils._memory, "WORKING_MEMORY", 5000)
    for metric in METRICS:
        _, indices = exact_neighbors(query, database, 40, metric=metric)
        twins = np.flatnonzero((database == query).all(axis=1))
        if metric != "inner_product":  # the query's own 40 copies come first
            np.testing.assert_array_equal(indices[0], twins)
        assert (np.diff(indices[0][np.isin(indices[0], twins)]) > 0).all()


def test_exact_neighbors_of_every_row_and_of_a_memory_map(tmp_path):
    database, queries = _database()
    path = tmp_path / "database.npy"
    np.save(path, database.astype(np.float32))
    mapped = exact_neighbors(queries, np.load(path, mmap_mode="r"), 150)
    in_memory = exact_neighbors(queries, database.astype(np.float32), 150)
    np.testing.assert_array_equal(mapped[1], in_memory[1])
    assert (np.sort(mapped[1], axis=1) == np.arange(150)).all()
    assert (np.diff(mapped[0], axis=1) >= 0).all()


def test_exact_neighbors_errors():
    database, queries = _database()
    with pytest.raises(ValueError, match="queries have 5 features but the database"):
        exact_neighbors(queries[:, :5], database, 3)
    with pytest.raises(ValueError, match="n_neighbors=151 is more than the 150"):
        exact_neighbors(queries, database, 151)
    database[9, 0] = np.inf
    with pytest.raises(ValueError, match="database has 1 row.* the first at row 9"):
        exact_neighbors(queries, database, 3)
    with pytest.raises(InvalidParameterError, match="metric"):
        exact_neighbors(queries, queries, 3, metric="manhattan")
    with pytest.raises(InvalidParameterError, match="n_neighbors"):
        exact_neighbors(queries, queries, 0)


def _slow_ann_benchmarks_recall(true_distances, distances, k, epsilon):
    """ann-benchmarks' ``get_recall_values`` with ``knn_threshold``."""
    hits = []
    for true_row, row in zip(true_distances, distances, strict=True):
        threshold = true_row[k - 1] + epsilon
        hits.append(sum(1 for d in row[:k] if d <= threshold))
    return np.mean(hits) / k


def _slow_set_recall(true_indices, indices, k):
    return np.mean(
        [
            len(set(true_row[:k]) & {i for i in row[:k] if i >= 0}) / k
            for true_row, row in zip(true_indices, indices, strict=True)
        ]
    )


@pytest.mark.parametrize("seed", range(5))
def test_recall_matches_the_slow_definitions(seed):
    rng = np.random.RandomState(seed)
    true_indices = np.array([rng.permutation(40)[:10] for _ in range(30)])
    # Distances of few values: ties at the k-th place.
    true_distances = np.sort(rng.randint(0, 6, size=(30, 10)) / 4, axis=1)
    indices = rng.randint(-1, 40, size=(30, 12))
    indices[:, :4] = true_indices[:, :4]
    distances = np.sort(rng.randint(0, 8, size=(30, 12)) / 4, axis=1)
    for k in [1, 5, 10]:
        assert recall_at_k(true_indices, indices, k=k) == pytest.approx(
            _slow_set_recall(true_indices, indices, k)
        )
        for epsilon in [0.0, 1e-3, 0.3]:
            got = recall_at_k(
                true_indices, indices, true_distances=true_distances,
                distances=distances, k=k, epsilon=epsilon,
            )  # fmt: skip
            assert got == pytest.approx(
                _slow_ann_benchmarks_recall(true_distances, distances, k, epsilon)
            )


def test_recall_counts_ties_by_distance_and_misses_by_set():
    true_indices = [[0, 1, 2]]
    true_distances = [[0.1, 0.2, 0.3]]
    returned = [[0, 1, 9]]  # 9 is tied with the true 3rd neighbour, 2
    assert recall_at_k(true_indices, returned) == pytest.approx(2 / 3)
    assert (
        recall_at_k(
            true_indices,
            returned,
            true_distances=true_distances,
            distances=[[0.1, 0.2, 0.3]],
        )  # fmt: skip
        == 1.0
    )
    # Beyond the k-th distance by more than epsilon: a miss.
    kwargs = {"true_distances": true_distances, "distances": [[0.1, 0.2, 0.31]]}
    assert recall_at_k(true_indices, returned, **kwargs) == pytest.approx(2 / 3)
    assert recall_at_k(true_indices, returned, **kwargs, epsilon=0.05) == 1.0
    # Fewer returned than k: the missing ones are misses.
    assert recall_at_k(true_indices, [[2, 1]]) == pytest.approx(2 / 3)
    # A returned index counted once, however often it is returned.
    assert recall_at_k(true_indices, [[1, 1, 1]]) == pytest.approx(1 / 3)


def test_recall_errors():
    with pytest.raises(ValueError, match="both true_distances and distances"):
        recall_at_k([[0]], [[0]], distances=[[0.0]])
    with pytest.raises(ValueError, match="k=3 but true_indices has 2"):
        recall_at_k([[0, 1]], [[0, 1, 2]], k=3)
    with pytest.raises(ValueError, match="2 queries in true_indices but 1"):
        recall_at_k([[0], [1]], [[0]])
    with pytest.raises(ValueError, match="distances has shape"):
        recall_at_k([[0, 1]], [[0, 1]], true_distances=[[0.0, 1.0]], distances=[[0.0]])
    with pytest.raises(ValueError, match="integer indices"):
        recall_at_k([[0.5]], [[0]])
    with pytest.raises(ValueError, match="2-D"):
        recall_at_k([0, 1], [[0, 1]])
    with pytest.raises(InvalidParameterError, match="epsilon"):
        recall_at_k([[0]], [[0]], epsilon=-1.0)


def test_recall_scorers_from_the_registry():
    assert repr(get_retrieval_scorer("recall@10")) == (
        "make_retrieval_scorer('recall_at_k', k=10)"
    )
    assert repr(get_retrieval_scorer("recall")) == repr(
        get_retrieval_scorer("recall@10")
    )
    with pytest.raises(ValueError, match="Invalid retrieval scorer 'recall@0'.*'k'"):
        get_retrieval_scorer("recall@0")
    with pytest.raises(TypeError, match="takes k and epsilon"):
        make_retrieval_scorer("recall_at_k", ties="stable")
    with pytest.raises(ValueError, match="'epsilon'"):
        make_retrieval_scorer("recall_at_k", epsilon=-1)


def test_recall_scorer_scores_a_pipeline_ending_in_rescoring():
    database, queries = _database(n_features=16)
    pipe = Pipeline(
        [("scale", StandardScaler()), ("nn", RescoringNeighbors(n_candidates=12))]
    ).fit(database)
    scaled = pipe[0].transform(queries)
    true_distances, true_indices = exact_neighbors(
        scaled, pipe[0].transform(database), 4
    )
    distances, indices = pipe[-1].kneighbors(scaled, 4)
    for scorer, epsilon in [
        (get_retrieval_scorer("recall@4"), 1e-3),
        (make_retrieval_scorer(recall_at_k, k=4, epsilon=0.0), 0.0),
    ]:
        assert scorer(pipe, queries, None) == recall_at_k(
            true_indices, indices, true_distances=true_distances,
            distances=distances, epsilon=epsilon,
        )  # fmt: skip
    # Without k: the search's n_neighbors, as its score method.
    assert make_retrieval_scorer("recall_at_k")(pipe, queries, None) == pipe.score(
        queries
    )
    # k beyond a small database: capped at its size, every neighbour found.
    small = RescoringNeighbors(n_candidates=50).fit(database[:6])
    assert get_retrieval_scorer("recall@10")(small, queries, None) == 1.0


def test_recall_scorer_refuses_what_holds_no_vectors():
    database, queries = _database()
    hasher = LSHHasher(n_bits=8, random_state=0).fit(database)
    codes = hasher.transform(database)
    for estimator, X in [
        (HammingNeighbors().fit(codes), hasher.transform(queries)),
        (hasher, queries),
    ]:
        with pytest.raises(TypeError, match="fitted search over float vectors"):
            get_retrieval_scorer("recall@5")(estimator, X, None)
