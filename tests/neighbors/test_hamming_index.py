"""The search core alone: explicit exclusion, its checks, its saved state."""

import pickle

import numpy as np
import pytest

from skhash.codes import hamming_distances, pack_codes
from skhash.neighbors import HammingIndex


def _codes(n, n_bits, seed):
    rng = np.random.RandomState(seed)
    centres = rng.randint(2, size=(3, n_bits))
    return pack_codes(centres[rng.randint(3, size=n)] ^ (rng.rand(n, n_bits) < 0.1))


def _reference_knn(queries, codes, k, exclude):
    """k nearest by (distance, row), each query without its excluded row."""
    distances = hamming_distances(queries, codes).astype(np.int64)
    if exclude is not None:
        distances[np.arange(len(queries)), exclude] = 10**6
    order = np.lexsort(
        (np.broadcast_to(np.arange(len(codes)), distances.shape), distances)
    )
    order = order[:, :k]
    return np.take_along_axis(distances, order, 1), order


@pytest.mark.parametrize("algorithm", ["brute", "multi_index", "auto"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_exclude_leaves_out_one_row_per_query(algorithm, backend):
    # Queries that are database rows (with duplicates elsewhere) and rows
    # that are not theirs: only the given row is left out, not equal codes.
    codes = _codes(400, 40, seed=0)
    queries = codes[[5, 5, 17, 300]]
    exclude = np.array([5, 17, 17, 0])
    index = HammingIndex(codes, algorithm=algorithm, backend=backend)
    distances, indices = index.kneighbors(queries, 7, exclude=exclude)
    want_distances, want_indices = _reference_knn(queries, codes, 7, exclude)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(distances, want_distances)
    assert not (indices == exclude[:, None]).any()
    found, rows, indptr = index.radius_neighbors(queries, 5, exclude=exclude, sort=True)
    all_distances = hamming_distances(queries, codes)
    for i, row in enumerate(exclude):
        within = np.flatnonzero(all_distances[i] <= 5)
        within = within[within != row]
        within = within[np.lexsort((within, all_distances[i, within]))]
        np.testing.assert_array_equal(rows[indptr[i] : indptr[i + 1]], within)
        np.testing.assert_array_equal(
            found[indptr[i] : indptr[i + 1]], all_distances[i, within]
        )


def test_bad_arguments_are_clear_errors():
    codes = _codes(50, 16, seed=1)
    index = HammingIndex(codes)
    with pytest.raises(ValueError, match="k must be from 1 to 50"):
        index.kneighbors(codes[:2], 51)
    with pytest.raises(ValueError, match="k must be from 1 to 49"):
        index.kneighbors(codes[:2], 50, exclude=[0, 1])
    with pytest.raises(ValueError, match="one integer row per query"):
        index.kneighbors(codes[:2], 3, exclude=[0])
    with pytest.raises(ValueError, match="3 features, but the index is expecting 2"):
        index.kneighbors(np.zeros((2, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="dtype uint8"):
        index.radius_neighbors(codes[:2].astype(np.int64), 1)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        HammingIndex(codes, algorithm="tree")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        index.radius_neighbors(codes[:2], 1, algorithm="tree")
    with pytest.raises(ValueError, match="non-negative integer"):
        index.radius_neighbors(codes[:2], -1)
    with pytest.raises((TypeError, ValueError), match="k"):
        index.kneighbors(codes[:2], 2.5)
    with pytest.raises(ValueError, match="at least one code"):
        HammingIndex(codes[:0])
    with pytest.raises(ValueError, match="50 codes but y has 3 labels"):
        HammingIndex(codes, [0, 1, 2])


def test_saved_index_answers_as_before_and_refuses_a_damaged_state():
    codes = _codes(500, 64, seed=2)
    index = HammingIndex(codes, np.arange(500) % 4, algorithm="multi_index")
    expected = index.kneighbors(codes[:20], 5)
    loaded = pickle.loads(pickle.dumps(index))
    for got, want in zip(loaded.kneighbors(codes[:20], 5), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.labels, index.labels)
    for key, value in [
        ("codes", codes.astype(np.int32)),
        ("labels", np.arange(3)),
        ("algorithm", "tree"),
        ("backend", "cuda"),
    ]:
        state = index.__getstate__()
        state[key] = value
        damaged = HammingIndex.__new__(HammingIndex)
        with pytest.raises(ValueError, match="damaged or was altered"):
            damaged.__setstate__(state)


def test_size_counts_what_is_built():
    codes = _codes(2000, 64, seed=3)
    index = HammingIndex(codes, algorithm="multi_index")
    before = index.nbytes
    assert before == codes.nbytes
    index.kneighbors(codes[:3], 2)  # every table
    assert index.nbytes > before + 4 * len(codes)
