"""Retrieval quality and cost of the hashers under the papers' protocol.

Fashion-MNIST (60,000 + 10,000 images of 28 x 28, pixels scaled to [0, 1]):
1,000 queries (100 per class) are held out; supervised hashers fit on 5,000
labelled images (500 per class) drawn from the rest; unsupervised hashers fit on
the whole database (the 69,000 non-queries); relevance is the class label. MAP
is over the whole database; P@r<=2 is per query, 0 for an empty ball.

This is the main job on Fashion-MNIST (``python -m skhash --dataset
fashion-mnist``); extra arguments pass through (``--hashers``, ``--bits``,
``--epochs``, ``--unsupervised-train``, ``--output``). It needs the dataset
files (``apt-get install dataset-fashion-mnist`` on Debian, or see
``skhash.datasets.load_fashion_mnist``) and takes about half an hour on 2
cores for the classical hashers, most of it STH and KSH::

    python benchmarks/bench_retrieval.py

writes ``benchmarks/results/retrieval.md`` (pass ``--output`` to write
elsewhere).

``--features efficientnet-lite0`` runs the same protocol on the features of
the frozen, ImageNet-pretrained EfficientNet-Lite0 (the ``skhash[pretrained]``
extra): the features of all 70,000 images are computed once, cached in
``benchmarks/.cache``, and every hasher fits on them; the deep hashers train
only their hash head (``backbone="mlp", hidden_layer_sizes=()``), which is the
model a deep hasher with ``backbone=efficientnet_lite0()`` trains, with the
same codes (see ``skhash.deep.extract_features``); ``--head-hidden 256`` puts
one trained 256-unit layer between the features and the hash layer::

    python benchmarks/bench_retrieval.py --features efficientnet-lite0 \\
        --hashers hashnet dsh dnnh dsth csq orthohash greedyhash dpn \\
        --epochs 40 --output results.md
"""

import sys
import time
from pathlib import Path

import numpy as np

from skhash import _cli
from skhash._cli import main

RESULTS = Path(__file__).parent / "results" / "retrieval.md"
CACHE = Path(__file__).parent / ".cache"


def _efficientnet_features():
    """EfficientNet-Lite0 features of Fashion-MNIST (all 70,000 images, in the
    loader's order), computed once and cached."""
    path = CACHE / "fashion-mnist-efficientnet-lite0.npy"
    _, y = _cli._load_fashion_mnist()
    if not path.exists():
        from skhash.deep import efficientnet_lite0, extract_features

        X, _ = _cli._load_fashion_mnist()
        start = time.perf_counter()
        features = extract_features(
            efficientnet_lite0(), X, input_shape=(1, 28, 28), device="cpu"
        )
        print(
            f"EfficientNet-Lite0 features of {len(X)} images: "
            f"{time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        CACHE.mkdir(exist_ok=True)
        np.save(path, features)
    return np.load(path), y


def _head_only(Hasher, hidden_layer_sizes):
    # The frozen backbone's features are the input: the hash head alone trains
    # (with hidden layers between features and hash layer if asked).
    def factory(n_bits, seed, options):
        return Hasher(
            n_bits,
            backbone="mlp",
            hidden_layer_sizes=hidden_layer_sizes,
            max_epochs=options["epochs"],
            random_state=seed,
        )

    return factory


def _use_features(hidden_layer_sizes=()):
    """Run the protocol on a frozen backbone's features: a dataset entry of
    features (the same split, which depends on the labels only) and the deep
    hashers on them."""
    _cli.DATASETS["fashion-mnist"] = (_efficientnet_features, None, 100, 500, 1000)
    for key, (factory, supervised) in list(_cli.DEEP.items()):
        Hasher = type(factory(8, 0, {"input_shape": (1, 28, 28), "epochs": 1}))
        _cli.HASHERS[key] = (_head_only(Hasher, hidden_layer_sizes), supervised)


if __name__ == "__main__":
    argv = sys.argv[1:]
    hidden = ()
    if "--head-hidden" in argv:  # e.g. --head-hidden 256: one hidden layer
        at = argv.index("--head-hidden")
        hidden = (int(argv[at + 1]),)
        del argv[at : at + 2]
    if "--features" in argv:
        at = argv.index("--features")
        if argv[at + 1 : at + 2] != ["efficientnet-lite0"]:
            sys.exit("--features takes one value: efficientnet-lite0")
        _use_features(hidden)
        del argv[at : at + 2]
    sys.exit(main(["--dataset", "fashion-mnist", "--output", str(RESULTS), *argv]))
