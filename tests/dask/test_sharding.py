"""skhash.dask.HammingNeighbors makes one shard per worker of consecutive blocks."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import dask  # noqa: E402

import skhash  # noqa: E402
from skhash.codes import hamming_distances, pack_codes  # noqa: E402
from skhash.dask import HammingNeighbors, similarity_join  # noqa: E402
from skhash.dask._placement import _groups  # noqa: E402


@pytest.fixture(autouse=True)
def sharded(monkeypatch):
    """``placement="auto"`` shards: these small databases would be
    replicated, and the shards are under test."""
    monkeypatch.setattr(skhash.dask._placement, "REPLICA_SHARE", 0)


@pytest.mark.parametrize(
    "row_chunks, n_groups",
    [
        ((10,) * 8, 2),
        ((10,) * 8, 3),
        ((37, 0, 200, 63), 2),
        ((5, 0, 7), 4),  # fewer blocks than groups
        ((0, 100, 0), 2),  # one block holds every code
        ((1, 1, 1, 97), 2),  # no cut balances these: the nearest one
    ],
)
def test_groups_are_runs_of_whole_blocks(row_chunks, n_groups):
    groups = _groups(row_chunks, n_groups)
    # Every non-empty block in one group, in order; no group without codes.
    np.testing.assert_array_equal(np.concatenate(groups), np.flatnonzero(row_chunks))
    assert 1 <= len(groups) <= n_groups
    sizes = [sum(row_chunks[b] for b in group) for group in groups]
    assert min(sizes) > 0
    # Each run ends at the block end nearest its share of the codes.
    ends = np.cumsum(row_chunks)
    for share in ends[-1] * np.arange(1, len(groups)) / len(groups):
        nearest = np.abs(ends[np.flatnonzero(row_chunks)] - share).min()
        assert np.abs(np.cumsum(sizes)[:-1] - share).min() == nearest


def test_equal_blocks_make_equal_groups():
    assert [list(g) for g in _groups((10,) * 8, 2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [list(g) for g in _groups((10,) * 9, 3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_one_shard_per_worker(client, monkeypatch):
    rng = np.random.RandomState(0)
    centres = rng.randint(2, size=(6, 32))
    bits = centres[rng.randint(6, size=400)] ^ (rng.rand(400, 32) < 0.05)
    D, Q = pack_codes(bits[:360]), pack_codes(bits[360:])
    y, yq = rng.randint(3, size=360), rng.randint(3, size=40)
    chunks = (45,) * 8
    # Every block on one worker: the shards still go one to each.
    first = sorted(client.nthreads())[0]
    codes = client.persist(da.from_array(D, chunks=(chunks, -1)), workers=[first])
    nn = HammingNeighbors(n_neighbors=5).fit(codes, y)
    local = skhash.HammingNeighbors(n_neighbors=5).fit(D, y)

    np.testing.assert_array_equal(nn.shard_offsets_, [0, 180, 360])
    holders = [
        [worker for worker, keys in client.has_what().items() if shard.key in keys]
        for shard in nn._shards
    ]
    assert all(len(workers) == 1 for workers in holders)
    assert holders[0] != holders[1]  # one shard on each worker

    expected, found = local.kneighbors(Q), nn.kneighbors(Q)
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_array_equal(found[1], expected[1])
    # The database queries itself in its own row chunks, not the shards'.
    distances, indices = nn.kneighbors()
    assert indices.chunks[0] == chunks
    np.testing.assert_array_equal(indices.compute(), local.kneighbors()[1])
    runs = nn.radius_neighbors(radius=3)[1]
    assert runs.chunks[0] == chunks
    for expected_run, run in zip(
        local.radius_neighbors(radius=3)[1], runs.compute(), strict=True
    ):
        np.testing.assert_array_equal(run, expected_run)
    np.testing.assert_array_equal(nn.predict(Q), local.predict(Q))
    assert nn.score(Q, yq) == pytest.approx(local.score(Q, yq), rel=1e-12)
    # Blocks inside a shard query it in rounds too, each leaving its own row
    # out (row 1 of each shard repeats row 0: ties with the query itself).
    D[[1, 181]] = D[[0, 180]]
    nn = HammingNeighbors(n_neighbors=5).fit(client.persist(da.from_array(D, 45)))
    local = skhash.HammingNeighbors(n_neighbors=5).fit(D)
    for radii in [[], [1, 3], [0, 2, 6]]:
        monkeypatch.setattr(HammingNeighbors, "_radii", lambda *_, r=radii: r)
        for k in [1, 5, 200]:
            distances, indices = dask.compute(*nn.kneighbors(n_neighbors=k))
            np.testing.assert_array_equal(distances, local.kneighbors(None, k)[0])
            np.testing.assert_array_equal(indices, local.kneighbors(None, k)[1])


def test_a_join_builds_one_shard_on_each_worker(client):
    D = pack_codes(np.random.RandomState(2).randint(2, size=(200, 16)))
    first = sorted(client.nthreads())[0]
    codes = client.persist(da.from_array(D, chunks=(50, -1)), workers=[first])
    pairs = similarity_join(codes, radius=3)
    found = pairs.compute().sort_values(["left", "right"])
    holders = {
        worker
        for worker, keys in client.has_what().items()
        for key in keys
        if str(key).startswith("build_shard")
    }
    assert holders == set(client.nthreads())
    distances = hamming_distances(D, D)
    left, right = np.nonzero(np.triu(distances <= 3, k=1))
    np.testing.assert_array_equal(found["left"], left)
    np.testing.assert_array_equal(found["right"], right)


def test_a_join_of_no_codes_has_no_pairs(client):
    codes = da.from_array(np.zeros((10, 2), np.uint8), chunks=(5, -1))
    for pairs in [
        similarity_join(codes[:0]),
        similarity_join(codes, codes[:0]),
        similarity_join(codes[:0], codes),
    ]:
        assert len(pairs.compute()) == 0


def test_one_shard_without_a_cluster():
    D = pack_codes(np.random.RandomState(1).randint(2, size=(90, 16)))
    with dask.config.set(scheduler="threads"):
        nn = HammingNeighbors(n_neighbors=3).fit(da.from_array(D, chunks=20))
        np.testing.assert_array_equal(nn.shard_offsets_, [0, 90])
        expected = skhash.HammingNeighbors(n_neighbors=3).fit(D).kneighbors()
        found = dask.compute(*nn.kneighbors())
    np.testing.assert_array_equal(found[1], expected[1])
