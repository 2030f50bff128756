"""Exact kNN and radius search over 10^9 codes from disk, on one machine.

The reference is Norouzi, Punjani and Fleet's multi-index hashing on 10^9
64-bit codes (TPAMI 2014, Table 3: 788x / 750x / 570x a linear scan for
k = 1 / 10 / 100). Here, on this project's machine (2 cores, 24 GB):

1. ``--codes N`` clustered 64-bit codes are written to a ``.npy`` file: the
   generator of the 10^7 and 10^8 rows of ``knn_index.md`` (centres, every bit
   flipped with probability 0.05), with ``N / 10^4`` centres, so clusters keep
   the size of the 10^8 row's (10^4 centres), compiled so that 10^9 codes take
   a minute rather than the 10 of the NumPy generator;
2. ``HammingNeighbors`` is fitted on the file mapped and saved with
   ``save_index``, which builds the multi-index tables straight into the
   index directory's files (out of core); the source file is then deleted;
3. ``load_index`` reopens the directory mapped; the first search checks the
   tables against the codes; after a batch of other queries (a warm page
   cache, as a service has), kNN k = 1, 10, 100 and a radius search run on
   ``--queries`` queries drawn like the codes, and a scan
   (``algorithm="brute"``) on ``--scan-queries`` of them gives the speed-up
   and checks that both answer the same.

Memory is read from ``/proc/self/status`` every 20 ms: RssAnon (anonymous
memory: what the process allocated) and VmRSS (with the file pages mapped,
which the operating system may drop). Usage::

    python benchmarks/bench_billion.py --codes 1000000000 --dir /work/billion

Results: benchmarks/results/billion.md.
"""

import argparse
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from _machine import cpu_name, status_mib  # beside this script
from numba import njit

from skhash import HammingNeighbors
from skhash.neighbors import load_index, save_index, warm_up

FLIP = 0.05
CODES_PER_CENTRE = 10_000
CHUNK = 10**7


@njit(cache=True, nogil=True)
def _clustered_words(centres, seed, out):
    """64-bit codes around the centres: a centre drawn uniformly, then every
    bit flipped with probability FLIP (the gaps between flips are geometric)."""
    # numba compiles NumPy's legacy random functions, not Generator methods.
    np.random.seed(seed)  # noqa: NPY002
    for i in range(len(out)):
        word = centres[np.random.randint(0, len(centres))]  # noqa: NPY002
        bit = np.random.geometric(FLIP) - 1  # noqa: NPY002
        while bit < 64:
            word ^= np.uint64(1) << np.uint64(bit)
            bit += np.random.geometric(FLIP)  # noqa: NPY002
        out[i] = word


def write_codes(path, n_codes, centres, threads):
    """n_codes clustered codes into a .npy file, a chunk a task."""
    codes = np.lib.format.open_memmap(path, "w+", np.uint8, (n_codes, 8))
    words = codes.view("<u8")[:, 0]

    def chunk(first):
        _clustered_words(centres, 1 + first // CHUNK, words[first : first + CHUNK])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(chunk, range(0, n_codes, CHUNK)))
    codes.flush()


def build(source, directory, n_codes, centres, threads):
    """Write the codes, fit on them mapped and save the index; its rows."""
    start = time.perf_counter()
    write_codes(source, n_codes, centres, threads)
    rows = [("write the codes (8 bytes each)", f"{time.perf_counter() - start:.3g} s")]
    nn = HammingNeighbors(n_jobs=threads).fit(np.load(source, mmap_mode="r"))
    with Peak() as save:
        save_index(nn, directory)
    del nn
    os.remove(source)  # the index directory holds its own copy
    table_gib = os.path.getsize(os.path.join(directory, "multi_index_ids.npy")) / 2**30
    return rows + [
        (
            "save_index: copy the codes, build the tables into files",
            f"{save.seconds:.3g} s",
        ),
        ("tables on disk", f"{table_gib:.1f} GiB"),
        ("peak anonymous memory while saving", f"{save.anonymous:.2f} GiB"),
    ]


class Peak:
    """Peak RssAnon and VmRSS (GiB) while the block runs, sampled every 20 ms."""

    def __enter__(self):
        self.anonymous = self.resident = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.start = time.perf_counter()
        return self

    def _sample(self):
        while True:
            self.anonymous = max(self.anonymous, status_mib("RssAnon") / 1024)
            self.resident = max(self.resident, status_mib("VmRSS") / 1024)
            if self._done.wait(0.02):
                return

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self._done.set()
        self._thread.join()


def same(found, scanned):
    return all(np.array_equal(a, b) for a, b in zip(found, scanned, strict=True))


def same_balls(found, scanned):
    """Radius results equal, each query's neighbours as a set."""
    return all(
        np.array_equal(np.sort(a), np.sort(b))
        for a, b in zip(found[1], scanned[1], strict=True)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10**9)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--scan-queries", type=int, default=10)
    parser.add_argument("--radius", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default="benchmarks/.cache/billion")
    parser.add_argument(
        "--reuse", action="store_true", help="search the index saved by a past run"
    )
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    source = os.path.join(args.dir, "codes.npy")
    directory = os.path.join(args.dir, "index")
    warm_up()
    rows = []
    n_centres = max(1, args.codes // CODES_PER_CENTRE)
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2**64 - 1, n_centres, np.uint64, endpoint=True)
    queries = np.empty(args.queries, np.uint64)
    _clustered_words(centres, 0, queries)
    queries = queries.view(np.uint8).reshape(-1, 8)
    if not args.reuse:
        shutil.rmtree(directory, ignore_errors=True)
        rows += build(source, directory, args.codes, centres, args.threads)
    start = time.perf_counter()
    reopened = load_index(directory)
    rows.append(
        ("load_index (mapped)", f"{(time.perf_counter() - start) * 1e3:.1f} ms")
    )
    with Peak() as check:
        reopened.kneighbors(queries[:1], 10)
    rows.append(
        ("first search: the tables checked against the codes", f"{check.seconds:.3g} s")
    )

    # A service answers from a warm page cache: a first batch of other
    # queries, untimed, pages in what the searches touch most.
    warm = np.empty(args.queries, np.uint64)
    _clustered_words(centres, 10**6, warm)
    with Peak() as warming:
        reopened.kneighbors(warm.view(np.uint8).reshape(-1, 8), 10)
    rows.append(
        (
            f"{len(warm):,} other queries first (k=10, untimed above)",
            f"{warming.seconds:.1f} s",
        )
    )
    scan = HammingNeighbors(algorithm="brute", n_jobs=args.threads)
    scan.fit(reopened.index_.codes)
    sample = queries[: args.scan_queries]
    with Peak() as search:
        results = {}
        for k in (1, 10, 100):
            begin = time.perf_counter()
            results[k] = reopened.kneighbors(queries, k)
            results[k, "rate"] = len(queries) / (time.perf_counter() - begin)
        begin = time.perf_counter()
        ball = reopened.radius_neighbors(queries, args.radius)
        ball_rate = len(queries) / (time.perf_counter() - begin)
    for k in (1, 10, 100):
        begin = time.perf_counter()
        scanned = scan.kneighbors(sample, k)
        scan_rate = len(sample) / (time.perf_counter() - begin)
        found = [part[: len(sample)] for part in results[k]]
        rows.append((
            f"kNN k={k}: multi-index / scan ({len(sample)} queries), identical: "
            f"{same(found, scanned)}",
            f"{results[k, 'rate']:,.0f} / {scan_rate:.2f} q/s = "
            f"**{results[k, 'rate'] / scan_rate:,.0f}x**",
        ))  # fmt: skip
    begin = time.perf_counter()
    scanned = scan.radius_neighbors(sample, args.radius)
    scan_rate = len(sample) / (time.perf_counter() - begin)
    found = [part[: len(sample)] for part in ball]
    per_query = np.mean([len(i) for i in ball[1]])
    rows += [
        (
            f"radius {args.radius} ({per_query:.0f} found a query): multi-index / "
            f"scan, identical: {same_balls(found, scanned)}",
            f"{ball_rate:,.0f} / {scan_rate:.2f} q/s "
            f"= **{ball_rate / scan_rate:,.0f}x**",
        ),
        ("peak anonymous memory during the searches", f"{search.anonymous:.2f} GiB"),
        ("peak resident memory (file pages included)", f"{search.resident:.1f} GiB"),
    ]
    print(
        f"\n{args.codes:,} clustered 64-bit codes ({n_centres:,} centres), "
        f"{args.queries:,} queries, {args.threads} threads, {cpu_name()}, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| step | result |\n|---|---|")
    for step, value in rows:
        print(f"| {step} | {value} |")


if __name__ == "__main__":
    main()
