"""The 256-bit radius workload: radius 31 on 256-bit codes, beside FAISS.

Image-matching systems hash images with PDQ (256-bit perceptual hashes) and
call two images a match within 31 bits, so they run radius search at radius
31 on 256-bit codes; Meta's ThreatExchange measured FAISS
``IndexBinaryMultiHash`` at 18-33x ``IndexBinaryFlat`` there. This benchmark
times that search at 10^5, 10^6 and 10^7 codes (issue #24).

Data: clustered 256-bit codes, the generator of ``bench_knn_index.py``
(``make_codes``: a random centre per code, every bit flipped with probability
``--flip``, 0.05 by default), with one centre per ``--per-centre`` (100)
codes, so the number of centres grows with N and a cluster stays about 100
variants of one image. Two variants of a centre differ by Binomial(256,
2p(1-p)) bits, mean 24 at p = 0.05: most of a cluster is within 31 bits of
its other members. Queries alternate (so any prefix is half and half): a new
variant of a database centre (a re-upload of a known image), then a uniform
random code (an image not in the database, which matches nothing).

Engines, every one exact, their neighbour sets checked identical (sorted per
query) to skhash's on the queries they ran:

- skhash ``HammingNeighbors`` with ``algorithm="multi_index"`` and ``"auto"``
  (``radius_neighbors``: one array per query) and ``radius_neighbors_graph``
  (one CSR matrix, like FAISS's ``range_search`` result), ``n_jobs`` 1 and 2,
  on all queries (a thread takes at least 2,048 queries);
- FAISS ``IndexBinaryMultiHash(256, nhash, b)`` with ``nflip = 31 // nhash``
  (exact by pigeonhole: the indexed substrings are disjoint, so a code within
  31 bits is within ``31 // nhash`` of the query on one of them), every
  shape ``b = 256 // nhash`` whose b is among the nearest to log2(N)
  (``--shapes``, fewer at 10^7 where each ``add`` takes minutes), each
  reported and the fastest taken as "best MultiHash", on a prefix of the
  queries;
- FAISS ``IndexBinaryFlat.range_search`` on a prefix (about 2 * 10^9
  query-code pairs).

FAISS runs with ``faiss.omp_set_num_threads`` equal to skhash's ``n_jobs``.
Builds (skhash's first call, which builds the multi-index tables; FAISS's
``add``) are timed apart from the searches, with the resident memory they add.
Each search time is the best of up to five calls within about two seconds (a
longer call runs once). About 20 minutes on 2 cores, half of it FAISS
MultiHash's ``add`` at 10^7::

    python benchmarks/bench_radius256.py

writes ``benchmarks/results/radius256.md``; ``--sizes 100000`` runs one size
(under a minute).
"""

import argparse
import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_knn_index import best_time, make_codes
from bench_search import PeakMemory, cpu_times, machine, markdown

import skhash
from skhash import HammingNeighbors
from skhash.neighbors import warm_up

RESULTS = Path(__file__).parent / "results" / "radius256.md"
N_BITS, RADIUS = 256, 31
# Query-code pairs the flat scan is timed on (a second or two for FAISS).
SCAN_PAIRS = 2 * 10**9


def make_data(n_codes, n_queries, per_centre, flip, seed=0):
    """Clustered database; queries alternate a new variant of a database
    centre and a uniform random code."""
    rng = np.random.default_rng(seed)
    n_bytes = N_BITS // 8
    centres = rng.integers(0, 256, size=(max(1, n_codes // per_centre), n_bytes))
    centres = centres.astype(np.uint8)
    database = make_codes(n_codes, N_BITS, rng, centres, flip)
    queries = np.empty((n_queries, n_bytes), np.uint8)
    queries[0::2] = make_codes(len(queries[0::2]), N_BITS, rng, centres, flip)
    queries[1::2] = make_codes(len(queries[1::2]), N_BITS, rng)
    return database, queries


def canonical(indptr, indices, distances):
    """Each query's neighbours sorted by index, with their distances."""
    indptr = np.asarray(indptr, np.int64)
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.lexsort((indices, rows))
    return indptr, np.asarray(indices)[order], np.asarray(distances)[order]


def same(found, expected, name):
    for a, b in zip(found, expected, strict=True):
        assert np.array_equal(a, b), f"{name}: neighbours differ from skhash's"


def prefix(expected, n):
    indptr, indices, distances = expected
    return indptr[: n + 1], indices[: indptr[n]], distances[: indptr[n]]


def from_arrays(distances, indices):
    """radius_neighbors' per-query arrays as one CSR triple."""
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in indices])])
    flat = np.concatenate(list(indices)) if len(indices) else np.empty(0)
    dist = np.concatenate(list(distances)) if len(distances) else np.empty(0)
    return canonical(indptr, flat, dist)


def release():
    """Give freed heap back to the system, so that the next build's resident
    memory is measured from a clean base."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def multihash_shapes(n_codes, count):
    """The ``count`` shapes (nhash, b = 256 // nhash) with b nearest log2(N)."""
    target = np.log2(n_codes)
    shapes = {(n_hash, N_BITS // n_hash) for n_hash in range(8, 33)}
    return sorted(shapes, key=lambda s: (abs(s[1] - target), -s[1]))[:count]


def bench_size(n_codes, args, threads, faiss):
    """Rows (every engine) and the MultiHash layouts tried, at one N."""
    start = time.perf_counter()
    database, queries = make_data(n_codes, args.queries, args.per_centre, args.flip)
    print(f"N={n_codes:,}: data in {time.perf_counter() - start:.0f} s", flush=True)
    n_queries = len(queries)
    big = n_codes >= 10**7
    n_multihash = min(n_queries, args.faiss_queries_10m if big else args.faiss_queries)
    n_scan = min(n_queries, max(100, SCAN_PAIRS // n_codes))
    rows = []

    def row(engine, n_jobs, used, seconds, build="", memory=None):
        rows.append(
            {
                "N": n_codes,
                "threads": n_jobs,
                "engine": engine,
                "queries": used,
                "queries/s": used / seconds,
                "build s": build,
                "build MiB": memory,
            }
        )
        print(rows[-1], flush=True)

    # skhash: one fit; the first call builds the tables (algorithm and
    # n_jobs are read at each search, so set_params switches them).
    release()
    with PeakMemory() as memory:
        start = time.perf_counter()
        nn = HammingNeighbors(algorithm="multi_index", n_jobs=1).fit(database)
        nn.radius_neighbors(queries[:1], RADIUS)
        build = time.perf_counter() - start
    auto_uses = "multi_index" if nn.index_.uses_multi_index(RADIUS, "auto") else "brute"
    expected = None
    for n_jobs in threads:
        for algorithm in ("multi_index", "auto"):
            nn.set_params(algorithm=algorithm, n_jobs=n_jobs)
            seconds, (dist, ind) = best_time(
                lambda nn=nn: nn.radius_neighbors(queries, RADIUS)
            )
            found = from_arrays(dist, ind)
            if expected is None:
                expected = found
            same(found, expected, f"skhash {algorithm}")
            name = f"skhash {algorithm}" + (
                f" (chose {auto_uses})" if algorithm == "auto" else ""
            )
            first = n_jobs == threads[0] and algorithm == "multi_index"
            row(name, n_jobs, n_queries, seconds, f"{build:.2f}" if first else "",
                memory.extra_mb if first else None)  # fmt: skip
        seconds, graph = best_time(
            lambda nn=nn: nn.radius_neighbors_graph(queries, RADIUS, mode="distance")
        )
        graph.sort_indices()
        same((graph.indptr, graph.indices, graph.data), expected, "skhash graph")
        row("skhash auto, radius_neighbors_graph", n_jobs, n_queries, seconds)
    del nn
    indptr = expected[0]
    found = np.diff(indptr)
    near = found[0::2]
    stats = {
        "N": n_codes,
        "centres": max(1, n_codes // args.per_centre),
        "results/query": indptr[-1] / n_queries,
        "near queries: results/query": near.mean(),
        "near queries with a match": (near > 0).mean(),
        "random queries: results/query": found[1::2].mean(),
        "skhash build": f"{build:.2f} s, {memory.extra_mb:,.0f} MiB",
    }

    release()
    with PeakMemory() as memory:
        start = time.perf_counter()
        flat = faiss.IndexBinaryFlat(N_BITS)
        flat.add(database)
        build = time.perf_counter() - start
    for n_jobs in threads:
        faiss.omp_set_num_threads(n_jobs)
        seconds, result = best_time(
            lambda flat=flat: flat.range_search(queries[:n_scan], RADIUS + 1)
        )
        same(canonical(result[0], result[2], result[1]),
             prefix(expected, n_scan), "FAISS flat")  # fmt: skip
        row("faiss IndexBinaryFlat", n_jobs, n_scan, seconds,
            f"{build:.2f}" if n_jobs == threads[0] else "",
            memory.extra_mb if n_jobs == threads[0] else None)  # fmt: skip
    del flat

    layouts = []
    best = {}
    shapes = multihash_shapes(n_codes, args.shapes_10m if big else args.shapes)
    for n_hash, bits in shapes:
        release()
        with PeakMemory() as memory:
            start = time.perf_counter()
            index = faiss.IndexBinaryMultiHash(N_BITS, n_hash, bits)
            index.nflip = RADIUS // n_hash
            index.add(database)
            build = time.perf_counter() - start
        name = f"faiss MultiHash {n_hash}x{bits}, nflip={index.nflip}"
        layout = {"N": n_codes, "layout": name, "build s": build,
                  "build MiB": memory.extra_mb, "queries": n_multihash}  # fmt: skip
        for n_jobs in threads:
            faiss.omp_set_num_threads(n_jobs)
            seconds, result = best_time(
                lambda index=index: index.range_search(
                    queries[:n_multihash], RADIUS + 1
                )
            )
            same(canonical(result[0], result[2], result[1]),
                 prefix(expected, n_multihash), name)  # fmt: skip
            layout[f"queries/s, {n_jobs} thread(s)"] = n_multihash / seconds
            if n_jobs not in best or seconds < best[n_jobs][1]:
                best[n_jobs] = (name, seconds, f"{build:.2f}", memory.extra_mb)
        layouts.append(layout)
        print(layout, flush=True)
        del index
    release()
    for n_jobs in threads:
        name, seconds, build, memory_mb = best[n_jobs]
        row(f"best: {name}", n_jobs, n_multihash, seconds, build, memory_mb)

    rows.sort(key=lambda r: r["threads"])  # stable: engines in order
    # Ratios against the same thread count.
    for n_jobs in threads:
        mine = [r for r in rows if r["threads"] == n_jobs]
        multihash = next(r for r in mine if r["engine"].startswith("best"))
        flat = next(r for r in mine if r["engine"] == "faiss IndexBinaryFlat")
        for r in mine:
            r["x best MultiHash"] = r["queries/s"] / multihash["queries/s"]
            r["x flat"] = r["queries/s"] / flat["queries/s"]
    return rows, layouts, stats


def source_state():
    """The commit, and the files of skhash/ changed from it at the start."""
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        ).stdout  # fmt: skip
        changed = run("status", "--porcelain", "--", "../skhash").splitlines()
        changed = ", ".join(line[3:] for line in changed) or "none"
        commit = run("rev-parse", "--short", "HEAD").strip()
        return f"commit {commit}; skhash/ files changed from it: {changed}"
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--faiss-queries", type=int, default=2_000)
    parser.add_argument("--faiss-queries-10m", type=int, default=1_000)
    parser.add_argument("--shapes", type=int, default=6)
    parser.add_argument("--shapes-10m", type=int, default=3)
    parser.add_argument("--per-centre", type=int, default=100)
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    import faiss
    import numba

    source = source_state()
    load_before, steal_before = os.getloadavg(), cpu_times()
    started = time.time()
    warm_up()
    parse = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    threads = parse(args.threads)
    rows, layouts, stats = [], [], []
    for n_codes in parse(args.sizes):
        size_rows, size_layouts, size_stats = bench_size(n_codes, args, threads, faiss)
        rows += size_rows
        layouts += size_layouts
        stats.append(size_stats)
    load_after, steal_after = os.getloadavg(), cpu_times()
    stolen = (steal_after[0] - steal_before[0]) / max(
        1, steal_after[1] - steal_before[1]
    )
    minutes = (time.time() - started) / 60
    summary = [
        {
            "N": r["N"],
            "threads": r["threads"],
            "skhash auto q/s": r["queries/s"],
            "best MultiHash": next(
                m["engine"][len("best: faiss MultiHash ") :]
                for m in rows
                if (m["N"], m["threads"]) == (r["N"], r["threads"])
                and m["engine"].startswith("best")
            ),
            "MultiHash q/s": r["queries/s"] / r["x best MultiHash"],
            "flat q/s": r["queries/s"] / r["x flat"],
            "skhash / best MultiHash": r["x best MultiHash"],
            "skhash / flat": r["x flat"],
        }
        for r in rows
        if r["engine"].startswith("skhash auto (")
    ]
    row_columns = ["N", "threads", "engine", "queries", "queries/s", "build s"]
    row_columns += ["build MiB", "x best MultiHash", "x flat"]
    layout_columns = ["N", "layout", "queries", "build s", "build MiB"]
    layout_columns += [f"queries/s, {n} thread(s)" for n in threads]
    command = " ".join(["python benchmarks/bench_radius256.py", *sys.argv[1:]])
    text = f"""# The 256-bit radius workload: radius 31, skhash beside FAISS

Written by `{command}`
({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))}, {minutes:.0f} min).
Machine: {machine()}; load average (1, 5, 15 min) {load_before[0]:.2f},
{load_before[1]:.2f}, {load_before[2]:.2f} before and {load_after[0]:.2f},
{load_after[1]:.2f}, {load_after[2]:.2f} after; the hypervisor took {stolen:.0%} of the
CPU time during the run (steal time). Other processes share the cores: compare
rows of this run. skhash {skhash.__version__} ({source}), numba
{numba.__version__}, faiss {faiss.__version__}, NumPy {np.__version__}.

Data: {N_BITS}-bit codes, one random centre per {args.per_centre} codes, each code a
centre with every bit flipped with probability {args.flip}; {args.queries:,} queries
alternating a new variant of a database centre and a uniform random code.
Radius {RADIUS} (distance <= {RADIUS}; FAISS's `range_search(q, {RADIUS + 1})`).
Every engine's neighbour sets (and distances) are checked identical, sorted
per query, to skhash's on the queries it ran.

## Summary

skhash `algorithm="auto"` (`radius_neighbors`) against the fastest exact FAISS
MultiHash layout tried and `IndexBinaryFlat`, at the same thread count.

{markdown(summary, list(summary[0]))}

## Results per query

{markdown(stats, list(stats[0]))}

## Every engine

skhash runs all {args.queries:,} queries (a thread takes at least 2,048).
FAISS MultiHash runs the first {args.faiss_queries:,}
({args.faiss_queries_10m:,} at 10^7), the flat scan the first 2 * 10^9 / N (at
least 100); rates are per query and the prefixes are half near, half random
queries like the whole. "build" is
skhash's first call (it builds the multi-index tables), FAISS's `add`, with the
resident memory it added (the multi-index tables and MultiHash's maps; the
database itself is not counted). x: throughput over that of the best MultiHash
layout and of the flat scan at the same thread count.

{markdown(rows, row_columns)}

## FAISS MultiHash layouts tried

`IndexBinaryMultiHash(256, nhash, b)` with b = 256 // nhash and the exact
nflip = 31 // nhash, the {args.shapes} ({args.shapes_10m} at 10^7) shapes whose b is
nearest log2(N).

{markdown(layouts, layout_columns)}
"""
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
