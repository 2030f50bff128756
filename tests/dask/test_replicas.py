"""skhash.dask.HammingNeighbors with a copy of the index on every worker.

That every search of a replicated index answers as the single machine is
tested with the sharded one in test_neighbors.py (its ``placement`` fixture);
here: where the copies go, that the queries are shared out between them, and
the rule of ``placement="auto"``.
"""

import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from distributed import get_task_stream  # noqa: E402

import skhash  # noqa: E402
from skhash.codes import pack_codes  # noqa: E402
from skhash.dask import HammingNeighbors  # noqa: E402
from skhash.dask._placement import copy_bytes  # noqa: E402


def _codes(n, seed):
    rng = np.random.RandomState(seed)
    centres = rng.randint(2, size=(5, 32))
    return pack_codes(centres[rng.randint(5, size=n)] ^ (rng.rand(n, 32) < 0.05))


def _holders(client, shard):
    return [worker for worker, keys in client.has_what().items() if shard.key in keys]


def test_one_copy_on_each_worker(client):
    D, Q = _codes(400, seed=0), _codes(60, seed=1)
    y = np.arange(400) % 3
    # Every block on one worker: the copies still go one to each.
    first = sorted(client.nthreads())[0]
    codes = client.persist(
        da.from_array(D, chunks=((150, 0, 250), -1)), workers=[first]
    )
    nn = HammingNeighbors(n_neighbors=6, placement="replicate").fit(codes, y)

    assert nn.placement_ == "replicate"
    np.testing.assert_array_equal(nn.shard_offsets_, [0, 400])
    # One shard: its own k nearest are the answer, no radius round to plan.
    assert nn._sample is None and nn._radii(6, 10**6) == []
    copies = nn._placement.persisted
    assert len(copies) == 2
    holders = [_holders(client, copy) for copy in copies]
    assert sorted(h[0] for h in holders) == sorted(client.nthreads())

    local = skhash.HammingNeighbors(n_neighbors=6).fit(D, y)
    for found, expected in zip(nn.kneighbors(Q), local.kneighbors(Q), strict=True):
        np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(nn.predict(Q), local.predict(Q))
    assert nn.score(Q, y[:60]) == pytest.approx(local.score(Q, y[:60]), abs=1e-12)


def test_numpy_queries_are_shared_between_the_copies(client):
    D, Q = _codes(300, seed=2), _codes(101, seed=3)
    nn = HammingNeighbors(n_neighbors=4, placement="replicate").fit(
        da.from_array(D, chunks=100)
    )
    local = skhash.HammingNeighbors(n_neighbors=4).fit(D)
    with get_task_stream(client) as stream:
        distances, indices = nn.kneighbors(Q)
    searched_on = {
        task["worker"]
        for task in stream.data
        if str(task["key"]).startswith("shard_kneighbors")
    }
    assert searched_on == set(client.nthreads())  # both workers searched
    np.testing.assert_array_equal(distances, local.kneighbors(Q)[0])
    np.testing.assert_array_equal(indices, local.kneighbors(Q)[1])
    # The radius runs come back in the queries' order.
    for found, expected in zip(
        nn.radius_neighbors(Q, radius=4, sort_results=True)[1],
        local.radius_neighbors(Q, radius=4, sort_results=True)[1],
        strict=True,
    ):
        np.testing.assert_array_equal(found, expected)


def test_auto_replicates_what_fits_on_every_worker(client, monkeypatch):
    codes = da.from_array(_codes(200, seed=4), chunks=50)
    y = np.arange(200) % 3
    # The test cluster's workers have 2 GiB each: 800 bytes of codes fit.
    assert HammingNeighbors().fit(codes, y).placement_ == "replicate"
    # A copy counts the codes, twice them for the tables, 8 bytes a label.
    assert copy_bytes(codes) == 200 * 3 * 4
    assert copy_bytes(codes, y) == 200 * (3 * 4 + 8)
    assert copy_bytes(codes, np.zeros((200, 5))) == 200 * (3 * 4 + 8 * 5)
    # Above the share of the smallest worker's limit, it shards.
    workers = client.scheduler_info(n_workers=-1)["workers"]
    limit = min(worker["memory_limit"] for worker in workers.values())
    share = copy_bytes(codes, y) / limit
    monkeypatch.setattr(skhash.dask._placement, "REPLICA_SHARE", share * 0.999)
    sharded = HammingNeighbors().fit(codes, y)
    assert sharded.placement_ == "shard" and len(sharded.shard_offsets_) == 3
    assert HammingNeighbors().fit(codes).placement_ == "replicate"  # no labels
    monkeypatch.setattr(skhash.dask._placement, "REPLICA_SHARE", share)
    assert HammingNeighbors().fit(codes, y).placement_ == "replicate"


def test_auto_shards_without_several_workers():
    D = _codes(100, seed=5)
    with dask.config.set(scheduler="threads"):  # no cluster: one shard
        nn = HammingNeighbors(n_neighbors=3).fit(da.from_array(D, chunks=30))
        assert nn.placement_ == "shard"
        np.testing.assert_array_equal(nn.shard_offsets_, [0, 100])
        # Asked for, a replicated index is one copy, searched as one shard.
        nn = HammingNeighbors(n_neighbors=3, placement="replicate")
        nn.fit(da.from_array(D, chunks=30))
        assert len(nn._placement.persisted) == 1
        expected = skhash.HammingNeighbors(n_neighbors=3).fit(D).kneighbors(D[:9])
        np.testing.assert_array_equal(nn.kneighbors(D[:9])[1], expected[1])


def test_pickled_on_the_same_cluster_answers_as_before(client):
    D = _codes(150, seed=6)
    nn = HammingNeighbors(n_neighbors=3, placement="replicate")
    nn.fit(da.from_array(D, chunks=50))
    expected = nn.kneighbors(D[:20])
    loaded = pickle.loads(pickle.dumps(nn))
    del nn
    for found, wanted in zip(loaded.kneighbors(D[:20]), expected, strict=True):
        np.testing.assert_array_equal(found, wanted)
