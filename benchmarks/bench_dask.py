"""skhash.dask on a LocalCluster of 2 worker processes against one process.

Measurements, each side by side in one run (ratios are what carries
over; this machine has 2 cores, so 2 workers of 1 thread against 1 process of
2 threads):

- ``encode``: ITQ codes of 10^7 x 128-d float32 rows (generated on the
  workers, persisted), ``skhash.dask.transform`` against
  ``ITQHasher.transform`` of the same rows in one process; rows/s.
- ``knn``: 10^7 clustered 64-bit codes in 8 partitions; k=10 neighbours of
  1,000 queries with ``skhash.dask.HammingNeighbors(placement="shard")``
  against ``skhash.HammingNeighbors`` on the whole array; the results are
  compared, and the workers' resident memory after the searches, and its
  peak, are read. ``knn-random``: the same with uniformly random codes, where
  every search scans. ``knn-replicate``: the clustered codes, 10,000
  queries, ``placement="replicate"`` (a copy of the index on each worker,
  the queries split between them).
- ``join``: ``skhash.dask.similarity_join`` at radius 2 on 10^7 clustered
  codes; pairs/s.
- ``costs`` (not by default): the figures behind the sharding, measured in
  this process (see :func:`bench_costs`).

Usage::

    python benchmarks/bench_dask.py [--parts encode knn join] [--rows 10000000]

Results: benchmarks/results/dask.md.
"""

import argparse
import time
from functools import partial

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

import skhash
import skhash.dask
from skhash import ITQHasher

N_PARTITIONS = 8


def clustered_codes(n_codes, seed, n_centres=100_000, flip=0.05):
    """64-bit codes around random centres (the centres drawn from seed 0, so
    that every partition shares them), each bit flipped with prob. flip."""
    centres = np.random.default_rng(0).integers(
        0, 2**63, size=n_centres, dtype=np.int64
    )
    rng = np.random.default_rng(seed)
    codes = centres.view(np.uint64)[rng.integers(0, n_centres, size=n_codes)]
    for bit in range(64):
        codes[rng.random(n_codes) < flip] ^= np.uint64(1 << bit)
    return codes.view(np.uint8).reshape(n_codes, 8)


def resident_mib():
    """This process's resident memory and its peak so far, in MiB."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def timed(function, repeats=1):
    """The median time of ``repeats`` calls, and the last result."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), result


def bench_encode(client, n_rows, n_features=128, block=1_000_000):
    rng = np.random.default_rng(0)
    sample = rng.random((100_000, n_features), dtype=np.float32)
    hasher = ITQHasher(64, random_state=0).fit(sample)

    # One process: the same blocks the workers hold, made here one at a time.
    local_seconds = 0.0
    for start in range(0, n_rows, block):
        rows = np.random.default_rng(start).random(
            (min(block, n_rows - start), n_features), dtype=np.float32
        )
        local_seconds += timed(lambda rows=rows: hasher.transform(rows))[0]

    starts = range(0, n_rows, block)
    X = da.concatenate(
        [
            da.from_delayed(
                dask.delayed(_block)(start, min(block, n_rows - start), n_features),
                shape=(min(block, n_rows - start), n_features),
                dtype=np.float32,
            )
            for start in starts
        ]
    ).persist()
    wait(X)
    codes = skhash.dask.transform(hasher, X)
    dask_seconds = timed(lambda: wait(codes.persist()))[0]
    return {
        "rows": n_rows,
        "one process rows/s": n_rows / local_seconds,
        "dask rows/s": n_rows / dask_seconds,
        "ratio": local_seconds / dask_seconds,
    }


def _block(start, n_rows, n_features):
    return np.random.default_rng(start).random((n_rows, n_features), dtype=np.float32)


def random_codes(n_codes, seed):
    return np.random.default_rng(seed).integers(0, 256, (n_codes, 8), dtype=np.uint8)


def codes_on_workers(n_codes, make=clustered_codes):
    """Codes in N_PARTITIONS blocks, each made on a worker by ``make``."""
    size = -(-n_codes // N_PARTITIONS)
    starts = range(0, n_codes, size)
    blocks = [
        da.from_delayed(
            dask.delayed(make)(min(size, n_codes - start), 1 + start),
            shape=(min(size, n_codes - start), 8),
            dtype=np.uint8,
        )
        for start in starts
    ]
    return da.concatenate(blocks).persist(), [(start, size) for start in starts]


def bench_knn(client, n_codes, n_queries=1000, k=10, make=None, placement="shard"):
    make = make or clustered_codes
    codes, blocks = codes_on_workers(n_codes, make)
    wait(codes)
    # The same codes in this process, block by block from the same seeds.
    local_codes = np.concatenate(
        [make(min(size, n_codes - start), 1 + start) for start, size in blocks]
    )
    queries = make(n_queries, seed=0)

    local = skhash.HammingNeighbors(n_neighbors=k, n_jobs=-1).fit(local_codes)
    local.kneighbors(queries[:10])  # compile and build, outside the timing
    local_seconds, (local_d, local_i) = timed(lambda: local.kneighbors(queries), 5)

    fit_seconds, search = timed(
        lambda: skhash.dask.HammingNeighbors(n_neighbors=k, placement=placement).fit(
            codes
        )
    )
    search.kneighbors(queries[:10])
    dask_seconds, (dask_d, dask_i) = timed(lambda: search.kneighbors(queries), 5)
    worker_memory = client.run(resident_mib)
    return {
        "codes": n_codes,
        "queries": n_queries,
        "placement": search.placement_,
        "one process q/s": n_queries / local_seconds,
        "dask q/s": n_queries / dask_seconds,
        "overhead": dask_seconds / local_seconds,
        "fit s": fit_seconds,
        "identical": bool(
            np.array_equal(local_d, dask_d) and np.array_equal(local_i, dask_i)
        ),
        "worker resident, peak MiB": sorted(
            tuple(round(m) for m in memory) for memory in worker_memory.values()
        ),
    }


def bench_join(client, n_codes, radius=2):
    codes, _ = codes_on_workers(n_codes)
    wait(codes)
    # Timed from the call: it builds the shards.
    seconds, n_pairs = timed(
        lambda: len(skhash.dask.similarity_join(codes, radius=radius))
    )
    return {
        "codes": n_codes,
        "radius": radius,
        "pairs": n_pairs,
        "seconds": seconds,
        "pairs/s": n_pairs / seconds,
    }


def bench_costs(client, n_codes, n_queries=1000, k=10):
    """What sharding costs, apart from Dask: one thread's multi-index kNN
    over half the clustered codes and over all of them; its radius-2 search
    (the join's) over a shard of an eighth and of a half; and a Dask round
    trip of two trivial tasks."""
    from skhash.neighbors._multi_index import MultiIndex

    size = -(-n_codes // N_PARTITIONS)
    blocks = [clustered_codes(size, 1 + start) for start in range(0, n_codes, size)]
    queries = clustered_codes(n_queries, seed=0)
    costs = {}
    for name, parts in [("half", N_PARTITIONS // 2), ("all", N_PARTITIONS)]:
        index = MultiIndex(np.concatenate(blocks[:parts]))
        index.kneighbors(queries[:10], k, n_jobs=1)  # compile, build the tables
        costs[f"kNN over {name} s"] = timed(
            lambda index=index: index.kneighbors(queries, k, n_jobs=1), 5
        )[0]
    join_queries = blocks[0][: n_codes // 50]
    for name, parts in [("an eighth", 1), ("a half", N_PARTITIONS // 2)]:
        index = MultiIndex(np.concatenate(blocks[1 : 1 + parts]))
        index.radius_neighbors(join_queries[:10], 2, n_jobs=1, by_dist=False)
        costs[f"radius 2 over {name}, {len(join_queries)} queries s"] = timed(
            lambda index=index: index.radius_neighbors(
                join_queries, 2, n_jobs=1, by_dist=False
            ),
            3,
        )[0]
    nothing = dask.delayed(queries)
    costs["round trip of 2 tasks s"] = timed(
        lambda: dask.compute(*[dask.delayed(len)(nothing) for _ in range(2)]), 20
    )[0]
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", default=["encode", "knn", "knn-random", "join"]
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", default="8GiB")
    args = parser.parse_args()
    benches = {
        "encode": bench_encode,
        "knn": bench_knn,
        "knn-random": partial(bench_knn, make=random_codes),
        "knn-replicate": partial(bench_knn, n_queries=10_000, placement="replicate"),
        "join": bench_join,
        "costs": bench_costs,
    }
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=":0",
            memory_limit=args.memory_limit,
        ) as cluster,
        Client(cluster) as client,
    ):
        print("skhash", skhash.__version__, "dask", dask.__version__)
        for part in args.parts:
            print(part, benches[part](client, args.rows), flush=True)
            client.restart()  # each part starts from empty workers


if __name__ == "__main__":
    main()
