"""duplicate_pairs and duplicate_groups give the brute-force verified pairs
and their connected components."""

import numpy as np
import pytest
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import pairwise_distances
from sklearn.utils._param_validation import InvalidParameterError

from skhash.codes import hamming_distances, pack_codes
from skhash.neighbors import _duplicates
from skhash.neighbors._duplicates import (
    duplicate_groups,
    duplicate_pairs,
    group_labels,
    spanning_forest,
)

N_BITS = 12


def near_duplicates(n, seed, n_features=6):
    """Vectors with planted near-duplicates (copies plus noise, some chained)
    and their 12-bit random-projection codes: few bits, so most code
    collisions are not duplicates."""
    rng = np.random.RandomState(seed)
    vectors = rng.standard_normal((n, n_features))
    copies = rng.choice(n, size=(n // 4, 2), replace=False)
    vectors[copies[:, 1]] = vectors[copies[:, 0]] + 0.01 * rng.standard_normal(
        (len(copies), n_features)
    )
    projection = np.random.RandomState(0).standard_normal((n_features, N_BITS))
    return pack_codes(vectors @ projection > 0), vectors


def brute_force_pairs(codes, radius, vectors=None, max_distance=None, metric=None):
    close = hamming_distances(codes) <= radius
    if vectors is not None:
        if metric == "inner_product":
            distances = -vectors @ vectors.T
        else:
            distances = pairwise_distances(vectors, metric=metric)
        close &= distances <= max_distance
    left, right = np.nonzero(np.triu(close, k=1))
    return np.stack([left, right], 1)


def components(pairs, n):
    """Connected components, each labelled by its smallest row."""
    graph = coo_array((np.ones(len(pairs)), tuple(pairs.T)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, n)
    np.minimum.at(smallest, component, np.arange(n))
    return smallest[component]


@pytest.mark.parametrize("radius", [0, 1, 3])
@pytest.mark.parametrize(
    "metric, max_distance",
    [("euclidean", 0.1), ("cosine", 1e-4), ("inner_product", -1.5)],
)
def test_verified_pairs_and_groups_equal_brute_force(radius, metric, max_distance):
    codes, vectors = near_duplicates(300, seed=1)
    expected = brute_force_pairs(codes, radius, vectors, max_distance, metric)
    params = {"vectors": vectors, "max_distance": max_distance, "metric": metric}
    pairs, distances = duplicate_pairs(codes, radius=radius, **params)
    np.testing.assert_array_equal(pairs, expected)
    assert distances.dtype == np.float64 and (distances <= max_distance).all()
    if metric == "euclidean":
        np.testing.assert_allclose(
            distances,
            np.linalg.norm(vectors[pairs[:, 0]] - vectors[pairs[:, 1]], axis=1),
        )
    labels = duplicate_groups(codes, radius=radius, **params)
    np.testing.assert_array_equal(labels, components(expected, len(codes)))


def test_unverified_pairs_are_every_code_collision():
    codes, vectors = near_duplicates(300, seed=2)
    pairs, distances = duplicate_pairs(codes, radius=1)
    np.testing.assert_array_equal(pairs, brute_force_pairs(codes, 1))
    assert distances.dtype == np.int32
    np.testing.assert_array_equal(
        distances, hamming_distances(codes)[pairs[:, 0], pairs[:, 1]]
    )
    labels = duplicate_groups(codes, radius=1)
    np.testing.assert_array_equal(labels, components(pairs, len(codes)))
    # What the verification is for: 12-bit collisions chain most rows into
    # one group, which the vectors split into the planted duplicates.
    verified = duplicate_groups(codes, radius=1, vectors=vectors, max_distance=0.1)
    assert np.bincount(labels).max() > 100
    assert np.bincount(verified).max() <= 3


@pytest.mark.parametrize("algorithm", ["brute", "multi_index"])
def test_small_blocks_and_many_folds_change_nothing(monkeypatch, algorithm):
    codes, vectors = near_duplicates(300, seed=3)
    params = {"radius": 2, "vectors": vectors, "max_distance": 0.1}
    expected = components(brute_force_pairs(codes, 2, vectors, 0.1, "euclidean"), 300)
    pairs_before = duplicate_pairs(codes, **params)[0]
    # A working memory of a few hundred candidates: blocks of a few queries,
    # a fold into the forest every few dozen pairs, and vectors gathered a
    # few pairs at a time.
    monkeypatch.setattr("skhash.utils._memory.WORKING_MEMORY", 2000)
    monkeypatch.setattr(_duplicates, "_FIRST_BLOCK", 7)
    blocks = []
    search = _duplicates.pairs_within

    def counted(*args, **kwargs):
        for block in search(*args, **kwargs):
            blocks.append(len(block[0]))
            yield block

    monkeypatch.setattr(_duplicates, "pairs_within", counted)
    labels = duplicate_groups(codes, algorithm=algorithm, **params)
    np.testing.assert_array_equal(labels, expected)
    assert len(blocks) > 20
    np.testing.assert_array_equal(
        duplicate_pairs(codes, algorithm=algorithm, **params)[0], pairs_before
    )


def test_a_chain_is_one_group_and_its_smallest_row_labels_it():
    # Rows 9, 3, 7, 1 in a chain of steps 0.5 (ends 1.5 apart); 0 and 5 a
    # pair; 2, 4, 6, 8 alone. All codes equal: only the vectors decide.
    vectors = np.zeros((10, 1))
    vectors[[9, 3, 7, 1], 0] = [0.0, 0.5, 1.0, 1.5]
    vectors[[0, 5], 0] = 10.0
    vectors[[2, 4, 6, 8], 0] = [20.0, 30.0, 40.0, 50.0]
    codes = np.zeros((10, 1), np.uint8)
    labels = duplicate_groups(codes, radius=0, vectors=vectors, max_distance=0.6)
    np.testing.assert_array_equal(labels, [0, 1, 2, 1, 4, 0, 6, 1, 8, 1])
    keep = np.flatnonzero(labels == np.arange(10))
    np.testing.assert_array_equal(keep, [0, 1, 2, 4, 6, 8])


def test_memory_mapped_vectors_and_empty_codes(tmp_path):
    codes, vectors = near_duplicates(120, seed=4)
    path = tmp_path / "vectors.npy"
    np.save(path, vectors.astype(np.float32))
    mapped = np.load(path, mmap_mode="r")
    labels = duplicate_groups(codes, radius=2, vectors=mapped, max_distance=0.1)
    expected = brute_force_pairs(codes, 2, vectors.astype(np.float32), 0.1, "euclidean")
    np.testing.assert_array_equal(labels, components(expected, 120))
    empty = np.zeros((0, 2), np.uint8)
    assert duplicate_groups(empty, radius=1).shape == (0,)
    pairs, distances = duplicate_pairs(empty, radius=1)
    assert pairs.shape == (0, 2) and distances.shape == (0,)


def test_forests_merge_in_any_order():
    rng = np.random.RandomState(5)
    edges = rng.randint(50, size=(40, 2))
    whole = spanning_forest(edges[:, 0], edges[:, 1])
    halves = [spanning_forest(*part.T) for part in np.array_split(edges, 3)]
    merged = spanning_forest(
        np.concatenate([h[0] for h in halves]), np.concatenate([h[1] for h in halves])
    )
    np.testing.assert_array_equal(whole[0], merged[0])
    np.testing.assert_array_equal(whole[1], merged[1])
    # A star forest: one edge per non-root node, to the smallest of its group.
    assert len(np.unique(whole[0])) == len(whole[0])
    assert (whole[1] < whole[0]).all()
    labels = group_labels(np.arange(50), *whole)
    np.testing.assert_array_equal(labels, components(edges, 50))
    # Ids of any sortable kind: the smallest id names the group.
    names = np.array(["d", "b", "c", "a", "e"], dtype=object)
    nodes, roots = spanning_forest(names[[0, 1, 3]], names[[1, 3, 4]])
    assert group_labels(names, nodes, roots).tolist() == ["a", "a", "c", "a", "a"]


def test_an_infinite_threshold_keeps_every_candidate_with_its_distance():
    # How a user chooses max_distance: every candidate's vector distance.
    codes, vectors = near_duplicates(60, seed=7)
    pairs, distances = duplicate_pairs(
        codes, radius=2, vectors=vectors, max_distance=np.inf
    )
    np.testing.assert_array_equal(pairs, brute_force_pairs(codes, 2))
    expected = pairwise_distances(vectors)[pairs[:, 0], pairs[:, 1]]
    np.testing.assert_allclose(distances, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(InvalidParameterError, match="max_distance"):
        duplicate_pairs(codes, radius=2, vectors=vectors, max_distance=-np.inf)


def test_bad_inputs_have_clear_errors():
    codes, vectors = near_duplicates(30, seed=6)
    with pytest.raises(ValueError, match="vectors was given without max_distance"):
        duplicate_groups(codes, radius=1, vectors=vectors)
    with pytest.raises(ValueError, match="max_distance was given without vectors"):
        duplicate_pairs(codes, radius=1, max_distance=0.5)
    with pytest.raises(ValueError, match="29 row.* but there are 30 code"):
        duplicate_groups(codes, radius=1, vectors=vectors[:29], max_distance=0.5)
    bad = vectors.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values, the first at row 17"):
        duplicate_groups(codes, radius=1, vectors=bad, max_distance=0.5)
    with pytest.raises(InvalidParameterError, match="radius"):
        duplicate_groups(codes, radius=-1)
    with pytest.raises(ValueError, match="max_distance must be >= 0 for the cosine"):
        duplicate_groups(
            codes, radius=1, vectors=vectors, max_distance=-0.1, metric="cosine"
        )
    with pytest.raises(InvalidParameterError, match="max_distance"):
        duplicate_groups(codes, radius=1, vectors=vectors, max_distance=np.nan)
    with pytest.raises(InvalidParameterError, match="metric"):
        duplicate_groups(codes, radius=1, vectors=vectors, max_distance=1, metric="l1")
    with pytest.raises(ValueError, match="packed binary codes"):
        duplicate_groups(codes.astype(bool), radius=1)
    with pytest.raises(TypeError, match="radius"):
        duplicate_groups(codes)
    # The negated dot product may well be negative: a threshold there is valid.
    assert duplicate_groups(
        codes, radius=1, vectors=vectors, max_distance=-1.0, metric="inner_product"
    ).shape == (30,)
