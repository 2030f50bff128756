"""skhash.dask.transform: lazy codes with the right chunks, the local values."""

import pickle

import numpy as np
import pytest

from skhash import HashNetHasher, ITQHasher, LSHHasher

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
skhash_dask = pytest.importorskip("skhash.dask")

CHUNKS = (300, 0, 650, 50)


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
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    hasher = LSHHasher(10, random_state=0).fit(frame)
    codes = skhash_dask.transform(hasher, dd.from_pandas(frame, npartitions=3))
    assert codes.chunks[1] == (2,) and sum(codes.chunks[0]) == len(X)
    np.testing.assert_array_equal(codes.compute(), hasher.transform(frame))
    # The hasher checks the names of every partition, as its transform does.
    renamed = dd.from_pandas(frame.rename(columns={"f0": "g0"}), npartitions=2)
    with pytest.raises(ValueError, match="feature names"):
        skhash_dask.transform(hasher, renamed).compute()


def test_the_hasher_enters_the_graph_once(X):
    # Dask sends a key's value to each worker at most once: with the hasher in
    # one task, not in each block's, a worker receives it once however many
    # blocks it encodes.
    hasher = LSHHasher(8, random_state=0).fit(X)
    hasher.marker_ = "a-string-found-only-in-this-hasher"
    codes = skhash_dask.transform(hasher, da.from_array(X, chunks=100))
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
