"""Retrieval quality and cost of every classical hasher under the papers' protocol.

Fashion-MNIST (60,000 + 10,000 images of 28 x 28, pixels scaled to [0, 1]):
1,000 queries (100 per class) are held out; supervised hashers fit on 5,000
labelled images (500 per class) drawn from the rest; unsupervised hashers fit on
the whole database (the 69,000 non-queries); relevance is the class label. MAP
is over the whole database; P@r<=2 is per query, 0 for an empty ball.

This is the main job on Fashion-MNIST (``python -m skhash --dataset
fashion-mnist``); extra arguments pass through (``--hashers``, ``--bits``,
``--unsupervised-train``). It needs the dataset files (``apt-get install
dataset-fashion-mnist`` on Debian, or see ``skhash.datasets.load_fashion_mnist``)
and takes about half an hour on 2 cores, most of it STH and KSH::

    python benchmarks/bench_retrieval.py

writes ``benchmarks/results/retrieval.md``.
"""

import sys
from pathlib import Path

from skhash._cli import main

RESULTS = Path(__file__).parent / "results" / "retrieval.md"

if __name__ == "__main__":
    sys.exit(
        main(["--dataset", "fashion-mnist", "--output", str(RESULTS), *sys.argv[1:]])
    )
