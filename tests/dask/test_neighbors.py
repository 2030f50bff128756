"""skhash.dask.HammingNeighbors answers as skhash.HammingNeighbors on all the codes."""

import gc
import os
import pickle
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import dask  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Future  # noqa: E402
from distributed.scheduler import KilledWorker  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

import skhash  # noqa: E402
from skhash.codes import pack_codes  # noqa: E402
from skhash.dask import HammingNeighbors  # noqa: E402
from skhash.metrics import mean_average_precision  # noqa: E402

# Uneven row blocks and an empty one: four blocks, three shards (see below).
CHUNKS = (37, 0, 200, 63)
QUERY_CHUNKS = (15, 0, 25)
N_BITS = 24


@pytest.fixture(autouse=True, scope="module")
def shard_per_block():
    """Room for four shards per worker: the blocks of these tests then make a
    shard each, as on a cluster of a worker per block, and the merges meet
    three shards rather than two (a replicated index, eight copies).
    test_sharding.py tests the grouping. ``placement="auto"`` shards: these
    small databases would be replicated, and the shards are under test."""
    with pytest.MonkeyPatch.context() as patch:
        workers = skhash.dask._placement._workers
        patch.setattr(skhash.dask._placement, "_workers", lambda: workers() * 4)
        patch.setattr(skhash.dask._placement, "REPLICA_SHARE", 0)
        yield


def _codes(n, seed, clustered):
    rng = np.random.RandomState(seed)
    if clustered:
        # Four centres with sparse flips: many exact ties and duplicate codes.
        centres = rng.randint(2, size=(4, N_BITS))
        bits = centres[rng.randint(4, size=n)] ^ (rng.rand(n, N_BITS) < 0.05)
    else:
        bits = rng.randint(2, size=(n, N_BITS))
    return pack_codes(bits)


@pytest.fixture(scope="module", params=["shard", "replicate"])
def placement(request):
    return request.param


@pytest.fixture(scope="module", params=["random", "clustered"])
def case(request, client, placement):
    clustered = request.param == "clustered"
    rng = np.random.RandomState(0)
    D = _codes(sum(CHUNKS), seed=1, clustered=clustered)
    D[5] = D[250]  # duplicates in two shards, and within one
    D[40] = D[41]
    Q = _codes(sum(QUERY_CHUNKS), seed=2, clustered=clustered)
    Q[:5] = D[[0, 36, 37, 237, 299]]  # exact copies, at the shards' edges
    y, yq = rng.randint(3, size=len(D)), rng.randint(3, size=len(Q))
    Y, Yq = rng.randint(2, size=(len(D), 4)), rng.randint(2, size=(len(Q), 4))
    codes = da.from_array(D, chunks=(CHUNKS, -1))
    return {
        "D": D,
        "Q": Q,
        "y": y,
        "yq": yq,
        "Y": Y,
        "Yq": Yq,
        "local": skhash.HammingNeighbors(n_neighbors=7).fit(D, y),
        "dask": HammingNeighbors(n_neighbors=7, placement=placement).fit(
            codes, da.from_array(y, 50)
        ),
        "local_multi": skhash.HammingNeighbors(n_neighbors=4).fit(D, Y),
        "dask_multi": HammingNeighbors(n_neighbors=4, placement=placement).fit(
            codes, Y
        ),
    }


def _queries(case, kind):
    if kind == "numpy":
        return case["Q"]
    if kind == "dask":
        return da.from_array(case["Q"], chunks=(QUERY_CHUNKS, -1))
    return None  # the database queries itself


def _computed(results, kind, tails, dtypes):
    """Dask answers' values (one computation), once checked lazy, with the
    queries' row chunks and the right dtypes; NumPy answers as they are."""
    for result, tail, dtype in zip(results, tails, dtypes, strict=True):
        if kind is None:  # fitted on a Dask array: answers as one, in its chunks
            assert isinstance(result, da.Array) and result.chunks[0] == CHUNKS
        elif kind == "dask":
            assert isinstance(result, da.Array)
            assert result.chunks == (QUERY_CHUNKS, *((n,) for n in tail))
        else:
            assert isinstance(result, np.ndarray)
        assert result.dtype == dtype
    return dask.compute(*results)


def _assert_runs_equal(expected, found):
    assert expected.dtype == found.dtype == object and len(expected) == len(found)
    for expected_run, found_run in zip(expected, found, strict=True):
        assert expected_run.dtype == found_run.dtype
        np.testing.assert_array_equal(expected_run, found_run)


@pytest.mark.parametrize("kind", ["numpy", "dask", None])
def test_kneighbors_equal_single_machine(case, kind):
    X = _queries(case, kind)
    ks = [1, 7, 36, 150]
    expected = [case["local"].kneighbors(X, n_neighbors=k) for k in ks]
    expected.append(case["local"].kneighbors(X)[1])
    found = [r for k in ks for r in case["dask"].kneighbors(X, n_neighbors=k)]
    found.append(case["dask"].kneighbors(X, return_distance=False))
    tails = [(k,) for k in ks for _ in "di"] + [(7,)]
    dtypes = [np.int32, np.intp] * len(ks) + [np.intp]
    found = _computed(found, kind, tails, dtypes)
    for i in range(len(ks)):
        np.testing.assert_array_equal(found[2 * i], expected[i][0])
        np.testing.assert_array_equal(found[2 * i + 1], expected[i][1])
    np.testing.assert_array_equal(found[-1], expected[-1])


def test_kneighbors_of_the_whole_database(client):
    # Every code asks for all the others: each shard's k is capped at its size
    # (its size less one in the query's own shard).
    D = _codes(30, seed=3, clustered=True)
    codes = da.from_array(D, chunks=((1, 0, 12, 17), -1))
    local = skhash.HammingNeighbors().fit(D)
    expected = [local.kneighbors(None, 29), local.kneighbors(D, 30)]
    # The lazy answers hold the shards: the estimator can go.
    found = [
        HammingNeighbors().fit(codes).kneighbors(None, 29),
        HammingNeighbors().fit(codes).kneighbors(codes, 30),
    ]
    gc.collect()
    found = dask.compute(*found)
    for expected_pair, found_pair in zip(expected, found, strict=True):
        np.testing.assert_array_equal(found_pair[0], expected_pair[0])
        np.testing.assert_array_equal(found_pair[1], expected_pair[1])


@pytest.mark.parametrize("kind", ["numpy", "dask", None])
def test_radius_neighbors_equal_single_machine(case, kind):
    X = _queries(case, kind)
    expected, found = [], []
    for radius in [0, 3, N_BITS]:
        for sort_results in [False, True]:
            options = {"radius": radius, "sort_results": sort_results}
            expected.extend(case["local"].radius_neighbors(X, **options))
            found.extend(case["dask"].radius_neighbors(X, **options))
    expected.append(case["local"].radius_neighbors(X, return_distance=False))
    found.append(case["dask"].radius_neighbors(X, return_distance=False))
    found = _computed(found, kind, [()] * len(found), [object] * len(found))
    for expected_part, found_part in zip(expected, found, strict=True):
        _assert_runs_equal(expected_part, found_part)


@pytest.mark.parametrize("kind", ["numpy", "dask", None])
def test_graphs_equal_single_machine(case, kind):
    X = _queries(case, kind)
    for method, options in [
        ("kneighbors_graph", {"n_neighbors": 5, "mode": "connectivity"}),
        ("kneighbors_graph", {"n_neighbors": 5, "mode": "distance"}),
        ("radius_neighbors_graph", {"radius": 3, "mode": "distance"}),
        ("radius_neighbors_graph", {"radius": 2, "sort_results": True}),
        (
            "radius_neighbors_graph",
            {"radius": 3, "mode": "distance", "sort_results": True},
        ),
    ]:
        expected = getattr(case["local"], method)(X, **options)
        found = getattr(case["dask"], method)(X, **options)
        assert found.format == "csr" and found.shape == expected.shape
        # Explicit zeros (distance 0) and entry order are kept as they are.
        for attribute in ["data", "indices", "indptr"]:
            np.testing.assert_array_equal(
                getattr(found, attribute), getattr(expected, attribute)
            )


@pytest.mark.parametrize("kind", ["numpy", "dask"])
@pytest.mark.parametrize("labels", ["classes", "multi_label"])
def test_predict_equal_single_machine(case, kind, labels):
    suffix = "" if labels == "classes" else "_multi"
    X = _queries(case, kind)
    expected = case["local" + suffix].predict(case["Q"])
    found = case["dask" + suffix].predict(X)
    [found] = _computed([found], kind, [expected.shape[1:]], [expected.dtype])
    np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize("kind", ["numpy", "dask"])
@pytest.mark.parametrize("labels", ["classes", "multi_label"])
def test_score_equal_single_machine(case, kind, labels):
    suffix, y, yq = ("", "y", "yq") if labels == "classes" else ("_multi", "Y", "Yq")
    X = _queries(case, kind)
    y_query = case[yq] if kind == "numpy" else da.from_array(case[yq], chunks=7)
    expected = mean_average_precision(case["Q"], case["D"], case[yq], case[y])
    assert expected == pytest.approx(case["local" + suffix].score(case["Q"], case[yq]))
    score = case["dask" + suffix].score(X, y_query)
    assert isinstance(score, float)
    assert score == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    "algorithm, backend",
    [("brute", "numba"), ("multi_index", "auto"), ("auto", "numpy")],
)
def test_every_search_method_of_the_shards(client, algorithm, backend):
    D = _codes(150, seed=12, clustered=True)
    y = np.array(["cat", "dog", "emu"])[np.arange(150) % 3]
    params = {"n_neighbors": 6, "algorithm": algorithm, "backend": backend}
    local = skhash.HammingNeighbors(**params).fit(D, y)
    nn = HammingNeighbors(**params).fit(da.from_array(D, chunks=((40, 0, 110), -1)), y)
    for expected, found in [
        (local.kneighbors(D[:30]), nn.kneighbors(D[:30])),
        (local.radius_neighbors(D[:30], 3), nn.radius_neighbors(D[:30], 3)),
    ]:
        for expected_part, found_part in zip(expected, found, strict=True):
            if expected_part.dtype == object:
                _assert_runs_equal(expected_part, found_part)
            else:
                np.testing.assert_array_equal(found_part, expected_part)
    np.testing.assert_array_equal(nn.predict(D[:30]), local.predict(D[:30]))


def test_score_counts_queries_with_nothing_relevant_as_zero(client):
    D = _codes(60, seed=4, clustered=True)
    y, yq = np.arange(60) % 2, np.array([0, 1, 7, 7])
    nn = HammingNeighbors().fit(da.from_array(D, chunks=25), y)
    expected = mean_average_precision(D[:4], D, yq, y)
    assert nn.score(D[:4], yq) == pytest.approx(expected, rel=1e-12)


def test_fit_on_a_dask_dataframe_and_numpy(client):
    D = _codes(80, seed=5, clustered=True)
    frame = dd.from_pandas(pd.DataFrame(D), npartitions=3)
    expected = skhash.HammingNeighbors(n_neighbors=4).fit(D).kneighbors(D[:9])
    for codes in [frame, D]:
        nn = HammingNeighbors(n_neighbors=4).fit(codes)
        found = nn.kneighbors(D[:9])
        np.testing.assert_array_equal(found[1], expected[1])
        # Fitted on NumPy, the database queries itself in NumPy.
        assert isinstance(nn.kneighbors()[0], da.Array) is (codes is frame)
    assert len(HammingNeighbors().fit(frame).shard_offsets_) == 4


def test_shards_stay_on_the_workers(client):
    D = _codes(300, seed=6, clustered=False)
    nn = HammingNeighbors().fit(da.from_array(D, chunks=(CHUNKS, -1)))
    np.testing.assert_array_equal(nn.shard_offsets_, [0, 37, 237, 300])
    keys = [shard.key for shard in nn._shards]
    # Futures under distributed: the shards were persisted, not gathered.
    for shard in nn._shards:
        assert isinstance(dict(shard.__dask_graph__())[shard.key], Future)
    held = {key for keys_ in client.has_what().values() for key in keys_}
    assert set(keys) <= held
    # The scheduler knows a shard is as heavy as its codes (at least), so it
    # sends the queries to the shard rather than the shard to the queries.
    nbytes = client.run_on_scheduler(
        lambda dask_scheduler: {k: dask_scheduler.tasks[k].nbytes for k in keys}
    )
    assert nbytes[keys[1]] >= D[37:237].nbytes


def test_threaded_scheduler_without_client():
    D = _codes(120, seed=7, clustered=True)
    y = np.arange(120) % 3
    local = skhash.HammingNeighbors(n_neighbors=3).fit(D, y)
    with dask.config.set(scheduler="threads"):
        nn = HammingNeighbors(n_neighbors=3).fit(da.from_array(D, chunks=50), y)
        assert not isinstance(
            dict(nn._shards[0].__dask_graph__())[nn._shards[0].key], Future
        )
        distances, indices = nn.kneighbors(da.from_array(D[:20], chunks=8))
        np.testing.assert_array_equal(indices.compute(), local.kneighbors(D[:20])[1])
        np.testing.assert_array_equal(nn.predict(D[:20]), local.predict(D[:20]))
        assert nn.score(D[:20], y[:20]) == pytest.approx(local.score(D[:20], y[:20]))


def _slowly(block):
    time.sleep(0.4)
    return block


def test_a_worker_killed_during_a_search_is_retried_or_raises(own_cluster):
    cluster, client = own_cluster
    D = _codes(400, seed=8, clustered=True)
    Q = _codes(40, seed=9, clustered=True)
    expected = skhash.HammingNeighbors().fit(D).kneighbors(Q)
    nn = HammingNeighbors().fit(da.from_array(D, chunks=100))
    # Query blocks that take a while, so that the kill lands mid-search.
    queries = da.from_array(Q, chunks=5).map_blocks(_slowly, dtype=np.uint8)
    futures = client.compute(list(nn.kneighbors(queries)))
    time.sleep(0.6)
    # Killed for good: a nanny restarting its worker makes closing slow.
    nanny = next(iter(cluster.workers.values()))
    nanny.close_gracefully(reason="killed by the test")
    assert client.processing()[nanny.worker_address]  # it was searching
    os.kill(nanny.pid, signal.SIGKILL)
    try:
        found = client.gather(futures)
    except KilledWorker as error:  # Dask gave up on the lost tasks: it says so
        assert "worker" in str(error).lower()
    else:  # Dask recomputed the lost tasks (and shards) elsewhere: all of it
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])


def test_pickled_on_the_same_cluster_answers_as_before(client):
    D = _codes(200, seed=21, clustered=True)
    nn = HammingNeighbors(n_neighbors=3).fit(da.from_array(D, chunks=50))
    expected = nn.kneighbors(D[:10])
    loaded = pickle.loads(pickle.dumps(nn))
    del nn  # the loaded copy alone keeps the shards alive
    gc.collect()
    for _ in range(2):
        found = loaded.kneighbors(D[:10])
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])


def test_pickled_to_another_cluster_is_refused_not_left_hanging(client, own_cluster):
    # Fitted on the session's cluster, loaded where the test's own cluster is
    # current: its shards are not there (the FutureCancelledError).
    D = _codes(200, seed=22, clustered=True)
    with client.as_current():
        blob = pickle.dumps(HammingNeighbors().fit(da.from_array(D, chunks=50)))
    loaded = pickle.loads(blob)
    for _ in range(2):  # refused again, not waiting on shards that never come
        with pytest.raises(RuntimeError, match="not on any cluster"):
            loaded.kneighbors(D[:5])
    with pytest.raises(RuntimeError, match="not on any cluster"):
        skhash.dask.similarity_join(da.from_array(D, chunks=50), loaded)


def test_skops_refuses_a_fitted_one_clearly(client, tmp_path):
    pytest.importorskip("skops")
    from sklearn.pipeline import make_pipeline

    from skhash.persistence import dump

    D = _codes(100, seed=24, clustered=True)
    dump(HammingNeighbors(), tmp_path / "unfitted.skops")  # only parameters
    nn = HammingNeighbors().fit(da.from_array(D, chunks=50))
    for estimator in [nn, make_pipeline(skhash.LSHHasher(n_bits=N_BITS), nn)]:
        with pytest.raises(TypeError, match="HammingNeighbors cannot be saved"):
            dump(estimator, tmp_path / "fitted.skops")


def test_a_closed_cluster_is_refused():
    from distributed import Client, LocalCluster

    D = _codes(100, seed=23, clustered=True)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
        client.as_current(),
    ):
        nn = HammingNeighbors().fit(da.from_array(D, chunks=50))
        nn.kneighbors(D[:5])
    with pytest.raises(RuntimeError, match="its cluster has closed"):
        nn.kneighbors(D[:5])


def test_errors_like_single_machine(client):
    D = _codes(60, seed=10, clustered=False)
    codes = da.from_array(D, chunks=25)
    nn = HammingNeighbors().fit(codes)
    with pytest.raises(NotFittedError):
        HammingNeighbors().kneighbors(D)
    with pytest.raises(InvalidParameterError, match="n_neighbors"):
        HammingNeighbors(n_neighbors=0).fit(codes)
    with pytest.raises(ValueError, match="features"):
        nn.kneighbors(D[:, :2])
    with pytest.raises(ValueError, match="features"):
        nn.kneighbors(codes[:, :2])
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        nn.kneighbors(D, n_neighbors=61)
    with pytest.raises(ValueError, match="n_neighbors < n_samples_fit"):
        nn.kneighbors(n_neighbors=60)
    with pytest.raises(ValueError, match="non-negative integer"):
        nn.radius_neighbors(D, radius=-1)
    with pytest.raises(ValueError, match="return_distance must be True"):
        nn.radius_neighbors(return_distance=False, sort_results=True)
    with pytest.raises(ValueError, match="mode"):
        nn.kneighbors_graph(D, mode="weights")
    with pytest.raises(ValueError, match="needs the database labels"):
        nn.predict(D)
    with pytest.raises(ValueError, match="needs the database labels"):
        nn.score(D, np.zeros(60))
    with pytest.raises(ValueError, match="60 codes but y has 59"):
        HammingNeighbors().fit(codes, np.zeros(59))
    with pytest.raises(ValueError, match="packed binary codes of dtype uint8"):
        HammingNeighbors().fit(codes.astype(np.float64))
    with pytest.raises(ValueError, match="unpacked bits"):
        HammingNeighbors().fit(da.zeros((40, 16), dtype=bool, chunks=10))
    with pytest.raises(ValueError, match="X must be packed binary codes"):
        nn.kneighbors(codes.astype(np.float64))
    # Bytes of 0 and 1 are codes here as on one machine (they once were not).
    wide = pack_codes(np.random.RandomState(11).randint(2, size=(30, 64)))
    single = skhash.HammingNeighbors().fit(wide)
    wide = HammingNeighbors().fit(da.from_array(wide, chunks=10))
    ones = np.ones((10, 8), dtype=np.uint8)
    distances, _ = wide.kneighbors(da.from_array(ones, chunks=5))
    np.testing.assert_array_equal(distances.compute(), single.kneighbors(ones)[0])
    labelled = HammingNeighbors().fit(codes, np.arange(60) % 2)
    with pytest.raises(ValueError, match="both be 1-D class labels"):
        labelled.score(D[:5], np.ones((5, 2)))
    with pytest.raises(ValueError, match="5 query codes but 4 query labels"):
        labelled.score(D[:5], np.ones(4))


def test_parameters_as_scikit_learn_expects():
    # Not walked by the common checks (skhash.dask needs an extra): the
    # parameter checks and clone, which GridSearchCV relies on, here.
    from sklearn.base import clone
    from sklearn.utils.estimator_checks import check_param_validation

    check_param_validation("HammingNeighbors", HammingNeighbors())
    search = HammingNeighbors(n_neighbors=3, radius=1, algorithm="brute")
    assert clone(search).get_params() == search.get_params()
    # The single machine's parameters, and where the database goes.
    single = set(skhash.HammingNeighbors().get_params())
    assert set(search.get_params()) == single | {"placement"}


# k nearest in rounds: radius searches settle the queries with k codes within
# their radius, the shards' k nearest answer the rest. The plan is forced here
# (small databases always plan no round: a scan is cheaper than a round).


@pytest.fixture
def rounds(monkeypatch):
    """Force the radii of the k-nearest rounds."""

    def force(radii):
        monkeypatch.setattr(HammingNeighbors, "_radii", lambda self, k, n: radii)

    return force


def _settled(local, X, k, radii):
    """Rows settled by each radius round, then left to the last round."""
    kth = local.kneighbors(X, n_neighbors=k)[0][:, -1]
    settled, pending = [], np.ones(len(kth), bool)
    for radius in radii:
        settled.append(np.flatnonzero(pending & (kth <= radius)))
        pending &= kth > radius
    return settled, np.flatnonzero(pending)


@pytest.mark.parametrize("kind", ["numpy", "dask", None])
def test_kneighbors_in_rounds_equal_single_machine(case, kind, rounds):
    X = _queries(case, kind)
    schedules = [[0], [1, 3], [0, 2, 5, 9], [N_BITS]]
    ks = [1, 7, 36]
    expected, found, paths = [], [], set()
    for radii in schedules:
        rounds(radii)
        for k in ks:
            expected.append(case["local"].kneighbors(X, n_neighbors=k))
            found.extend(case["dask"].kneighbors(X, n_neighbors=k))
            settled, left = _settled(case["local"], X, k, radii)
            if any(len(rows) for rows in settled):
                paths.add("settled in a round")
            if len(left):
                paths.add("left to the last round")
    tails = [(k,) for _ in schedules for k in ks for _ in "di"]
    found = _computed(found, kind, tails, [np.int32, np.intp] * (len(found) // 2))
    for i, (distances, indices) in enumerate(expected):
        np.testing.assert_array_equal(found[2 * i], distances)
        np.testing.assert_array_equal(found[2 * i + 1], indices)
    # Labels travel with the candidates of every round.
    rounds([1, 3])
    X = case["D"] if kind is None else X
    for suffix in ["", "_multi"]:
        expected = case["local" + suffix].predict(X)
        found = case["dask" + suffix].predict(X)
        [found] = _computed(
            [found], kind or "numpy", [expected.shape[1:]], [expected.dtype]
        )
        np.testing.assert_array_equal(found, expected)
    assert paths == {"settled in a round", "left to the last round"}


def test_rounds_settle_ties_at_the_radius_and_leave_the_rest(client, rounds):
    # The query 0 has 3 codes at distance 1 and 12 at distance 2 (ties at the
    # radius, one code repeated in every shard); the query 1, a filler code
    # with a bit flipped, has its 8th nearest further. k = 8: radius 1
    # settles no query, radius 2 settles query 0 (its 8th is one of the
    # ties), query 1 is left to the last round.
    rng = np.random.RandomState(13)
    bits = rng.randint(2, size=(90, N_BITS))
    bits[:, :4] = 1  # every filler code at least 4 bits from query 0
    near = np.zeros((15, N_BITS), int)
    near[np.arange(3), [5, 9, 20]] = 1
    near[3:, 10] = near[3:, 11] = 1  # one code 12 times
    bits[[2, 7, 31, 33, 40, 41, 44, 60, 61, 75, 80, 88, 89, 15, 55]] = near[
        [3, 4, 0, 5, 6, 7, 1, 8, 9, 10, 11, 12, 13, 14, 2]
    ]
    D = pack_codes(bits)
    Q = pack_codes(
        np.array([np.zeros(N_BITS, int), bits[0] ^ (np.arange(N_BITS) == 0)])
    )
    y = np.arange(90) % 5
    local = skhash.HammingNeighbors(n_neighbors=8).fit(D, y)
    expected = local.kneighbors(Q)
    kth = expected[0][:, -1]
    assert kth[0] == 2 and kth[1] > 2 and (local.kneighbors(Q, 15)[0][0] == 2).sum() > 8
    settled, left = _settled(local, Q, 8, [1, 2])
    assert [list(rows) for rows in settled] == [[], [0]] and list(left) == [1]
    for algorithm in ["auto", "multi_index"]:
        nn = HammingNeighbors(n_neighbors=8, algorithm=algorithm)
        nn.fit(da.from_array(D, chunks=((30, 0, 25, 35), -1)), y)
        for radii in [[1, 2], [2]]:
            rounds(radii)
            found = nn.kneighbors(Q)
            np.testing.assert_array_equal(found[0], expected[0])
            np.testing.assert_array_equal(found[1], expected[1])
            np.testing.assert_array_equal(nn.predict(Q), local.predict(Q))
            for k in [1, 15]:
                want = local.kneighbors(None, k)
                got = dask.compute(*nn.kneighbors(None, k))
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])


def test_rounds_with_tiny_shards_and_the_whole_database(client, rounds):
    D = _codes(30, seed=3, clustered=True)
    codes = da.from_array(D, chunks=((1, 0, 12, 17), -1))
    local = skhash.HammingNeighbors().fit(D)
    nn = HammingNeighbors().fit(codes)
    rounds([0, 4])
    for X, k in [(None, 29), (None, 13), (D, 30), (D[:5], 2)]:
        expected = local.kneighbors(X, k)
        found = dask.compute(*nn.kneighbors(X, k))
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])


def test_rounds_planned_from_the_sample(client, monkeypatch):
    # The plan itself, end to end: with rounds free, the clustered database
    # plans some; the sample is every shard's exact k nearest of its codes.
    monkeypatch.setattr(skhash.dask._rounds, "ROUND_COST", 0.0)
    # 300 clusters of about 10 codes: a query's 6 nearest are in its cluster,
    # a shard's 6 nearest mostly not.
    rng = np.random.RandomState(14)
    centres = rng.randint(2, size=(300, 32))
    bits = centres[rng.randint(300, size=3200)] ^ (rng.rand(3200, 32) < 0.03)
    D, Q = pack_codes(bits[:3000]), pack_codes(bits[3000:])
    chunks = ((1000, 0, 1200, 800), -1)
    nn = HammingNeighbors(n_neighbors=6, algorithm="multi_index")
    nn.fit(da.from_array(D, chunks=chunks))
    local = skhash.HammingNeighbors(n_neighbors=6).fit(D)
    assert nn._radii(6, len(Q)) != []
    expected, found = local.kneighbors(Q), nn.kneighbors(Q)
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_array_equal(found[1], expected[1])

    kth, per_shard = nn._sample
    rows = np.unique(np.linspace(0, len(D) - 1, 128).astype(np.intp))
    k = kth.shape[1]
    np.testing.assert_array_equal(kth, local.kneighbors(None, k)[0][rows])
    for (start, stop), shard_kth in zip(
        [(0, 1000), (1000, 2200), (2200, 3000)], per_shard, strict=True
    ):
        shard = skhash.HammingNeighbors().fit(D[start:stop])
        own = (rows >= start) & (rows < stop)
        np.testing.assert_array_equal(
            shard_kth[own], shard.kneighbors(None, k)[0][rows[own] - start]
        )
        np.testing.assert_array_equal(
            shard_kth[~own], shard.kneighbors(D[rows[~own]], k)[0]
        )


def test_no_sample_where_only_scans(client):
    D = _codes(200, seed=16, clustered=True)
    nn = HammingNeighbors(algorithm="brute").fit(da.from_array(D, chunks=100))
    assert nn._sample is None and nn._radii(5, 10**9) == []


def test_plan_radii():
    from skhash.dask._rounds import plan_radii

    n_bits = 64
    radius = np.arange(n_bits + 1, dtype=float)
    scan = 1e7
    near = np.array([2, 3, 3, 4, 4, 5, 6, 9])
    cheap = 1e3 * 2.0**radius  # each radius twice the one below
    last = np.full(len(near), scan / 2)
    radii = plan_radii(near, last, np.minimum(cheap, scan), scan, 1e3)
    assert radii and radii == sorted(set(radii)) and radii[0] >= 2
    assert radii[-1] < 20  # never as dear as the last round
    # Neighbours far, radius searches as dear as scans: the last round only.
    far = np.full(8, 14)
    assert plan_radii(far, np.full(8, scan), np.full(n_bits + 1, scan), scan, 0) == []
    # Rounds too dear for the few queries of a block.
    assert plan_radii(near, last, cheap, scan, 1e8) == []
    # The shards' k nearest as cheap as a small radius search: no round.
    assert plan_radii(near, np.full(len(near), 1e3), cheap, scan, 1e3) == []
