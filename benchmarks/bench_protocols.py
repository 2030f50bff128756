"""Retrieval quality under two protocols, with classifier baselines (issue #16).

Fashion-MNIST, pixels scaled to [0, 1], relevance = same class:

- ``standard``: the papers' protocol of :mod:`bench_retrieval` (1,000 queries,
  supervised methods fit on 5,000 labelled images, unsupervised ones on the
  database of 69,000), with :func:`~skhash.datasets.retrieval_split`'s
  shuffled database order;
- ``unseen``: Sablayrolles et al.'s protocol, ``retrieval_split(...,
  unseen_classes=3)``: every method fits on 500 labelled images of each of the
  7 seen classes; queries (100 per class) and database come from the 3 unseen
  classes only.

Each row gives MAP over the database with stable ties (database order) and
with tie-aware ranking (``ties="average"``), MAP@1000 (stable), P@r<=2 and
the fit time. Besides the classical hashers it runs the classifier baselines
(:class:`~skhash.ClassifierCodes`: one-hot codes of logistic regression, an RBF
SVM and an MLP), KSH with every label (``n_labeled=None``) and the deep
hashers with an MLP backbone (32 bits, 20 epochs: CPU-sized, not the CNN rows
of ``retrieval.md``)::

    python benchmarks/bench_protocols.py [--protocols standard unseen] \\
        [--methods ...] [--output FILE]

prints Markdown rows as they come and writes them to ``FILE`` (default
``benchmarks/results/protocols_raw.md``); ``retrieval.md`` quotes them.
"""

import argparse
import os
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from skhash import (
    CCAITQHasher,
    ClassifierCodes,
    CSQHasher,
    DNNHHasher,
    DPNHasher,
    DSHHasher,
    DSTHHasher,
    GreedyHashHasher,
    HashNetHasher,
    ITQHasher,
    KSHHasher,
    LSHHasher,
    OrthoHashHasher,
    SpectralHasher,
    STHHasher,
)
from skhash.datasets import load_fashion_mnist, retrieval_split
from skhash.metrics import mean_average_precision, precision_within_radius

SEED = 0
DEEP = {"backbone": "mlp", "max_epochs": 20, "random_state": SEED}

# name -> (factory(n_bits), supervised, code lengths); a None length means the
# method sets its own (one bit per class).
METHODS = {
    "lsh": (lambda b: LSHHasher(b, random_state=SEED), False, (16, 32, 64)),
    "sh": (lambda b: SpectralHasher(b), False, (16, 32, 64)),
    "itq": (lambda b: ITQHasher(b, random_state=SEED), False, (16, 32, 64)),
    "sth": (
        lambda b: STHHasher(b, n_jobs=-1, random_state=SEED),
        False,
        (16, 32, 64),
    ),
    "cca-itq": (lambda b: CCAITQHasher(b, random_state=SEED), True, (16, 32, 64)),
    "ksh": (lambda b: KSHHasher(b, random_state=SEED), True, (16, 32, 64)),
    "ksh-all-labels": (
        lambda b: KSHHasher(b, n_labeled=None, random_state=SEED),
        True,
        (32,),
    ),
    "clf-logistic": (
        lambda b: ClassifierCodes(estimator=LogisticRegression(max_iter=1000)),
        True,
        (None,),
    ),
    "clf-rbf-svm": (lambda b: ClassifierCodes(estimator=SVC()), True, (None,)),
    "clf-mlp": (
        lambda b: ClassifierCodes(
            estimator=MLPClassifier((256,), max_iter=200, random_state=SEED)
        ),
        True,
        (None,),
    ),
    "hashnet-mlp": (lambda b: HashNetHasher(b, **DEEP), True, (32,)),
    "dsh-mlp": (lambda b: DSHHasher(b, **DEEP), True, (32,)),
    "dnnh-mlp": (lambda b: DNNHHasher(b, **DEEP), True, (32,)),
    "dsth-mlp": (lambda b: DSTHHasher(b, **DEEP), False, (32,)),
    "csq-mlp": (lambda b: CSQHasher(b, **DEEP), True, (32,)),
    "orthohash-mlp": (lambda b: OrthoHashHasher(b, **DEEP), True, (32,)),
    "greedyhash-mlp": (lambda b: GreedyHashHasher(b, **DEEP), True, (32,)),
    "dpn-mlp": (lambda b: DPNHasher(b, **DEEP), True, (32,)),
}
# KSH's many small matrix-vector products thrash with two BLAS threads on a
# loaded 2-core machine; one thread is several times faster there.
ONE_THREAD = {"ksh", "ksh-all-labels"}


def _split(protocol, X, y):
    if protocol == "standard":
        return retrieval_split(
            X, y, n_queries_per_class=100, n_train_per_class=500, random_state=SEED
        )
    return retrieval_split(
        X,
        y,
        n_queries_per_class=100,
        n_train_per_class=500,
        unseen_classes=3,
        random_state=SEED,
    )


def _row(protocol, name, n_bits, hasher, split, fit_seconds):
    queries = hasher.transform(split.X_query)
    database = hasher.transform(split.X_database)
    codes = queries, database, split.y_query, split.y_database
    n_bits = getattr(hasher, "n_bits_", None) or hasher.n_bits
    return [
        protocol,
        name,
        str(n_bits),
        f"{mean_average_precision(*codes):.4f}",
        f"{mean_average_precision(*codes, ties='average'):.4f}",
        f"{mean_average_precision(*codes, k=1000):.4f}",
        f"{precision_within_radius(*codes, radius=2):.4f}",
        f"{fit_seconds:.1f}",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--protocols", nargs="+", default=["standard", "unseen"],
        choices=["standard", "unseen"],
    )  # fmt: skip
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS)
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent / "results" / "protocols_raw.md",
    )
    args = parser.parse_args(argv)
    X, y = load_fashion_mnist(return_X_y=True)
    X = (X / 255).astype(np.float32)
    columns = ["protocol", "method", "bits", "MAP", "MAP tie-aware", "MAP@1000"]
    columns += ["P@r<=2", "fit s"]
    lines = [
        f"{date.today()}, {platform.machine()} with {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average at start "
        f"{os.getloadavg()[0]:.2f}; command: python benchmarks/bench_protocols.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "",
        "| " + " | ".join(columns) + " |",
        "|---|---|" + "---:|" * (len(columns) - 2),
    ]
    print("\n".join(lines[2:]), flush=True)
    for protocol in args.protocols:
        split = _split(protocol, X, y)
        print(
            f"<!-- {protocol}: {len(split.X_query)} queries, database "
            f"{len(split.X_database)}, training set {len(split.X_train)}, "
            f"query classes {sorted(set(split.y_query.tolist()))} -->",
            flush=True,
        )
        for name in args.methods:
            factory, supervised, lengths = METHODS[name]
            for n_bits in lengths:
                hasher = factory(n_bits)
                # In the unseen-class protocol every method fits on the seen
                # classes' training set; in the standard one unsupervised
                # methods fit on the database, as in bench_retrieval.
                train = split.X_database
                if supervised or protocol == "unseen":
                    train = split.X_train
                threads = 1 if name in ONE_THREAD else None
                start = time.perf_counter()
                with threadpool_limits(threads), warnings.catch_warnings():
                    # KSH's notice that it drops labels: the point of its row.
                    warnings.simplefilter("ignore", UserWarning)
                    if supervised:
                        hasher.fit(train, split.y_train)
                    else:
                        hasher.fit(train)
                fit_seconds = time.perf_counter() - start
                row = _row(protocol, name, n_bits, hasher, split, fit_seconds)
                lines.append("| " + " | ".join(row) + " |")
                print(lines[-1], flush=True)
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
