"""Retrieval quality and cost of every hasher under the seed papers' protocol.

Fashion-MNIST (60,000 + 10,000 images of 28 x 28): 1,000 queries (100 per
class) are held out; supervised hashers train on 5,000 labelled images (500 per
class) drawn from the rest; unsupervised hashers train on the whole database
(the 69,000 non-queries) unless ``--unsupervised-train`` caps it; the database
is every non-query image; relevance is the class label. Pixels are scaled to
[0, 1].

Reports per hasher and code length: MAP over the whole database, MAP@1000,
precision within Hamming radius 2 (per query, 0 for an empty ball), fit time
and encoding time (database + queries), as a Markdown table.

Run (about 25 minutes on 2 cores, most of it STH and KSH)::

    python benchmarks/bench_retrieval.py --output benchmarks/results/retrieval.md
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from skhash import (
    CCAITQHasher,
    ITQHasher,
    KSHHasher,
    LSHHasher,
    SpectralHasher,
    STHHasher,
)
from skhash.datasets import load_fashion_mnist, retrieval_split
from skhash.metrics import mean_average_precision, precision_within_radius

# name -> (factory(n_bits, random_state), supervised)
HASHERS = {
    "LSH": (lambda b, rs: LSHHasher(b, random_state=rs), False),
    "SH": (lambda b, rs: SpectralHasher(b), False),
    "ITQ": (lambda b, rs: ITQHasher(b, random_state=rs), False),
    "STH": (lambda b, rs: STHHasher(b, n_jobs=-1, random_state=rs), False),
    "CCA-ITQ": (lambda b, rs: CCAITQHasher(b, random_state=rs), True),
    "KSH": (lambda b, rs: KSHHasher(b, random_state=rs), True),
}


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hashers", nargs="+", default=list(HASHERS), choices=HASHERS)
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument(
        "--unsupervised-train",
        type=int,
        default=None,
        help="train unsupervised hashers on this many database images "
        "(default: the whole database)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--output", type=Path, help="write the table here (Markdown)")
    return parser.parse_args()


def main():
    args = _parse_args()
    X, y = load_fashion_mnist(return_X_y=True)
    X = X.astype(np.float32) / 255
    split = retrieval_split(
        X, y, n_queries_per_class=100, n_train_per_class=500, random_state=args.random_state
    )
    unsupervised_train = split.X_database
    if args.unsupervised_train is not None:
        rng = check_random_state(args.random_state)
        rows = rng.choice(len(split.X_database), args.unsupervised_train, replace=False)
        unsupervised_train = split.X_database[rows]
    print(
        f"Fashion-MNIST: {len(split.X_query)} queries, {len(split.X_database)} "
        f"database images, {len(split.X_train)} labelled training images, "
        f"{len(unsupervised_train)} unsupervised training images",
        flush=True,
    )
    header = (
        "| hasher | bits | MAP | MAP@1000 | P@r<=2 | fit s | encode s |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    print(header, flush=True)
    for name in args.hashers:
        factory, supervised = HASHERS[name]
        for n_bits in args.bits:
            hasher = factory(n_bits, args.random_state)
            start = time.perf_counter()
            if supervised:
                hasher.fit(split.X_train, split.y_train)
            else:
                hasher.fit(unsupervised_train)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            database = hasher.transform(split.X_database)
            queries = hasher.transform(split.X_query)
            encode_seconds = time.perf_counter() - start
            codes = queries, database, split.y_query, split.y_database
            row = (
                f"| {name} | {n_bits} | {mean_average_precision(*codes):.4f} | "
                f"{mean_average_precision(*codes, k=1000):.4f} | "
                f"{precision_within_radius(*codes, radius=2):.4f} | "
                f"{fit_seconds:.1f} | {encode_seconds:.2f} |"
            )
            rows.append(row)
            print(row, flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        machine = f"{platform.machine()}, {platform.python_version()}"
        args.output.write_text(
            "# Retrieval benchmark: Fashion-MNIST, seed papers' protocol\n\n"
            f"Command: `python benchmarks/bench_retrieval.py "
            f"--bits {' '.join(map(str, args.bits))}"
            + (
                f" --unsupervised-train {args.unsupervised_train}"
                if args.unsupervised_train
                else ""
            )
            + f"` (random_state={args.random_state}; {machine}).\n\n"
            + header
            + "\n"
            + "\n".join(rows)
            + "\n"
        )


if __name__ == "__main__":
    main()
