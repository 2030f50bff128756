"""How STH's rotation weights were chosen: median thresholds against the
rotated eigenmap at each ``eigenvalue_power`` (issue #26).

The eigenmap of each tuning set's database (digits and MNIST-5k, never
Fashion-MNIST, on which the default is checked) is computed once at the
largest code length; median thresholds, and the rotation at each power and
3 rotation seeds, quantise its first ``n_bits`` columns; the SVMs then
encode database and queries as :class:`~skhash.STHHasher` does. Prints
MAP tables (5 minutes here)::

    python benchmarks/bench_sth_rotation.py [--bits 16 32 64]

The estimators themselves, faithful and rotated, beside ITQ, over seeds::

    python benchmarks/bench_protocols.py --protocols standard \
        --methods itq sth sth-median dsth-mlp dsth-mlp-median

Results: ``benchmarks/results/sth_rotation.md``.
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

from skhash import ITQHasher
from skhash.classical._sth import laplacian_eigenmap, rotate_eigenmap
from skhash.classical._svm import fit_linear_svms
from skhash.codes import pack_codes
from skhash.datasets import load_mnist_5k, retrieval_split
from skhash.metrics import mean_average_precision

POWERS = [0.0, 0.5, 0.625, 0.75, 0.875, 1.0]
SEEDS = [0, 1, 2]


def _tuning_sets():
    X, y = load_digits(return_X_y=True)
    yield "digits", X / 16, y, 20
    X, y = load_mnist_5k(return_X_y=True)
    yield "MNIST-5k", X / 255, y, 30


def _svm_map(train_bits, database, queries, split):
    """MAP of the codes of per-bit SVMs trained on `train_bits`."""
    coef = fit_linear_svms(database, train_bits)
    return mean_average_precision(
        pack_codes(queries @ coef >= 0),
        pack_codes(database @ coef >= 0),
        split.y_query,
        split.y_database,
    )


def _tune(bits):
    """MAP of median thresholds, ITQ and each (power, seed) of the rotation."""
    for name, X, y, n_queries in _tuning_sets():
        split = retrieval_split(
            X, y, n_queries_per_class=n_queries, n_train_per_class=None, random_state=0
        )
        database = split.X_database.astype(np.float64)
        # STHHasher's input scaling for its SVMs.
        mean = database.mean(axis=0)
        scale = np.sqrt(np.mean(np.sum((database - mean) ** 2, axis=1)))
        database, queries = (database - mean) / scale, (split.X_query - mean) / scale
        start = time.perf_counter()
        eigenvalues, embedding = laplacian_eigenmap(
            split.X_database.astype(np.float64), max(bits), random_state=0
        )
        print(
            f"\n{name}: {len(queries)} queries, a database of {len(database)}; "
            f"eigenmap of {max(bits)} dimensions in "
            f"{time.perf_counter() - start:.1f} s\n"
        )

        rows = {"median": [], "itq (PCA)": []}
        for n_bits in bits:
            values, vectors = eigenvalues[:n_bits], embedding[:, :n_bits]
            rows["median"].append(
                _svm_map(vectors > np.median(vectors, axis=0), database, queries, split)
            )
            itq = ITQHasher(n_bits, random_state=0).fit(split.X_database)
            rows["itq (PCA)"].append(
                mean_average_precision(
                    itq.transform(split.X_query),
                    itq.transform(split.X_database),
                    split.y_query,
                    split.y_database,
                )
            )
            for power in POWERS:
                for seed in SEEDS:
                    projections, _, _ = rotate_eigenmap(
                        values, vectors, eigenvalue_power=power, random_state=seed
                    )
                    key = f"rotation, power {power}, seed {seed}"
                    rows.setdefault(key, []).append(
                        _svm_map(projections > 0, database, queries, split)
                    )
        header = " | ".join(f"{n} bits" for n in bits)
        print(f"| quantisation | {header} | mean |\n|---|" + "---:|" * (len(bits) + 1))
        for key, maps in rows.items():
            cells = " | ".join(f"{m:.4f}" for m in maps)
            print(f"| {key} | {cells} | {np.mean(maps):.4f} |", flush=True)
        for power in POWERS:
            mean_map = np.mean(
                [rows[f"rotation, power {power}, seed {s}"] for s in SEEDS]
            )
            print(f"power {power}: mean MAP {mean_map:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    _tune(parser.parse_args().bits)
