"""skhash.dask.save_index / load_index: a fitted HammingNeighbors saved as a
directory of its shards reopens, on this cluster or another, answering as
before; a directory whose parts do not belong together is refused."""

import json
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from distributed import futures_of  # noqa: E402

import skhash  # noqa: E402
from skhash.codes import pack_codes  # noqa: E402
from skhash.dask import HammingNeighbors, load_index, save_index  # noqa: E402
from skhash.neighbors._snapshot import mapped_path  # noqa: E402

CHUNKS = (70, 0, 130, 100)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    centres = rng.randint(2, size=(5, 40))
    bits = centres[rng.randint(5, size=360)] ^ (rng.rand(360, 40) < 0.05)
    D, Q = pack_codes(bits[:300]), pack_codes(bits[300:])
    y = rng.randint(3, size=300)
    return D, Q, y


def _mapped_from(shard):
    """The file a shard's codes are mapped from, on its worker."""
    return mapped_path(shard.codes) or ""


def _same_answers(found, expected, Q):
    for a, b in zip(found.kneighbors(Q), expected.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        found.kneighbors()[1].compute(), expected.kneighbors()[1], strict=True
    ):
        np.testing.assert_array_equal(a, b)
    runs = found.radius_neighbors(Q, radius=5, sort_results=True)[1]
    expected_runs = expected.radius_neighbors(Q, radius=5, sort_results=True)[1]
    for a, b in zip(runs, expected_runs, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(found.predict(Q), expected.predict(Q))


@pytest.mark.parametrize("placement", ["shard", "replicate"])
def test_a_saved_index_reopens_on_another_cluster(
    client, own_cluster, data, tmp_path, placement
):
    D, Q, y = data
    codes = da.from_array(D, chunks=(CHUNKS, -1))
    nn = HammingNeighbors(n_neighbors=6, placement=placement).fit(codes, y)
    path = save_index(nn, tmp_path / "index")
    assert sorted(os.listdir(path)) == ["metadata.json"] + [
        f"shard-{s}" for s in range(len(nn.shard_offsets_) - 1)
    ]
    local = skhash.HammingNeighbors(n_neighbors=6).fit(D, y)
    _, other = own_cluster
    with other.as_current():
        reopened = load_index(path)
        assert reopened.placement_ == placement
        assert reopened.get_params() == nn.get_params()
        np.testing.assert_array_equal(reopened.shard_offsets_, nn.shard_offsets_)
        np.testing.assert_array_equal(reopened.classes_, nn.classes_)
        _same_answers(reopened, local, Q)
        # Each shard is mapped from its files, not rebuilt. Asked on the
        # worker that holds it: elsewhere, Dask would hand over a copy.
        (shard,) = futures_of(reopened._shards[0])
        holder = other.who_has([shard])[shard.key][0]
        mapped_from = other.submit(
            _mapped_from, shard, workers=[holder], allow_other_workers=False
        ).result()
        assert mapped_from.startswith(str(tmp_path / "index"))


def test_a_sharded_index_reopens_on_fewer_workers_and_without_a_cluster(
    client, data, tmp_path
):
    D, Q, y = data
    nn = HammingNeighbors(n_neighbors=4, placement="shard")
    nn.fit(da.from_array(D, chunks=(CHUNKS, -1)), y)
    path = save_index(nn, tmp_path / "index")
    local = skhash.HammingNeighbors(n_neighbors=4).fit(D, y)
    with dask.config.set(scheduler="threads"):  # no cluster: one process
        reopened = load_index(path)
        assert len(reopened.shard_offsets_) == len(nn.shard_offsets_)
        _same_answers(reopened, local, Q)
        with pytest.raises(ValueError, match="placement='replicate' is not possible"):
            load_index(path, placement="replicate")


def test_save_replaces_a_saved_index_and_nothing_else(client, data, tmp_path):
    D, _, _ = data
    nn = HammingNeighbors(placement="replicate").fit(da.from_array(D, chunks=100))
    path = save_index(nn, tmp_path / "index")
    save_index(nn, path)  # replaced
    (tmp_path / "other").mkdir()
    with pytest.raises(FileExistsError, match="not a saved index"):
        save_index(nn, tmp_path / "other")
    with pytest.raises(TypeError, match="skhash.neighbors.save_index"):
        save_index(skhash.HammingNeighbors().fit(D), tmp_path / "single")
    assert sorted(os.listdir(tmp_path)) == ["index", "other"]  # no leftovers


def test_a_directory_that_does_not_belong_together_is_refused(client, data, tmp_path):
    D, _, y = data
    codes = da.from_array(D, chunks=(CHUNKS, -1))
    nn = HammingNeighbors(placement="shard").fit(codes, y)
    path = save_index(nn, tmp_path / "index")
    metadata_path = os.path.join(path, "metadata.json")
    metadata = json.loads(open(metadata_path).read())

    def refused(change, match):
        spoiled = json.loads(json.dumps(metadata))
        change(spoiled)
        with open(metadata_path, "w") as file:
            json.dump(spoiled, file)
        with pytest.raises(ValueError, match=match):
            load_index(path)

    # Shards swapped: each has the right parts, not the right rows.
    refused(
        lambda m: m["shards"].reverse(),
        r"shard-[01] holds other codes than the shard saved there",
    )
    refused(lambda m: m.update(format_version=2), "format version is 2")
    refused(lambda m: m.pop("shard_offsets"), "metadata.json is damaged")
    refused(lambda m: m.update(row_chunks=[1, 2]), "do not fit its shards")
    refused(lambda m: m.update(shard_offsets=[0, 150, 300]), "does not hold the 150")
    # A shard from another index: refused by the shard's own checks.
    other = HammingNeighbors(placement="shard").fit(codes[::-1].rechunk((CHUNKS, -1)))
    other_path = save_index(other, tmp_path / "other")
    with open(metadata_path, "w") as file:
        json.dump(metadata, file)
    os.rename(os.path.join(path, "shard-0"), tmp_path / "kept")
    os.rename(os.path.join(other_path, "shard-0"), os.path.join(path, "shard-0"))
    with pytest.raises(ValueError, match="shard-0 holds other codes"):
        load_index(path)
    with pytest.raises(ValueError, match="not a saved skhash.dask index"):
        load_index(tmp_path / "kept")
