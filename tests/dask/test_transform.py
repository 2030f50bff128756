"""skhash.dask.transform: lazy codes with the right chunks, the local values."""

import pickle

import numpy as np
import pandas as pd
import pytest

from skhash import HashNetHasher, ITQHasher, LSHHasher

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
skhash_dask = pytest.importorskip("skhash.dask")

CHUNKS = (300, 0, 650, 50)
FEATURES = [f"f{i}" for i in range(12)]


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).standard_normal((sum(CHUNKS), 12))


@pytest.mark.parametrize("n_bits", [5, 16, 20])
def test_codes_are_lazy_chunked_and_equal_to_local(client, X, n_bits):
    hasher = ITQHasher(n_bits, random_state=0).fit(X)
    codes = skhash_dask.transform(hasher, da.from_array(X, chunks=(CHUNKS, 5)))
    assert isinstance(codes, da.Array)
    assert codes.chunks == (CHUNKS, (-(-n_bits // 8),))
    assert codes.dtype == np.uint8
    np.testing.assert_array_equal(codes.compute(), hasher.transform(X))


def test_a_deep_hasher(client, X):
    y = (X[:, 0] > 0).astype(int)
    hasher = HashNetHasher(
        8, hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ).fit(X, y)
    codes = skhash_dask.transform(hasher, da.from_array(X, chunks=(CHUNKS, 12)))
    np.testing.assert_array_equal(codes.compute(), hasher.transform(X))


def test_dataframe_partitions_keep_their_column_names(client, X):
    frame = pd.DataFrame(X, columns=FEATURES)
    hasher = LSHHasher(10, random_state=0).fit(frame)
    table = dd.from_pandas(frame, npartitions=3)
    codes = skhash_dask.transform(hasher, table)
    assert isinstance(codes, dd.DataFrame)
    assert list(codes.columns) == ["code_0", "code_1"]
    assert (codes.dtypes == np.uint8).all()
    assert codes.divisions == table.divisions
    computed = codes.compute()
    np.testing.assert_array_equal(computed.to_numpy(), hasher.transform(frame))
    pd.testing.assert_index_equal(computed.index, frame.index)
    # The hasher checks the names of every partition, as its transform does.
    renamed = dd.from_pandas(frame.rename(columns={"f0": "g0"}), npartitions=2)
    with pytest.raises(ValueError, match="feature names"):
        skhash_dask.transform(hasher, renamed).compute()


@pytest.mark.parametrize("ordered", [True, False])
def test_a_string_index_keys_the_codes(client, X, ordered):
    names = np.array([f"doc-{i:04d}" for i in range(len(X))])
    if not ordered:
        names = np.random.RandomState(1).permutation(names)
    frame = pd.DataFrame(X, columns=FEATURES, index=pd.Index(names, name="doc"))
    hasher = ITQHasher(12, random_state=0).fit(frame)
    table = dd.from_pandas(frame, npartitions=4, sort=False)
    assert table.known_divisions == ordered
    codes = skhash_dask.transform(hasher, table)
    assert codes.divisions == table.divisions
    computed = codes.compute()
    # Values and name: Dask stores strings as Arrow strings, whatever pandas did.
    assert computed.index.name == "doc" and computed.index.tolist() == list(names)
    np.testing.assert_array_equal(computed.to_numpy(), hasher.transform(frame))


def test_the_id_column_is_not_a_feature(client, X):
    features = pd.DataFrame(X, columns=FEATURES)
    hasher = ITQHasher(12, random_state=0).fit(features)
    ids = np.arange(len(X)) * 3 + 100
    frame = features.copy()
    frame.insert(4, "id", ids)  # among the features, not at either end
    codes = skhash_dask.transform(
        hasher, dd.from_pandas(frame, npartitions=3), id_column="id"
    )
    assert codes.index.name == "id"
    computed = codes.compute()
    np.testing.assert_array_equal(computed.index.to_numpy(), ids)
    np.testing.assert_array_equal(computed.to_numpy(), hasher.transform(features))
    # The names are still checked: a hasher that took the ids for a feature,
    # or a renamed feature, is refused.
    with_ids = ITQHasher(12, random_state=0).fit(frame)
    table = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(ValueError, match="feature names"):
        skhash_dask.transform(with_ids, table, id_column="id").compute()
    renamed = dd.from_pandas(frame.rename(columns={"f0": "g0"}), npartitions=2)
    with pytest.raises(ValueError, match="feature names"):
        skhash_dask.transform(hasher, renamed, id_column="id").compute()


def _fitted(X):
    return LSHHasher(8, random_state=0).fit(pd.DataFrame(X, columns=FEATURES))


def _ids_table(ids, X, n_partitions=3):
    frame = pd.DataFrame(X[: len(ids)], columns=FEATURES)
    frame["id"] = ids
    return dd.from_pandas(frame, npartitions=n_partitions, sort=False)


@pytest.mark.parametrize(
    "ids, divisions",
    [
        (np.arange(90) * 2, (0, 60, 120, 178)),
        ([f"k{i:03d}" for i in range(90)], ("k000", "k030", "k060", "k089")),
        # Each partition sorted, but overlapping the next.
        (np.r_[np.arange(30), np.arange(20, 50), np.arange(60, 90)], None),
        # One id on both sides of a boundary: no division separates them.
        (np.r_[np.arange(30), np.arange(29, 59), np.arange(60, 90)], None),
        # Sorted across partitions but not within one.
        (np.r_[np.arange(30)[::-1], np.arange(30, 90)], None),
        (np.r_[np.arange(89.0), np.nan], None),
    ],
    ids=["int", "str", "overlap", "shared", "unsorted-within", "missing"],
)
def test_divisions_from_the_id_column(X, ids, divisions):
    table = _ids_table(ids, X)
    codes = skhash_dask.transform(_fitted(X), table, id_column="id")
    assert codes.divisions == (divisions or (None,) * 4)
    assert all(type(d) in (int, str) for d in divisions or ())  # no NumPy scalars
    computed = codes.compute()
    np.testing.assert_array_equal(computed.index.to_numpy(), np.asarray(ids))
    if divisions is not None:  # Dask's lookup by index trusts the divisions
        first = computed.index[45]
        pd.testing.assert_frame_equal(codes.loc[first].compute(), computed.loc[[first]])


def test_an_empty_partition_leaves_the_divisions_unknown(X):
    table = _ids_table(np.arange(90), X)
    table = table[(table.id < 30) | (table.id >= 60)]  # the middle one empty
    codes = skhash_dask.transform(_fitted(X), table, id_column="id")
    assert not codes.known_divisions
    computed = codes.compute()
    np.testing.assert_array_equal(computed.index, np.r_[0:30, 60:90])
    features = pd.DataFrame(X[np.r_[0:30, 60:90]], columns=FEATURES)
    np.testing.assert_array_equal(computed.to_numpy(), _fitted(X).transform(features))


def test_a_pandas_frame_is_one_partition(X):
    hasher = _fitted(X)
    order = np.random.RandomState(2).permutation(len(X))
    frame = pd.DataFrame(X[order], columns=FEATURES, index=order * 10)
    codes = skhash_dask.transform(hasher, frame)
    assert isinstance(codes, dd.DataFrame) and codes.npartitions == 1
    assert not codes.known_divisions  # the rows keep their order, unsorted
    computed = codes.compute()
    pd.testing.assert_index_equal(computed.index, frame.index)
    np.testing.assert_array_equal(computed.to_numpy(), hasher.transform(frame))

    frame = pd.DataFrame(X, columns=FEATURES).assign(id=np.arange(len(X)) + 5)
    codes = skhash_dask.transform(hasher, frame, id_column="id")
    assert codes.npartitions == 1 and codes.divisions == (5, len(X) + 4)
    computed = codes.compute()
    assert computed.index.name == "id"
    np.testing.assert_array_equal(computed.index, frame["id"])
    np.testing.assert_array_equal(
        computed.to_numpy(), hasher.transform(frame.drop(columns="id"))
    )


def test_numpy_in_dask_array_out(X):
    hasher = ITQHasher(12, random_state=0).fit(X)
    codes = skhash_dask.transform(hasher, X)
    assert isinstance(codes, da.Array) and codes.chunks == ((len(X),), (2,))
    np.testing.assert_array_equal(codes.compute(), hasher.transform(X))


def test_parquet_round_trip(client, X, tmp_path):
    # Embeddings as they are often stored: an id column beside the features,
    # and other columns, which the reader leaves out. Dask merges small
    # partitions where it reads few of many columns (its "tune" pass), more of
    # them for the ids alone than for the features: the codes must keep the
    # files' partitions all the same, with the divisions of their ids.
    ids = [f"item-{i:05d}" for i in range(len(X))]
    frame = pd.DataFrame(X, columns=FEATURES).assign(id=ids)
    frame = frame.assign(**{f"other{i}": 0.0 for i in range(40)})
    written = dd.from_pandas(frame, npartitions=16)  # divisions: row numbers
    written.to_parquet(tmp_path / "embeddings", write_index=False)
    frame = frame[["id", *FEATURES]]
    hasher = ITQHasher(20, random_state=0).fit(frame.drop(columns="id"))

    embeddings = dd.read_parquet(tmp_path / "embeddings", columns=["id", *FEATURES])
    codes = skhash_dask.transform(hasher, embeddings, id_column="id")
    # The files hold sorted ids: one division each, its first id.
    assert codes.divisions == (*(ids[i] for i in written.divisions[:-1]), ids[-1])
    codes.to_parquet(tmp_path / "codes")

    back = dd.read_parquet(tmp_path / "codes", calculate_divisions=True)
    assert back.divisions == codes.divisions
    back = back.compute()
    assert list(back.columns) == ["code_0", "code_1", "code_2"]
    assert (back.dtypes == np.uint8).all()
    assert back.index.name == "id" and back.index.tolist() == ids
    np.testing.assert_array_equal(
        back.to_numpy(), hasher.transform(frame.drop(columns="id"))
    )


def test_searches_take_the_codes_frame(client, X):
    hasher = LSHHasher(16, random_state=0).fit(X)
    # A default index: the positions the searches answer with are the ids.
    table = dd.from_pandas(pd.DataFrame(X), npartitions=3)
    frame = skhash_dask.transform(hasher, table)
    array = skhash_dask.transform(hasher, da.from_array(X, chunks=(CHUNKS, 12)))
    queries = hasher.transform(X[:50])

    by_frame = skhash_dask.HammingNeighbors(n_neighbors=5).fit(frame)
    by_array = skhash_dask.HammingNeighbors(n_neighbors=5).fit(array)
    assert by_frame.n_samples_fit_ == len(X)
    for got, expected in zip(
        by_frame.kneighbors(queries), by_array.kneighbors(queries), strict=True
    ):
        np.testing.assert_array_equal(got, expected)

    def pairs(codes):
        found = skhash_dask.similarity_join(codes, radius=2).compute()
        return sorted(map(tuple, found[["left", "right", "distance"]].to_numpy()))

    expected = pairs(array)
    assert expected  # the comparison is not between two empty answers
    assert pairs(frame) == expected


@pytest.mark.parametrize("kind", ["array", "frame", "ids"])
def test_the_hasher_enters_the_graph_once(X, kind):
    # Dask sends a key's value to each worker at most once: with the hasher in
    # one task, not in each block's, a worker receives it once however many
    # blocks it encodes.
    hasher = LSHHasher(8, random_state=0).fit(X)
    hasher.marker_ = "a-string-found-only-in-this-hasher"
    id_column = "id" if kind == "ids" else None
    if kind == "array":
        X = da.from_array(X, chunks=100)
    else:
        X = dd.from_pandas(pd.DataFrame(X).assign(id=range(len(X))), npartitions=10)
        X = X.drop(columns="id") if kind == "frame" else X
    codes = skhash_dask.transform(hasher, X, id_column=id_column)
    graph = dict(codes.__dask_graph__())
    holding = [
        key for key, task in graph.items() if b"only-in-this" in pickle.dumps(task)
    ]
    assert len(holding) == 1
    assert len(graph) > 10


def test_unfitted_hasher():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        skhash_dask.transform(LSHHasher(8), da.zeros((10, 3), chunks=5))


def test_id_column_errors(X):
    hasher = _fitted(X)
    with pytest.raises(TypeError, match="DataFrame"):
        skhash_dask.transform(hasher, da.from_array(X), id_column="id")
    with pytest.raises(TypeError, match="DataFrame"):
        skhash_dask.transform(hasher, X, id_column="id")
    table = _ids_table(np.arange(90), X)
    with pytest.raises(ValueError, match="'ID' is not a column of X;.*'id'"):
        skhash_dask.transform(hasher, table, id_column="ID")
    with pytest.raises(ValueError, match="not a column of X"):
        skhash_dask.transform(hasher, table.compute(), id_column="ID")
    # Ids already in the index need no id_column; the message says so.
    indexed = table.set_index("id", sorted=True)
    with pytest.raises(ValueError, match="it is X's index"):
        skhash_dask.transform(hasher, indexed, id_column="id")
