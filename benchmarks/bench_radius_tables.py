"""Radius search over clustered long codes: a radius's own tables of long
hashed substrings against the multi-index's short ones (issue #25).

A radius ``r`` below the multi-index's number of tables minus one probes
``r + 1`` tables exactly. The multi-index's tables cut the codes into
substrings of about ``log2(n)`` bits; ``MultiIndex.radius_tables`` gives the
radius tables of its own, ``r + 1`` substrings as long as the code allows,
hashed into as many buckets. Both are timed here side by side, in one
process and one thread, on the same codes and queries, and their answers
compared.

**Codes**: ``--codes`` clustered 128-bit codes: ``--codes / 1000`` random
centres, each bit of a code flipped from its centre's with probability
``--flip`` (0.05). **Queries**: the first ``--queries`` codes. Reported: the
build time of the tables a radius needs and microseconds per query (the
best of ``--repeats`` searches), for radius 0 to 3.

Usage::

    python benchmarks/bench_radius_tables.py [--codes 300000] [--queries 20000]

Results: benchmarks/results/radius_tables.md.
"""

import argparse
import math
import os
import time

import numpy as np
from _machine import cpu_name  # beside this script

from skhash.neighbors._multi_index import MultiIndex


class ShortSubstrings(MultiIndex):
    """The multi-index as it was: every radius probes its own tables."""

    def radius_tables(self, radius, n_jobs=1):
        plan = self.probe_plan(radius)
        self._ensure_tables(len(plan), n_jobs)
        return self.starts, self.lengths, plan, self.offsets, self.ids, 0


class LongSubstrings(MultiIndex):
    """Long hashed substrings whatever the codes (``MultiIndex`` itself uses
    them only where its first table is crowded)."""

    def crowded(self, n_jobs=1):
        return True


def clustered(n_codes, n_bits, flip, seed):
    rng = np.random.default_rng(seed)
    centres = rng.random((max(1, n_codes // 1000), n_bits)) < 0.5
    bits = centres[rng.integers(0, len(centres), n_codes)]
    bits ^= rng.random((n_codes, n_bits)) < flip
    return np.packbits(bits, axis=1, bitorder="little")


def timed(function, *arguments):
    start = time.perf_counter()
    result = function(*arguments)
    return result, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--bits", type=int, default=128)
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--radii", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    codes = clustered(args.codes, args.bits, args.flip, args.seed)
    queries = codes[: args.queries]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_name()}, "
        f"load average {os.getloadavg()[0]:.2f}; {vars(args)}\n"
    )
    print(
        "| radius | tables probed x bits | build s | us / query | found | "
        "short / long time |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    MultiIndex.warm_up()
    for radius in args.radii:
        rows = {}
        for name, cls in (("short", ShortSubstrings), ("long", LongSubstrings)):
            index = cls(codes)
            tables, build = timed(index.radius_tables, radius)
            seconds = math.inf
            for _ in range(args.repeats):  # the best: the first pays cold caches
                start = time.perf_counter()
                found = index.radius_neighbors(queries, radius, n_jobs=1, by_dist=False)
                seconds = min(seconds, time.perf_counter() - start)
            _, lengths, plan, *_ = tables  # the tables probed: len(plan)
            rows[name] = (lengths[: len(plan)], build, seconds, found)
        short, long = rows["short"], rows["long"]
        for got, want in zip(long[3], short[3], strict=True):
            assert np.array_equal(got, want), "answers differ"
        for name, (lengths, build, seconds, found) in rows.items():
            ratio = f"{short[2] / long[2]:.2f}" if name == "long" else ""
            print(
                f"| {radius} | {name}: {len(lengths)} x {int(lengths[0])} | "
                f"{build:.2f} | {seconds / len(queries) * 1e6:.2f} | "
                f"{len(found[1])} | {ratio} |"
            )
    crowded = MultiIndex(codes).crowded()
    print(f"\nMultiIndex uses the long tables here (first table crowded): {crowded}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
