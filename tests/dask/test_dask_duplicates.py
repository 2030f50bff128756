"""skhash.dask.duplicate_groups gives the components of the brute-force
verified pairs, on a cluster of two worker processes.

(Not test_duplicates.py: tests/neighbors has that name, and the test folders
are no packages, so their modules must have unique names.)"""

import numpy as np
import pytest
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import dask  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from skhash.codes import hamming_distances, pack_codes  # noqa: E402
from skhash.dask import _duplicates, duplicate_groups  # noqa: E402
from skhash.neighbors._duplicates import (  # noqa: E402
    duplicate_groups as single_duplicate_groups,
)

CHUNKS = (37, 0, 50, 13)


def near_duplicates(n, seed, n_features=6):
    """Vectors with planted near-duplicates and their 12-bit random-projection
    codes, whose collisions are mostly not duplicates."""
    rng = np.random.RandomState(seed)
    vectors = rng.standard_normal((n, n_features))
    copies = rng.choice(n, size=(n // 4, 2), replace=False)
    noise = 0.01 * rng.standard_normal((len(copies), n_features))
    vectors[copies[:, 1]] = vectors[copies[:, 0]] + noise
    projection = np.random.RandomState(0).standard_normal((n_features, 12))
    return pack_codes(vectors @ projection > 0), vectors


def brute_force_pairs(codes, radius, vectors=None, max_distance=None):
    close = hamming_distances(codes) <= radius
    if vectors is not None:
        differences = vectors[:, None] - vectors[None]
        close &= np.sqrt((differences**2).sum(-1)) <= max_distance
    return np.argwhere(np.triu(close, k=1))


def components(pairs, n):
    """Connected components, each labelled by its smallest row."""
    graph = coo_array((np.ones(len(pairs)), tuple(pairs.T)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, n)
    np.minimum.at(smallest, component, np.arange(n))
    return smallest[component]


def _labels(series, chunks):
    """The computed labels, checked partitioned as the codes."""
    assert isinstance(series, dd.Series) and series.name == "group"
    parts = dask.compute(*series.to_delayed())
    assert [len(part) for part in parts] == list(chunks)
    return pd.concat(parts)


@pytest.mark.parametrize("radius", [0, 2])
def test_groups_equal_components_of_brute_force_pairs(client, radius):
    codes, vectors = near_duplicates(sum(CHUNKS), seed=1)
    expected = components(brute_force_pairs(codes, radius, vectors, 0.1), len(codes))
    labels = duplicate_groups(
        da.from_array(codes, chunks=(CHUNKS, -1)),
        radius=radius,
        vectors=da.from_array(vectors, chunks=(25, -1)),  # not the codes' chunks
        max_distance=0.1,
    )
    assert labels.divisions == (0, 37, 37, 87, 99)
    found = _labels(labels, CHUNKS)
    np.testing.assert_array_equal(found.index, np.arange(len(codes)))
    np.testing.assert_array_equal(found.to_numpy(), expected)
    # Unverified, the collisions of 12-bit codes make other, larger groups.
    unverified = duplicate_groups(da.from_array(codes, chunks=(CHUNKS, -1)), radius=2)
    np.testing.assert_array_equal(
        _labels(unverified, CHUNKS).to_numpy(),
        components(brute_force_pairs(codes, 2), len(codes)),
    )
    assert not np.array_equal(_labels(unverified, CHUNKS).to_numpy(), expected)


def test_many_partitions_reduce_in_a_tree_and_a_chain_spans_them(client):
    # A chain of duplicates through rows in five blocks: one group, whose
    # smallest row (3) labels every link.
    n, chunks = 120, (3, 20, 0, 17, 30, 10, 25, 15)
    rng = np.random.RandomState(7)
    vectors = 100 * rng.standard_normal((n, 4))
    chain = [50, 3, 110, 41, 70, 24]
    vectors[chain] = np.arange(len(chain))[:, None] * [0.5, 0, 0, 0]
    codes = np.zeros((n, 2), np.uint8)  # every code equal: the vectors decide
    labels = duplicate_groups(
        da.from_array(codes, chunks=(chunks, -1)),
        radius=0,
        vectors=da.from_array(vectors, chunks=(chunks, -1)),
        max_distance=0.6,
    )
    found = _labels(labels, chunks).to_numpy()
    expected = np.arange(n)
    expected[chain] = 3
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(
        found,
        single_duplicate_groups(codes, radius=0, vectors=vectors, max_distance=0.6),
    )


def test_the_merge_tree_is_deep_with_many_partitions(client, monkeypatch):
    merges = []
    # Counted on the client, where the graph is built.
    monkeypatch.setattr(_duplicates, "delayed", _counting_delayed(merges))
    codes, vectors = near_duplicates(200, seed=8)
    chunks = (20,) * 10
    labels = duplicate_groups(
        da.from_array(codes, chunks=(chunks, -1)),
        radius=2,
        vectors=da.from_array(vectors, chunks=(chunks, -1)),
        max_distance=0.1,
    )
    # 10 blocks against 2 shards (5 + 10 searches): 15 forests, merged by two
    # tasks, then those two by one.
    assert merges == [8, 7, 2]
    np.testing.assert_array_equal(
        _labels(labels, chunks).to_numpy(),
        components(brute_force_pairs(codes, 2, vectors, 0.1), 200),
    )


def _counting_delayed(merges):
    def counting(function):
        wrapped = dask.delayed(function)
        if function is not _duplicates._merge:
            return wrapped

        def call(*args):
            merges.append(len(args))
            return wrapped(*args)

        return call

    return counting


@pytest.mark.parametrize("kind", ["int", "str"])
def test_ids_name_the_groups_of_a_dataframe(client, kind):
    codes, vectors = near_duplicates(sum(CHUNKS), seed=2)
    n = len(codes)
    # Ids decreasing with the rows: a group's smallest id is at its last row.
    ids = 1000 - 3 * np.arange(n)
    if kind == "str":
        ids = np.array([f"doc-{i:05d}" for i in ids], dtype=object)
    frame = pd.DataFrame(
        codes, columns=[f"code_{j}" for j in range(codes.shape[1])], index=ids
    )
    starts = np.cumsum([0, *CHUNKS])
    parts = [
        dd.from_pandas(frame.iloc[a:b], npartitions=1, sort=False)
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]
    codes_frame = dd.concat(parts)
    labels = duplicate_groups(
        codes_frame,
        radius=2,
        vectors=da.from_array(vectors, chunks=(CHUNKS, -1)),
        max_distance=0.1,
    )
    assert labels.npartitions == len(CHUNKS)
    found = _labels(labels, CHUNKS)
    np.testing.assert_array_equal(found.index.to_numpy(), ids)
    rows = components(brute_force_pairs(codes, 2, vectors, 0.1), n)
    smallest_id = pd.Series(ids).groupby(rows).transform("min").to_numpy()
    np.testing.assert_array_equal(found.to_numpy(), smallest_id)
    assert (smallest_id != ids[rows]).any()  # smallest id, not smallest row's
    # The representatives are the rows labelled with their own id.
    keep = found[found.index == found.to_numpy()]
    assert len(keep) == len(np.unique(rows))


def test_a_dataframe_is_computed_once_for_pairs_and_labels():
    calls = []

    def encode(part):
        if len(part):  # not the meta's empty frame
            calls.append(len(part))
        return part

    codes, vectors = near_duplicates(60, seed=4)
    frame = dd.from_pandas(
        pd.DataFrame(codes, columns=["code_0", "code_1"], index=np.arange(60) + 5),
        npartitions=3,
    ).map_partitions(encode)
    with dask.config.set(scheduler="sync"):
        labels = duplicate_groups(frame, radius=1, vectors=vectors, max_distance=0.1)
        calls.clear()  # the partitions' lengths, and the shards at once
        found = labels.compute()
    assert sorted(calls) == [20, 20, 20]
    expected = components(brute_force_pairs(codes, 1, vectors, 0.1), 60) + 5
    np.testing.assert_array_equal(found.to_numpy(), expected)


def test_empty_and_tiny_collections(client):
    codes = np.zeros((0, 2), np.uint8)
    labels = duplicate_groups(da.from_array(codes, chunks=(0, -1)), radius=1)
    assert len(labels.compute()) == 0
    one = duplicate_groups(da.from_array(np.ones((1, 2), np.uint8)), radius=1)
    assert one.compute().tolist() == [0]
    # A trailing empty block leaves no last row to end the divisions on.
    trailing = duplicate_groups(
        da.from_array(np.ones((3, 2), np.uint8), chunks=((3, 0), -1)), radius=0
    )
    assert not trailing.known_divisions
    assert trailing.compute().tolist() == [0, 0, 0]


def test_bad_inputs_have_clear_errors(client):
    codes, vectors = near_duplicates(sum(CHUNKS), seed=3)
    dask_codes = da.from_array(codes, chunks=(CHUNKS, -1))
    with pytest.raises(ValueError, match="vectors was given without max_distance"):
        duplicate_groups(dask_codes, radius=1, vectors=vectors)
    with pytest.raises(ValueError, match="max_distance was given without vectors"):
        duplicate_groups(dask_codes, radius=1, max_distance=1.0)
    with pytest.raises(ValueError, match="vectors has 99 row.* there are 100 code"):
        duplicate_groups(dask_codes, radius=1, vectors=vectors[1:], max_distance=1.0)
    with pytest.raises(InvalidParameterError, match="radius"):
        duplicate_groups(dask_codes, radius=-1)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        duplicate_groups(dask_codes, radius=1, vectors=vectors, max_distance=-1.0)
    with pytest.raises(ValueError, match="codes must be packed binary codes"):
        duplicate_groups(dask_codes.astype(np.int64), radius=1)
    # NaN shows where the vectors are read: on a worker, when computed.
    bad = vectors.copy()
    bad[40, 1] = np.nan
    labels = duplicate_groups(
        dask_codes,
        radius=1,
        vectors=da.from_array(bad, chunks=(CHUNKS, -1)),
        max_distance=1.0,
    )
    with pytest.raises(ValueError, match=r"vectors\[37:87\] has 1 row.* at row 3\."):
        labels.compute()


def test_from_parquet_embeddings_to_parquet_pairs_and_groups(client, tmp_path):
    # The whole path as a data engineer runs it: embeddings with an id column
    # in Parquet, codes, verified pairs and groups written back, keyed by id.
    import skhash
    from skhash.dask import similarity_join, transform

    _, vectors = near_duplicates(120, seed=5)
    ids = [f"doc-{i:03d}" for i in range(len(vectors))]
    columns = [f"e{j}" for j in range(vectors.shape[1])]
    table = pd.DataFrame(vectors, columns=columns).assign(id=ids)
    dd.from_pandas(table, npartitions=4).to_parquet(tmp_path / "embeddings")

    embeddings = dd.read_parquet(tmp_path / "embeddings")
    hasher = skhash.LSHHasher(n_bits=12, random_state=0).fit(table[columns])
    transform(hasher, embeddings, id_column="id").to_parquet(tmp_path / "codes")
    codes = dd.read_parquet(tmp_path / "codes", calculate_divisions=True)
    assert codes.known_divisions
    features = embeddings[columns]
    similarity_join(codes, radius=2, vectors=features, max_distance=0.1).to_parquet(
        tmp_path / "pairs"
    )
    duplicate_groups(
        codes, radius=2, vectors=features, max_distance=0.1
    ).to_frame().to_parquet(tmp_path / "groups")

    local_codes = hasher.transform(table[columns])
    pairs = dd.read_parquet(tmp_path / "pairs").compute()
    expected = brute_force_pairs(local_codes, 2, vectors, 0.1)
    found = sorted(zip(pairs["left"], pairs["right"], strict=True))
    assert found == sorted((ids[i], ids[j]) for i, j in expected)
    groups = dd.read_parquet(tmp_path / "groups").compute()["group"]
    smallest = components(expected, len(ids))
    assert groups.to_dict() == {ids[i]: ids[smallest[i]] for i in range(len(ids))}
