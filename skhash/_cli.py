"""The main job: fit hashers, search their codes, print retrieval quality.

``python -m skhash`` splits scikit-learn's digits as the hashing papers do
(held-out queries, a labelled training set, the rest as database), fits each
hasher at each code length, encodes queries and database, searches with
:class:`~skhash.HammingNeighbors` and prints MAP and precision within Hamming
radius 2 as a table.
"""

import argparse
import time

from sklearn.datasets import load_digits

from .classical import (
    CCAITQHasher,
    ITQHasher,
    KSHHasher,
    LSHHasher,
    SpectralHasher,
    STHHasher,
)
from .datasets import retrieval_split
from .metrics import precision_within_radius
from .neighbors import HammingNeighbors

# name -> (factory(n_bits, random_state), supervised)
HASHERS = {
    "lsh": (lambda n_bits, seed: LSHHasher(n_bits, random_state=seed), False),
    "sh": (lambda n_bits, seed: SpectralHasher(n_bits), False),
    "itq": (lambda n_bits, seed: ITQHasher(n_bits, random_state=seed), False),
    "sth": (lambda n_bits, seed: STHHasher(n_bits, random_state=seed), False),
    "cca-itq": (lambda n_bits, seed: CCAITQHasher(n_bits, random_state=seed), True),
    "ksh": (lambda n_bits, seed: KSHHasher(n_bits, random_state=seed), True),
}


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
        help="code lengths (default: 16 32 64; at most 64 for the PCA-based ones)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if any(n_bits < 1 for n_bits in args.bits):
        parser.error("--bits must be positive integers")
    return args


def main(argv=None):
    args = _parse_args(argv)
    X, y = load_digits(return_X_y=True)
    split = retrieval_split(
        X,
        y,
        n_queries_per_class=20,
        n_train_per_class=60,
        random_state=args.random_state,
    )
    print(
        f"digits: {len(split.X_query)} queries against a database of "
        f"{len(split.X_database)}; supervised hashers train on "
        f"{len(split.X_train)} labelled images, unsupervised ones on the database; "
        "relevant = same class"
    )
    header = f"{'hasher':<8} {'bits':>4} {'MAP':>7} {'P@r<=2':>7} {'fit s':>7}"
    print(header)
    print("-" * len(header))
    for name in args.hashers:
        factory, supervised = HASHERS[name]
        for n_bits in args.bits:
            hasher = factory(n_bits, args.random_state)
            start = time.perf_counter()
            if supervised:
                hasher.fit(split.X_train, split.y_train)
            else:
                hasher.fit(split.X_database)
            fit_seconds = time.perf_counter() - start
            database = hasher.transform(split.X_database)
            queries = hasher.transform(split.X_query)
            nn = HammingNeighbors().fit(database, split.y_database)
            mean_ap = nn.score(queries, split.y_query)
            radius = precision_within_radius(
                queries, database, split.y_query, split.y_database, radius=2
            )
            print(
                f"{name:<8} {n_bits:>4} {mean_ap:>7.4f} {radius:>7.4f} "
                f"{fit_seconds:>7.2f}",
                flush=True,
            )
    return 0
