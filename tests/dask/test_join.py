"""skhash.dask.similarity_join finds exactly the pairs a brute-force join finds."""

import gc

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import dask  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from skhash.codes import hamming_distances, pack_codes  # noqa: E402
from skhash.dask import HammingNeighbors, similarity_join  # noqa: E402

LEFT_CHUNKS = (37, 0, 50, 13)
RIGHT_CHUNKS = (30, 70, 0, 20)
N_BITS = 24


def _codes(n, seed, clustered):
    rng = np.random.RandomState(seed)
    if clustered:
        # Four centres with sparse flips: many near and exact duplicates.
        centres = np.random.RandomState(0).randint(2, size=(4, N_BITS))
        bits = centres[rng.randint(4, size=n)] ^ (rng.rand(n, N_BITS) < 0.05)
    else:
        bits = rng.randint(2, size=(n, N_BITS))
    return pack_codes(bits)


def _brute_force(left, right, radius, self_join=False):
    distances = hamming_distances(left, right)
    close = distances <= radius
    if self_join:
        close &= np.triu(np.ones_like(close), k=1)
    rows, columns = np.nonzero(close)  # in (left, right) order
    return pd.DataFrame(
        {"left": rows, "right": columns, "distance": distances[rows, columns]}
    ).astype({"left": np.int64, "right": np.int64, "distance": np.int32})


def _partitions(pairs):
    """The computed partitions, each checked sorted by (left, right)."""
    assert isinstance(pairs, dd.DataFrame)
    assert dict(pairs.dtypes) == {
        "left": np.int64,
        "right": np.int64,
        "distance": np.int32,
    }
    partitions = dask.compute(*pairs.to_delayed())
    for part in partitions:
        keys = part["left"].to_numpy() * 10**6 + part["right"].to_numpy()
        assert (np.diff(keys) > 0).all()
    return partitions


def _assert_same_pairs(pairs, expected):
    found = pd.concat(_partitions(pairs), ignore_index=True)
    found = found.sort_values(["left", "right"], ignore_index=True)
    pd.testing.assert_frame_equal(found, expected)


@pytest.fixture(scope="module", params=["random", "clustered"])
def collections(request):
    clustered = request.param == "clustered"
    left = _codes(sum(LEFT_CHUNKS), seed=1, clustered=clustered)
    right = _codes(sum(RIGHT_CHUNKS), seed=2, clustered=clustered)
    left[3] = left[60]  # exact duplicates, in two blocks
    right[:2] = left[:2]
    return left, right


@pytest.mark.parametrize("radius", [0, 2, 5])
def test_join_of_two_collections_equals_brute_force(client, collections, radius):
    left, right = collections
    pairs = similarity_join(
        da.from_array(left, chunks=(LEFT_CHUNKS, -1)),
        da.from_array(right, chunks=(RIGHT_CHUNKS, -1)),
        radius=radius,
    )
    # The 3 non-empty left blocks, each against the 2 shards (one per worker).
    assert pairs.npartitions == 3 * 2
    _assert_same_pairs(pairs, _brute_force(left, right, radius))


@pytest.mark.parametrize("radius", [0, 2, 5, N_BITS])
def test_self_join_equals_brute_force(client, collections, radius):
    left, _ = collections
    pairs = similarity_join(
        da.from_array(left, chunks=(LEFT_CHUNKS, -1)), radius=radius
    )
    # Shards of rows 0-36 and 37-99 (the block ends nearest the halves): the
    # first block searches both, the others only the second.
    assert pairs.npartitions == 2 + 1 + 1
    expected = _brute_force(left, left, radius, self_join=True)
    _assert_same_pairs(pairs, expected)
    # No (i, i) pair, each unordered pair once.
    assert (expected["left"] < expected["right"]).all()


def test_join_with_a_fitted_hamming_neighbors(client, collections):
    left, right = collections
    nn = HammingNeighbors(radius=3).fit(da.from_array(right, chunks=(RIGHT_CHUNKS, -1)))
    codes = da.from_array(left, chunks=(LEFT_CHUNKS, -1))
    _assert_same_pairs(similarity_join(codes, nn), _brute_force(left, right, 3))
    pairs = similarity_join(codes, nn, radius=1)
    del nn
    gc.collect()  # the lazy answer holds the shards, not the estimator
    _assert_same_pairs(pairs, _brute_force(left, right, 1))


def test_join_of_numpy_codes_and_every_algorithm(client):
    left = _codes(40, seed=3, clustered=True)
    right = _codes(30, seed=4, clustered=True)
    for algorithm in ["brute", "multi_index", "auto"]:
        pairs = similarity_join(left, right, radius=2, algorithm=algorithm)
        assert pairs.npartitions == 1
        _assert_same_pairs(pairs, _brute_force(left, right, 2))


def test_join_errors(client):
    codes = da.from_array(_codes(20, seed=5, clustered=False), chunks=10)
    with pytest.raises(ValueError, match="differ in width"):
        similarity_join(codes, codes[:, :2])
    with pytest.raises(InvalidParameterError, match="radius"):
        similarity_join(codes, radius=-1)
    with pytest.raises(InvalidParameterError, match="algorithm"):
        similarity_join(codes, algorithm="kd_tree")
    with pytest.raises(ValueError, match="left must be packed binary codes"):
        similarity_join(codes.astype(np.float32), radius=1)
    with pytest.raises(ValueError, match="right must be packed binary codes"):
        similarity_join(codes, codes.astype(bool), radius=1)
