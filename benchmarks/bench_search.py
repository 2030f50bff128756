"""Speed of exact Hamming search: skhash beside FAISS and scikit-learn, one run.

kNN: ``HammingNeighbors`` (compiled numba kernels) against FAISS
``IndexBinaryFlat`` and, at 100k codes only (it runs ~250 queries/s),
scikit-learn's brute-force ``NearestNeighbors(metric="hamming")`` on unpacked
bits. Radius: ``HammingNeighbors`` with ``algorithm="auto"`` (multi-index
hashing where its rule says so) against FAISS ``IndexBinaryMultiHash`` (every
exact configuration of two shapes tried, the faster reported) and ``IndexBinaryFlat``'s
``range_search``. Codes are uniform random; queries are database codes with two
bits flipped (so small balls are not empty) and as many random codes. Radius
search gets more queries than kNN (10,000), as a call takes milliseconds;
scans time a prefix of them.

Reported per configuration: queries/s, ns per query-code pair (wall time /
(queries x codes), so lower is better and threads divide it), peak extra
memory (resident set size sampled every millisecond during the call, minus the
size before it; so it counts native allocations that tracemalloc cannot see),
the ratio to FAISS (throughput over FAISS's) and, for the kNN kernel, the ratio
of its time per pair to the popcount limit: the faster of two numba loops that
compute every distance and select nothing (a vectorised popcount sum over the
database words and, for codes of one word, the kNN scan's own loop with a
bound no code meets), each L1-sized chunk eight times so that they measure the
cores, not the memory, on the same threads. Compile or
cache-load time of the kernels and the one-off build of the multi-index tables
are reported apart, never inside the timings. Results of every engine are
checked against skhash's.

Other processes share the machine: compare the rows of one run, and read the
load average in the header. The full grid takes about 25 minutes on 2 cores::

    python benchmarks/bench_search.py

writes ``benchmarks/results/search.md``; ``--quick`` runs a small grid.
"""

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

import skhash
from skhash import HammingNeighbors

RESULTS = Path(__file__).parent / "results" / "search.md"
# Query-code pairs a radius scan is timed on (about a second for FAISS's).
SCAN_PAIRS = 2 * 10**9
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every ms."""

    def __enter__(self):
        self.base = self.peak = rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss())
        self.extra_mb = (self.peak - self.base) / 2**20


def cpu_times():
    """(steal, total) jiffies of all CPUs: time the hypervisor gave elsewhere."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    return fields[7], sum(fields)


def timed(function, repeats=2, budget=1.0, most=10):
    """(best seconds, peak extra MiB, result) over at least ``repeats`` calls,
    more (up to ``most``) while they take under ``budget`` seconds in all.

    The cores of a virtual machine are shared: a call can run at half speed
    when the host is busy, and the best of a few calls is the machine's speed.
    """
    best, peak, spent, calls = np.inf, 0.0, 0.0, 0
    while calls < repeats or (spent < budget and calls < most):
        with PeakMemory() as memory:
            start = time.perf_counter()
            result = function()
            seconds = time.perf_counter() - start
        best, peak = min(best, seconds), max(peak, memory.extra_mb)
        spent, calls = spent + seconds, calls + 1
    return best, peak, result


def make_data(n_codes, n_bits, n_queries, seed=0):
    """Database and queries; even queries are near codes, so any prefix is half."""
    rng = np.random.default_rng(seed)
    n_bytes = n_bits // 8
    database = rng.integers(0, 256, size=(n_codes, n_bytes), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(n_queries, n_bytes), dtype=np.uint8)
    near = queries[::2]
    near[:] = database[rng.integers(0, n_codes, len(near))]
    for _ in range(2):
        bit = rng.integers(0, n_bits, len(near))
        near[np.arange(len(near)), bit // 8] ^= (128 >> (bit % 8)).astype(np.uint8)
    return database, queries


def popcount_limit_ns(words_t, n_jobs, n_codes):
    """ns per pair of the fastest scan with no selection, on n_jobs threads.

    Two loops compute every distance and nothing else: a vectorised popcount
    sum over the database words, and, for codes of one word, the one-word
    kNN loop (XOR, popcount and compare against four query words per load)
    with a bound no code meets. Each L1-sized chunk is scanned 8 times, so
    these time the cores, not the memory.
    """
    from _kernels import popcount_compare, popcount_sum

    from skhash.neighbors._threads import run_blocks

    bounds = np.linspace(0, n_codes, 8 * n_jobs + 1).astype(np.int64)
    blocks = list(zip(bounds[:-1], bounds[1:], strict=True))
    repeats = 8
    loops = [(lambda a, b: popcount_sum(words_t, a, b, repeats), 1)]
    if len(words_t) == 1:
        loops.append((lambda a, b: popcount_compare(words_t, a, b, repeats, -1), 4))
    best = np.inf
    for loop, pairs_per_word in loops:
        for _ in range(5):
            start = time.perf_counter()
            run_blocks(loop, blocks, n_jobs)
            seconds = (time.perf_counter() - start) / repeats / pairs_per_word
            best = min(best, seconds)
    return best / n_codes * 1e9


def faiss_multihash_configs(n_bits, n_codes):
    """The two IndexBinaryMultiHash shapes (nhash, b) nearest b = log2(N) bits.

    Any nhash is exact with nflip = radius // nhash (pigeonhole over the
    indexed bits); substrings near log2(N) bits are the efficient ones.
    """
    target = np.log2(n_codes)
    shapes = {(n_hash, min(32, n_bits // n_hash)) for n_hash in range(1, 33)}
    shapes = [(h, b) for h, b in shapes if 8 <= b and h * b <= n_bits]
    return sorted(shapes, key=lambda shape: abs(shape[1] - target))[:2]


def bench_knn(rows, database, queries, n_bits, ks, threads, args, faiss):
    n_codes, n_queries = len(database), len(queries)
    pairs = n_codes * n_queries
    index = faiss.IndexBinaryFlat(n_bits)
    index.add(database)
    for n_jobs in threads:
        nn = HammingNeighbors(n_jobs=n_jobs).fit(database)
        nn.kneighbors(queries[:2], 2)  # word-major copy of the database
        limit = popcount_limit_ns(nn.index_._engines["numba"].words_t, n_jobs, n_codes)
        for k in ks:
            s_time, s_mem, (s_dist, _) = timed(
                lambda nn=nn, k=k: nn.kneighbors(queries, k)
            )
            faiss.omp_set_num_threads(n_jobs)
            f_time, f_mem, (f_dist, _) = timed(lambda k=k: index.search(queries, k))
            assert np.array_equal(s_dist, f_dist), "FAISS distances differ"
            common = {"N": n_codes, "bits": n_bits, "k": k, "threads": n_jobs}
            for engine, seconds, memory in [
                ("skhash (numba)", s_time, s_mem),
                ("faiss IndexBinaryFlat", f_time, f_mem),
            ]:
                rows.append(
                    {
                        **common,
                        "engine": engine,
                        "queries/s": n_queries / seconds,
                        "ns/pair": seconds / pairs * 1e9,
                        "peak MiB": memory,
                        "x FAISS": f_time / seconds,
                        "x popcount limit": (
                            seconds / pairs * 1e9 / limit
                            if engine.startswith("skhash")
                            else None
                        ),
                    }
                )
            if n_codes <= args.sklearn_max:
                rows.append(sklearn_row(database, queries, n_bits, k, n_jobs))
            print(rows[-1] if n_codes <= args.sklearn_max else rows[-2], flush=True)
        print(f"  popcount limit {limit:.3f} ns/pair, {n_jobs} thread(s)", flush=True)


def sklearn_row(database, queries, n_bits, k, n_jobs):
    from sklearn.neighbors import NearestNeighbors

    from skhash.codes import unpack_codes

    queries = queries[:100]  # ~250 queries/s: 100 are enough
    bits = unpack_codes(database, n_bits).astype(bool)
    nn = NearestNeighbors(n_neighbors=k, metric="hamming", algorithm="brute")
    nn.set_params(n_jobs=n_jobs).fit(bits)
    query_bits = unpack_codes(queries, n_bits).astype(bool)
    seconds, memory, _ = timed(lambda: nn.kneighbors(query_bits), repeats=1, most=1)
    return {
        "N": len(database),
        "bits": n_bits,
        "k": k,
        "threads": n_jobs,
        "engine": "scikit-learn brute (hamming)",
        "queries/s": len(queries) / seconds,
        "ns/pair": seconds / (len(queries) * len(database)) * 1e9,
        "peak MiB": memory,
        "x FAISS": None,
        "x popcount limit": None,
    }


def bench_radius(rows, database, queries, n_bits, radii, threads, faiss):
    n_codes, n_queries = len(database), len(queries)
    # Scans (FAISS flat, skhash's brute algorithm) time a prefix of the
    # queries, about SCAN_PAIRS query-code pairs; rates stay per query.
    n_scan = min(n_queries, max(100, SCAN_PAIRS // n_codes))
    results = {}  # (radius, threads) -> list of (engine, seconds, MiB, build, queries)
    expected = {}  # (radius, number of queries) -> neighbours found
    built = {}
    for n_jobs in threads:
        nn = HammingNeighbors(n_jobs=n_jobs).fit(database)
        for radius in radii:
            nn.index_._engines.update(built)  # tables built once, reported apart
            start = time.perf_counter()
            algorithm = "multi_index" if nn.index_.uses_multi_index(radius) else "brute"
            nn.radius_neighbors(queries[:1], radius)
            build = time.perf_counter() - start
            built = dict(nn.index_._engines)
            used = queries if algorithm == "multi_index" else queries[:n_scan]
            seconds, memory, (_, found) = timed(
                lambda nn=nn, radius=radius, used=used: nn.radius_neighbors(
                    used, radius
                )
            )
            graph_seconds, graph_memory, graph = timed(
                lambda nn=nn, radius=radius, used=used: nn.radius_neighbors_graph(
                    used, radius, mode="distance"
                )
            )
            assert graph.nnz == sum(len(i) for i in found)
            expected[radius, len(used)] = graph.nnz
            expected[radius, n_scan] = graph.indptr[n_scan]
            results[radius, n_jobs] = [
                (f"skhash auto ({algorithm})", seconds, memory, f"{build:.2f} s",
                 len(used)),
                ("skhash graph, CSR", graph_seconds, graph_memory, "", len(used)),
            ]  # fmt: skip
    del built, nn
    flat = faiss.IndexBinaryFlat(n_bits)
    flat.add(database)
    for n_jobs in threads:
        faiss.omp_set_num_threads(n_jobs)
        for radius in radii:
            seconds, memory, result = timed(
                lambda radius=radius, flat=flat: flat.range_search(
                    queries[:n_scan], radius + 1
                )
            )
            assert len(result[2]) == expected[radius, n_scan], "FAISS flat differs"
            results[radius, n_jobs].append(
                ("faiss IndexBinaryFlat", seconds, memory, "", n_scan)
            )
    del flat
    best = {}
    for n_hash, bits in faiss_multihash_configs(n_bits, n_codes):
        index = faiss.IndexBinaryMultiHash(n_bits, n_hash, bits)
        start = time.perf_counter()
        index.add(database)
        add = time.perf_counter() - start
        for n_jobs in threads:
            faiss.omp_set_num_threads(n_jobs)
            for radius in radii:
                index.nflip = radius // n_hash
                seconds, memory, result = timed(
                    lambda radius=radius, index=index: index.range_search(
                        queries, radius + 1
                    )
                )
                assert len(result[2]) == expected[radius, n_queries], (
                    "FAISS MultiHash differs"
                )
                name = f"faiss MultiHash({n_hash}x{bits}, nflip={index.nflip})"
                entry = (name, seconds, memory, f"{add:.2f} s", n_queries)
                if (radius, n_jobs) not in best or seconds < best[radius, n_jobs][1]:
                    best[radius, n_jobs] = entry
        del index
    for (radius, n_jobs), engines in results.items():
        if (radius, n_jobs) in best:
            engines.append(best[radius, n_jobs])
        fastest_faiss = min(e[1] / e[4] for e in engines if e[0].startswith("faiss"))
        for engine, seconds, memory, setup, used in engines:
            rows.append(
                {
                    "N": n_codes,
                    "bits": n_bits,
                    "radius": radius,
                    "threads": n_jobs,
                    "engine": engine,
                    "queries": used,
                    "queries/s": used / seconds,
                    "ns/pair": seconds / (used * n_codes) * 1e9,
                    "found/query": expected[radius, n_scan] / n_scan,
                    "peak MiB": memory,
                    "build": setup,
                    "x best FAISS": fastest_faiss / (seconds / used),
                }
            )
            print(rows[-1], flush=True)


def markdown(rows, columns):
    def cell(value):
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def headline(knn_rows, radius_rows):
    """The issue's two bars, read off this run's rows."""
    lines = []
    for row in knn_rows:
        if row["engine"].startswith("skhash") and (
            row["N"],
            row["bits"],
            row["k"],
        ) == (1_000_000, 64, 100):
            lines.append(
                f"- kNN, 1M x 64 bits, k=100, {row['threads']} thread(s): "
                f"{row['queries/s']:,.0f} queries/s, {row['ns/pair']:.3f} ns/pair, "
                f"{row['x FAISS']:.2f}x FAISS IndexBinaryFlat, "
                f"{row['x popcount limit']:.2f}x the popcount-only loop's time."
            )
    for row in radius_rows:
        if row["engine"].startswith("skhash") and (
            row["N"],
            row["bits"],
            row["radius"],
        ) == (10_000_000, 64, 2):
            lines.append(
                f"- Radius 2, 10M x 64 bits, {row['threads']} thread(s): "
                f"{row['engine']} {row['queries/s']:,.0f} queries/s, "
                f"{row['x best FAISS']:.2f}x the fastest exact FAISS index."
            )
    return "\n".join(lines) or "(not in this run's grid)"


def machine():
    from _machine import cpu_name  # beside this script

    model = cpu_name("unknown CPU")
    flags = open("/proc/cpuinfo").read()
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    # The model name of a virtual machine may hide the core generation; LLVM's
    # name for the host CPU (what numba compiles for) tells it.
    from llvmlite.binding import get_host_cpu_name

    return (
        f"{model} (LLVM: {get_host_cpu_name()}), {os.cpu_count()} cores, {simd}, "
        f"{platform.python_version()}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--bits", default="32,64,128,256")
    parser.add_argument("--k", default="10,100")
    parser.add_argument("--radii", default="0,1,2,3")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--queries-10m", type=int, default=200)
    parser.add_argument("--radius-queries", type=int, default=10_000)
    parser.add_argument("--sklearn-max", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.bits, args.queries = "100000", "64", 200
        args.radius_queries = 1000
    import faiss
    import numba

    from skhash.neighbors import warm_up

    load_before = os.getloadavg()
    steal_before = cpu_times()
    started = time.time()
    start = time.perf_counter()
    compile_seconds = warm_up()
    first_use = time.perf_counter() - start
    parse = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    threads = parse(args.threads)
    knn_rows, radius_rows = [], []
    for n_codes in parse(args.sizes):
        n_queries = args.queries if n_codes < 10_000_000 else args.queries_10m
        for n_bits in parse(args.bits):
            print(f"N={n_codes:,} bits={n_bits}", flush=True)
            database, queries = make_data(
                n_codes, n_bits, max(n_queries, args.radius_queries)
            )
            bench_knn(knn_rows, database, queries[:n_queries], n_bits, parse(args.k),
                      threads, args, faiss)  # fmt: skip
            bench_radius(radius_rows, database, queries[: args.radius_queries],
                         n_bits, parse(args.radii), threads, faiss)  # fmt: skip
            del database, queries
    load_after = os.getloadavg()
    steal_after = cpu_times()
    stolen = (steal_after[0] - steal_before[0]) / max(
        1, steal_after[1] - steal_before[1]
    )
    minutes = (time.time() - started) / 60
    knn_columns = ["N", "bits", "k", "threads", "engine", "queries/s", "ns/pair"]
    knn_columns += ["peak MiB", "x FAISS", "x popcount limit"]
    radius_columns = ["N", "bits", "radius", "threads", "engine", "queries"]
    radius_columns += ["queries/s"]
    radius_columns += ["ns/pair", "found/query", "peak MiB", "build", "x best FAISS"]
    compile_text = ", ".join(f"{k} {v:.2f} s" for k, v in compile_seconds.items())
    text = f"""# Exact Hamming search speed

Written by `python benchmarks/bench_search.py {" ".join(sys.argv[1:])}`
({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))}, {minutes:.0f} min).
Machine: {machine()}; load average (1, 5, 15 min) {load_before[0]:.2f},
{load_before[1]:.2f}, {load_before[2]:.2f} before and {load_after[0]:.2f},
{load_after[1]:.2f}, {load_after[2]:.2f} after; the hypervisor took {stolen:.0%} of the
CPU time during the run (steal time). Other processes share the cores, so
compare rows of this run rather than absolute numbers across runs. Each
time is the best of at least two calls, more (up to ten) while they take under
a second in all.
skhash {skhash.__version__}, numba {numba.__version__}, faiss {faiss.__version__},
NumPy {np.__version__}.

Kernel compile or cache load, paid once per process (never at `import skhash`),
{first_use:.2f} s in all: {compile_text}.

Uniform random codes; {args.queries} kNN queries ({args.queries_10m} at 10M codes)
and {args.radius_queries} radius queries, every other one a database code with two
bits flipped; radius searches that scan (FAISS flat, skhash's brute algorithm)
are timed on the first {SCAN_PAIRS:.0e} / N of them (column "queries"), so
that each call lasts about a second at most. ns/pair = wall time / (queries x
codes). Peak MiB: resident memory sampled every millisecond during the call,
above its level before the call. x FAISS: throughput over FAISS's (higher is
better). x popcount limit: the kernel's time per pair over that of the faster
of two numba loops that compute every distance and select nothing, on the same
threads: a vectorised popcount sum of the database words and, for codes of one
word, the kNN scan's own loop with a bound no code meets (each L1-sized chunk
scanned 8 times, so that they time the cores, not memory). The issue's
estimate of the hardware limit at 64 bits is 0.12 ns/pair on 2 threads.

## Headline numbers

{headline(knn_rows, radius_rows)}

## k nearest neighbours

{markdown(knn_rows, knn_columns)}

## Radius neighbours

"build" is the one-off cost before the first query: skhash's multi-index tables
(with the automatic rule's estimate), FAISS MultiHash's `add`. FAISS MultiHash is
run with the two shapes (nhash tables of b bits) whose b is nearest log2(N), each
with the exact nflip = radius // nhash, and the faster is shown;
x best FAISS is against the fastest FAISS row, flat or MultiHash. skhash is
timed twice: `radius_neighbors` (scikit-learn's output, one array per query
for indices and for distances: two NumPy views a query, ~0.3 us each here,
queries with no neighbour sharing one empty array) and
`radius_neighbors_graph(mode="distance")` (one CSR matrix: flat indices,
distances and row pointers, the same content as FAISS's `range_search` result).

{markdown(radius_rows, radius_columns)}
"""
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
