"""skhash.dask.similarity_join finds exactly the pairs a brute-force join finds."""

import gc

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import dask  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from skhash.codes import hamming_distances, pack_codes, unpack_codes  # noqa: E402
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


def _vectors(codes, seed):
    """Vectors near the codes' bits: pairs at a small Hamming distance are
    near, but the noise splits them either side of a threshold."""
    rng = np.random.RandomState(seed)
    bits = unpack_codes(codes, N_BITS).astype(np.float64)
    return bits + 0.3 * rng.standard_normal(bits.shape)


def _verified(expected, left_vectors, right_vectors, max_distance, metric):
    """The brute-force pairs whose vectors are within max_distance."""
    left = left_vectors[expected["left"]]
    right = right_vectors[expected["right"]]
    if metric == "inner_product":
        distance = -(left * right).sum(1)
    elif metric == "cosine":
        norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
        distance = 1 - (left * right).sum(1) / norms
    else:
        distance = np.linalg.norm(left - right, axis=1)
    kept = expected.assign(vector_distance=distance)
    return kept[kept["vector_distance"] <= max_distance].reset_index(drop=True)


def _assert_same_verified_pairs(pairs, expected):
    assert dict(pairs.dtypes)["vector_distance"] == np.float64
    found = pd.concat(dask.compute(*pairs.to_delayed()), ignore_index=True)
    assert len(found) == len(expected) > 0
    found = found.sort_values(["left", "right"], ignore_index=True)
    pd.testing.assert_frame_equal(found, expected, check_exact=False, rtol=1e-9)


@pytest.mark.parametrize(
    "metric, max_distance",
    [("euclidean", 1.6), ("cosine", 0.12), ("inner_product", -8.0)],
)
def test_verified_joins_equal_brute_force_pairs_filtered(client, metric, max_distance):
    left = _codes(sum(LEFT_CHUNKS), seed=1, clustered=True)
    right = _codes(sum(RIGHT_CHUNKS), seed=2, clustered=True)
    left_vectors, right_vectors = _vectors(left, 3), _vectors(right, 4)
    params = {"radius": 4, "max_distance": max_distance, "metric": metric}
    left_codes = da.from_array(left, chunks=(LEFT_CHUNKS, -1))
    # Vectors chunked otherwise than their codes, and one side as NumPy.
    pairs = similarity_join(
        left_codes,
        da.from_array(right, chunks=(RIGHT_CHUNKS, -1)),
        vectors=da.from_array(left_vectors, chunks=(30, -1)),
        right_vectors=right_vectors,
        **params,
    )
    expected = _brute_force(left, right, 4)
    kept = _verified(expected, left_vectors, right_vectors, max_distance, metric)
    assert len(kept) < len(expected)  # the vectors do drop pairs
    _assert_same_verified_pairs(pairs, kept)

    pairs = similarity_join(
        left_codes, vectors=da.from_array(left_vectors, chunks=(45, -1)), **params
    )
    expected = _brute_force(left, left, 4, self_join=True)
    kept = _verified(expected, left_vectors, left_vectors, max_distance, metric)
    _assert_same_verified_pairs(pairs, kept)


def test_verified_join_with_a_fitted_hamming_neighbors(client):
    left = _codes(sum(LEFT_CHUNKS), seed=1, clustered=True)
    right = _codes(sum(RIGHT_CHUNKS), seed=2, clustered=True)
    left_vectors, right_vectors = _vectors(left, 3), _vectors(right, 4)
    nn = HammingNeighbors(radius=3).fit(da.from_array(right, chunks=(RIGHT_CHUNKS, -1)))
    pairs = similarity_join(
        da.from_array(left, chunks=(LEFT_CHUNKS, -1)),
        nn,
        vectors=left_vectors,
        right_vectors=da.from_array(right_vectors, chunks=(50, -1)),
        max_distance=1.5,
    )
    expected = _verified(
        _brute_force(left, right, 3), left_vectors, right_vectors, 1.5, "euclidean"
    )
    _assert_same_verified_pairs(pairs, expected)


def _frame(codes, ids, chunks):
    """A Dask DataFrame of codes as skhash.dask.transform makes them, indexed
    by ids, partitioned as ``chunks`` (empty ones included)."""
    frame = pd.DataFrame(
        codes, columns=[f"code_{j}" for j in range(codes.shape[1])], index=ids
    )
    starts = np.cumsum([0, *chunks])
    return dd.concat(
        [
            dd.from_pandas(frame.iloc[a:b], npartitions=1, sort=False)
            for a, b in zip(starts[:-1], starts[1:], strict=True)
        ]
    )


def _as_rows(pairs, left_ids, right_ids):
    """The pairs with each side's ids turned back into rows (None: rows
    already), sorted by rows: the order of the brute-force pairs."""
    for side, ids in [("left", left_ids), ("right", right_ids)]:
        if ids is not None:
            rows = pd.Series(np.arange(len(ids)), index=ids)
            pairs = pairs.assign(**{side: rows[pairs[side]].to_numpy()})
    return pairs.sort_values(["left", "right"], ignore_index=True)


def test_pairs_of_dataframes_hold_their_ids(client):
    left = _codes(sum(LEFT_CHUNKS), seed=1, clustered=True)
    right = _codes(sum(RIGHT_CHUNKS), seed=2, clustered=True)
    left_ids = 10_000 - 7 * np.arange(len(left))
    right_ids = np.array([f"item-{i}" for i in range(len(right))], dtype=object)
    left_frame = _frame(left, left_ids, LEFT_CHUNKS)
    right_frame = _frame(right, right_ids, RIGHT_CHUNKS)

    pairs = similarity_join(left_frame, right_frame, radius=2)
    assert pairs.dtypes["left"] == np.int64
    assert pd.api.types.is_string_dtype(pairs.dtypes["right"])
    found = pairs.compute()
    assert found["left"].isin(left_ids).all()
    assert found["right"].isin(right_ids).all()
    pd.testing.assert_frame_equal(
        _as_rows(found, left_ids, right_ids),
        _brute_force(left, right, 2),
        check_dtype=False,
    )

    # A self-join of a frame, verified: ids on both sides.
    left_vectors = _vectors(left, 3)
    pairs = similarity_join(
        left_frame, radius=4, vectors=left_vectors, max_distance=1.6
    )
    expected = _verified(
        _brute_force(left, left, 4, self_join=True),
        left_vectors,
        left_vectors,
        1.6,
        "euclidean",
    )
    pd.testing.assert_frame_equal(
        _as_rows(pairs.compute(), left_ids, left_ids), expected, check_dtype=False
    )

    # A frame and an array: ids on the frame's side, rows on the array's.
    pairs = similarity_join(left_frame, da.from_array(right, chunks=50), radius=2)
    assert pairs.dtypes["right"] == np.int64
    pd.testing.assert_frame_equal(
        _as_rows(pairs.compute(), left_ids, None), _brute_force(left, right, 2)
    )


def test_a_dataframe_is_computed_once_for_its_codes_and_ids():
    calls = []

    def encode(part):
        if len(part):  # not the meta's empty frame
            calls.append(len(part))
        return part

    codes = _codes(60, seed=5, clustered=True)
    frame = _frame(codes, np.arange(60) * 2, (20, 25, 15)).map_partitions(encode)
    with dask.config.set(scheduler="sync"):
        pairs = similarity_join(frame, radius=1)
        calls.clear()  # the partitions' lengths, and the shards at once
        found = pairs.compute()
    assert sorted(calls) == [15, 20, 25]
    expected = _brute_force(codes, codes, 1, self_join=True)
    np.testing.assert_array_equal(found["left"], 2 * expected["left"])


def test_verification_errors(client):
    codes = _codes(sum(LEFT_CHUNKS), seed=6, clustered=True)
    vectors = _vectors(codes, 7)
    dask_codes = da.from_array(codes, chunks=(LEFT_CHUNKS, -1))
    with pytest.raises(ValueError, match="right_vectors was given for a self-join"):
        similarity_join(
            dask_codes, vectors=vectors, right_vectors=vectors, max_distance=1.0
        )
    with pytest.raises(ValueError, match="needs both"):
        similarity_join(dask_codes, dask_codes, vectors=vectors, max_distance=1.0)
    with pytest.raises(ValueError, match="needs both"):
        similarity_join(dask_codes, dask_codes, right_vectors=vectors)
    with pytest.raises(ValueError, match="vectors was given without max_distance"):
        similarity_join(dask_codes, vectors=vectors)
    with pytest.raises(ValueError, match="max_distance was given without vectors"):
        similarity_join(dask_codes, max_distance=1.0)
    with pytest.raises(ValueError, match="vectors has 99 row"):
        similarity_join(dask_codes, vectors=vectors[1:], max_distance=1.0)
    with pytest.raises(ValueError, match="differ in width: 24 and 23 features"):
        similarity_join(
            dask_codes,
            dask_codes,
            vectors=vectors,
            right_vectors=vectors[:, 1:],
            max_distance=1.0,
        )
    with pytest.raises(ValueError, match="must be real numbers"):
        similarity_join(dask_codes, vectors=vectors.astype(str), max_distance=1.0)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        similarity_join(dask_codes, vectors=vectors, max_distance=-1.0)
    with pytest.raises(InvalidParameterError, match="metric"):
        similarity_join(dask_codes, vectors=vectors, max_distance=1.0, metric="l1")
    bad = vectors.copy()
    bad[90, 0] = np.inf
    pairs = similarity_join(dask_codes, vectors=bad, max_distance=1.0)
    with pytest.raises(ValueError, match=r"vectors\[87:100\] has 1 row.* at row 3\."):
        pairs.compute()
