"""Exact kNN by multi-index hashing beside the scans, at 10^7 codes.

Uniform random codes (the scan's case) and clustered codes like learned ones
(10^4 centres, each code a centre with every bit flipped with probability
0.05; the queries drawn the same way), k = 1, 10, 100. Engines, all exact and
identical: FAISS ``IndexBinaryFlat`` (the flat scan), skhash's scan
(``algorithm="brute"``), multi-index (``"multi_index"``) and the automatic
choice (``"auto"``). Each time is the best of a few calls after a first call
that builds the tables (timed apart). Usage::

    python benchmarks/bench_knn_index.py [--codes 10000000] [--bits 64 128]
    python benchmarks/bench_knn_index.py --mapped 100000000

Results: benchmarks/results/knn_index.md.
"""

import argparse
import time

import numpy as np

from skhash import HammingNeighbors
from skhash.neighbors import warm_up


def make_codes(n_codes, n_bits, rng, centres=None, flip=0.05):
    """Uniform codes, or codes around the given centres (bits as uint8 0/1)."""
    n_bytes = n_bits // 8
    if centres is None:
        return rng.integers(0, 256, size=(n_codes, n_bytes), dtype=np.uint8)
    codes = centres[rng.integers(0, len(centres), size=n_codes)]
    for bit in range(n_bits):  # one bit at a time: memory stays at a few arrays
        flips = rng.random(n_codes) < flip
        codes[flips, bit // 8] ^= np.uint8(0x80 >> (bit % 8))
    return codes


def best_time(call, budget=2.0, most=5):
    """Best of up to ``most`` calls, within about ``budget`` seconds."""
    times, spent = [], 0.0
    while len(times) < most and (not times or spent < budget):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return min(times), result


def measure(engines, index, queries, k, n_scan, n_multi):
    """Queries per second of FAISS, the scan, multi-index and auto; checks
    that all give the same neighbours."""
    t_faiss, (f_dist, _) = best_time(lambda: index.search(queries[:n_scan], k))
    t_scan, (s_dist, s_ind) = best_time(
        lambda: engines["brute"].kneighbors(queries[:n_scan], k)
    )
    t_multi, (_, m_ind) = best_time(
        lambda: engines["multi_index"].kneighbors(queries[:n_multi], k)
    )
    t_auto, (_, a_ind) = best_time(lambda: engines["auto"].kneighbors(queries, k))
    assert np.array_equal(f_dist, s_dist)
    assert np.array_equal(m_ind[:n_scan], s_ind)
    assert np.array_equal(a_ind[:n_multi], m_ind)
    return [
        n_scan / t_faiss,
        n_scan / t_scan,
        n_multi / t_multi,
        len(queries) / t_auto,
    ]


NAN = float("nan")


def bench_mapped(n_codes, n_queries, threads, path):
    """10^8-scale rows: a database of clustered 64-bit codes mapped from a file."""
    from _machine import status_mib  # beside this script

    rng = np.random.default_rng(1)
    centres = rng.integers(0, 256, size=(10_000, 8), dtype=np.uint8)
    start = time.perf_counter()
    codes = np.lib.format.open_memmap(path, "w+", np.uint8, (n_codes, 8))
    for first in range(0, n_codes, 10**7):  # in slices: memory stays bounded
        last = min(first + 10**7, n_codes)
        codes[first:last] = make_codes(last - first, 64, rng, centres)
    codes.flush()
    del codes
    queries = make_codes(n_queries, 64, rng, centres)
    print(
        f"\n{n_codes:,} codes written to {path} in {time.perf_counter() - start:.0f} s"
    )
    database = np.load(path, mmap_mode="r")
    anonymous = status_mib("RssAnon", NAN)
    nn = HammingNeighbors(n_jobs=threads).fit(database)
    start = time.perf_counter()
    nn.kneighbors(queries[:1], 10)
    build = time.perf_counter() - start
    tables = nn.index_._engines["multi_index"]
    table_mib = (tables.offsets.nbytes + tables.ids.nbytes) / 2**20
    t_auto, (_, found) = best_time(lambda: nn.kneighbors(queries, 10))
    scan = HammingNeighbors(algorithm="brute", n_jobs=threads).fit(database)
    n_scan = 10
    t_scan, (_, scanned) = best_time(lambda: scan.kneighbors(queries[:n_scan], 10))
    assert np.array_equal(found[:n_scan], scanned)
    print("\n| quantity | value |\n|---|---|")
    print(f"| database | {n_codes:,} x 64-bit clustered codes, mapped from disk |")
    print(f"| first kNN call (builds the tables) | {build:.1f} s |")
    print(f"| table memory | {table_mib:,.0f} MiB |")
    print(f"| kNN k=10, auto, {n_queries:,} queries | {n_queries / t_auto:,.0f} q/s |")
    print(f"| kNN k=10, scan, {n_scan} queries | {n_scan / t_scan:,.1f} q/s |")
    grown = status_mib("RssAnon", NAN) - anonymous
    print(f"| anonymous memory added by fit and search | {grown:,.0f} MiB |")
    peak = status_mib("VmHWM", NAN)
    print(f"| peak resident memory (file pages included) | {peak:,.0f} MiB |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--bits", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--mapped",
        type=int,
        metavar="N",
        help="instead: N clustered codes in a file, searched mapped (10^8 rows)",
    )
    parser.add_argument("--path", default="benchmarks/.cache/mapped_codes.npy")
    args = parser.parse_args()
    if args.mapped:
        warm_up()
        return bench_mapped(args.mapped, args.queries, args.threads, args.path)
    import faiss

    warm_up()
    faiss.omp_set_num_threads(args.threads)
    print(f"{args.codes:,} codes, {args.queries:,} queries, {args.threads} threads")
    print(
        "\n| bits | codes | k | FAISS flat q/s | scan q/s | multi-index q/s "
        "| auto q/s | multi-index / FAISS | multi-index / scan | auto / scan |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n_bits in args.bits:
        rng = np.random.default_rng(n_bits)
        centres = rng.integers(0, 256, size=(10_000, n_bits // 8), dtype=np.uint8)
        for kind in ("uniform", "clustered"):
            spread = None if kind == "uniform" else centres
            database = make_codes(args.codes, n_bits, rng, spread)
            queries = make_codes(args.queries, n_bits, rng, spread)
            index = faiss.IndexBinaryFlat(n_bits)
            index.add(database)
            engines = {
                name: HammingNeighbors(algorithm=name, n_jobs=args.threads).fit(
                    database
                )
                for name in ("brute", "multi_index", "auto")
            }
            start = time.perf_counter()
            engines["multi_index"].kneighbors(queries[:1], 1)
            build = time.perf_counter() - start
            tables = engines["multi_index"].index_._engines["multi_index"]
            table_mib = (tables.offsets.nbytes + tables.ids.nbytes) / 2**20
            engines["auto"].index_._engines["multi_index"] = tables  # built once
            engines["brute"].kneighbors(queries[:1], 1)  # word-major copy
            print(
                f"<!-- {n_bits} bits {kind}: tables built in {build:.1f} s, "
                f"{table_mib:.0f} MiB -->"
            )
            # The flat scans take a prefix of the queries (rates per query);
            # so does forced multi-index on uniform codes, its slow case.
            n_scan = max(20, min(args.queries, 2 * 10**9 // args.codes))
            n_multi = n_scan if kind == "uniform" else args.queries
            for k in args.ks:
                rates = measure(engines, index, queries, k, n_scan, n_multi)
                print(
                    f"| {n_bits} | {kind} | {k} | "
                    + " | ".join(f"{r:,.0f}" for r in rates)
                    + f" | {rates[2] / rates[0]:.1f}x | {rates[2] / rates[1]:.1f}x"
                    + f" | {rates[3] / rates[1]:.2f}x |"
                )
            del engines, index, database


if __name__ == "__main__":
    main()
