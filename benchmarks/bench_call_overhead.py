"""What every search call pays besides the search: the check that the database
is unchanged since fit (issue #21), against whole calls of one query and of
10,000 queries at radius 0 (issue #23's speed check of the redesign).

Run it on two trees to compare them (it uses only public API)::

    python benchmarks/bench_call_overhead.py

Prints medians in microseconds; results are quoted in
``benchmarks/results/search_house.md``.
"""

import tempfile
import time
from pathlib import Path

import numpy as np

from skhash import HammingNeighbors
from skhash.neighbors import warm_up


def median_us(call, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e6 * float(np.median(times))


def report(name, database, queries):
    nn = HammingNeighbors(n_jobs=2).fit(database)
    one = queries[:1]
    nn.radius_neighbors(queries, radius=0)  # engines and tables built
    rows = [
        ("1 query, radius 0", lambda: nn.radius_neighbors(one, radius=0), 200),
        ("1 query, k=1", lambda: nn.kneighbors(one, 1), 200),
        ("10,000 queries, radius 0", lambda: nn.radius_neighbors(queries, 0), 15),
        ("  the same, as a graph", lambda: nn.radius_neighbors_graph(queries, 0), 15),
    ]
    index = getattr(nn, "index_", None)  # the trees before #23 have none
    if index is not None:
        check = (lambda: index._snapshot.check(index.codes), 20_000)
        rows.append(("the database check alone", *check))
    for row, call, repeats in rows:
        print(f"{name:9} {row:28} {median_us(call, repeats):10.2f} us")


def main():
    warm_up()
    codes = np.random.default_rng(0).integers(0, 256, (1_000_000, 8), np.uint8)
    queries = codes[:10_000].copy()
    queries[::2, 0] ^= 3
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "codes.npy"
        np.save(path, codes)
        report("in memory", codes, queries)
        report("mapped", np.load(path, mmap_mode="r"), queries)


if __name__ == "__main__":
    main()
