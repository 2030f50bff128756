"""The main job: fit hashers, search their codes, print retrieval quality.

``python -m skhash`` fits each hasher at each code length on the training part
of a dataset, encodes held-out queries and the database, searches with
:class:`~skhash.HammingNeighbors` and prints MAP and precision within Hamming
radius 2 as a table.
"""

import argparse
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .classical import LSHHasher
from .metrics import precision_within_radius
from .neighbors import HammingNeighbors

HASHERS = {"lsh": LSHHasher}


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m skhash",
        description="Learning-to-hash retrieval benchmark on scikit-learn's digits.",
    )
    parser.add_argument(
        "--hashers",
        nargs="+",
        default=list(HASHERS),
        choices=list(HASHERS),
        help="hashers to run (default: all)",
    )
    parser.add_argument(
        "--bits",
        nargs="+",
        type=int,
        default=[16, 32, 64],
        help="code lengths (default: 16 32 64)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if any(n_bits < 1 for n_bits in args.bits):
        parser.error("--bits must be positive integers")
    return args


def main(argv=None):
    args = _parse_args(argv)
    X, y = load_digits(return_X_y=True)
    X_db, X_query, y_db, y_query = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=args.random_state
    )
    print(
        f"digits: {len(X_query)} queries against a database of {len(X_db)}; "
        "relevant = same class"
    )
    header = f"{'hasher':<8} {'bits':>4} {'MAP':>7} {'P@r<=2':>7} {'fit s':>7}"
    print(header)
    print("-" * len(header))
    for name in args.hashers:
        for n_bits in args.bits:
            hasher = HASHERS[name](n_bits=n_bits, random_state=args.random_state)
            start = time.perf_counter()
            hasher.fit(X_db, y_db)
            fit_seconds = time.perf_counter() - start
            database = hasher.transform(X_db)
            queries = hasher.transform(X_query)
            nn = HammingNeighbors().fit(database, y_db)
            mean_ap = nn.score(queries, y_query)
            radius = precision_within_radius(queries, database, y_query, y_db, radius=2)
            print(
                f"{name:<8} {n_bits:>4} {mean_ap:>7.4f} {radius:>7.4f} "
                f"{fit_seconds:>7.3f}"
            )
    return 0
