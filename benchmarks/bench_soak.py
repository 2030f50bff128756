"""Soak: many threads searching one fitted HammingNeighbors, for a long time.

A database of 10^7 clustered 64-bit codes; 1,000 calls (k-nearest, radius,
both graphs) from several Python threads on one fresh object, the first calls
racing to build the lazy structures. Every result is compared with the serial
result of the same query batch, and resident memory is sampled as the calls
go. Usage::

    python benchmarks/bench_soak.py [--codes 10000000] [--calls 1000] [--threads 4]

Results: benchmarks/results/soak.md.
"""

import argparse
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from skhash import HammingNeighbors
from skhash.neighbors import warm_up


def clustered_codes(n_codes, n_centres, rng, flip=0.05):
    """64-bit codes: a random centre each, every bit flipped with prob. flip."""
    centres = rng.integers(0, 2**63, size=n_centres, dtype=np.int64).view(np.uint64)
    codes = centres[rng.integers(0, n_centres, size=n_codes)]
    for bit in range(64):  # one bit at a time keeps memory at a few arrays
        flips = rng.random(n_codes) < flip
        codes[flips] ^= np.uint64(1 << bit)
    return codes.view(np.uint8).reshape(n_codes, 8)


def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def flatten(result):
    """Any search result as a tuple of plain arrays, for comparison."""
    if hasattr(result, "indptr"):
        return (result.indptr, result.indices, result.data)
    arrays = []
    for part in result:
        if part.dtype == object:
            arrays.append(np.concatenate([np.zeros(0), *part]))
            arrays.append(np.array([len(row) for row in part]))
        else:
            arrays.append(part)
    return tuple(arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    warm_up()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    database = clustered_codes(args.codes, 10_000, rng)
    print(f"{args.codes:,} codes made in {time.perf_counter() - start:.1f} s")
    batches = [database[rng.integers(0, args.codes, size=50)] for _ in range(8)]
    searches = {
        "kneighbors k=10": lambda nn, q: nn.kneighbors(q[:5], n_neighbors=10),
        "kneighbors_graph k=10": lambda nn, q: nn.kneighbors_graph(q[:5], 10),
        "radius_neighbors r=2": lambda nn, q: nn.radius_neighbors(q, radius=2),
        "radius_neighbors_graph r=3": lambda nn, q: nn.radius_neighbors_graph(
            q, radius=3, mode="distance"
        ),
    }
    work = list(itertools.product(searches, range(len(batches))))

    start = time.perf_counter()
    serial = HammingNeighbors(n_jobs=1).fit(database)
    expected = {
        (name, b): flatten(searches[name](serial, batches[b])) for name, b in work
    }
    print(f"serial reference of {len(work)} calls: {time.perf_counter() - start:.1f} s")
    del serial

    nn = HammingNeighbors(n_jobs=2).fit(database)  # fresh: nothing built yet
    mismatches, samples, lock = [], [], threading.Lock()
    rss_start = resident_mib()

    def call(i):
        name, b = work[i % len(work)]
        got = flatten(searches[name](nn, batches[b]))
        same = len(got) == len(expected[name, b]) and all(
            np.array_equal(g, e) for g, e in zip(got, expected[name, b], strict=True)
        )
        with lock:
            if not same:
                mismatches.append((i, name, b))
            if i % 100 == 0:
                samples.append((i, resident_mib()))

    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(call, range(args.calls)))
    seconds = time.perf_counter() - start
    search_threads = sum(
        t.name.startswith("skhash-search") for t in threading.enumerate()
    )

    print("\n| quantity | value |\n|---|---|")
    print(f"| database | {args.codes:,} x 64-bit clustered codes |")
    print(f"| calls / Python threads | {args.calls:,} / {args.threads} |")
    print(f"| wall time | {seconds:.1f} s ({args.calls / seconds:.1f} calls/s) |")
    print(f"| mismatches against the serial results | {len(mismatches)} |")
    print(f"| resident memory before the calls | {rss_start:.0f} MiB |")
    print(
        "| resident memory by calls done | "
        + ", ".join(f"{i}: {mib:.0f}" for i, mib in sorted(samples))
        + " MiB |"
    )
    print(f"| skhash search threads alive after | {search_threads} |")
    if mismatches:
        raise SystemExit(f"mismatches: {mismatches[:10]}")


if __name__ == "__main__":
    main()
