"""skhash on Dask: fit, encode and search collections that do not fit on one
machine, with the results of the single-machine estimators.

Fitted models stay the ordinary skhash estimators. :func:`fit` learns a hasher
from a Dask array and returns the same estimator class, fitted: it pickles,
encodes NumPy arrays and goes into a ``Pipeline`` like any other. The hashers
whose statistics are sums over rows (LSH, ITQ, CCA-ITQ) are fitted exactly,
each pass a reduction over the partitions; the others on a random sample of
rows. :func:`transform` encodes a Dask array or DataFrame lazily, block by
block. Only the search keeps state on the cluster, so only it has a Dask
counterpart class, :class:`HammingNeighbors`, as in dask-ml and cuML: its
shards stay on the workers and its answers are those of
:class:`skhash.HammingNeighbors` fitted on all the codes.
:func:`similarity_join` finds every pair of codes within a Hamming radius,
verified on the original vectors if asked, and :func:`duplicate_groups` goes
on to the groups of near-duplicates. Given DataFrames, results are keyed by
their ids (their index), not by row numbers. :class:`RescoringNeighbors`
rescores the candidates of the sharded search against float vectors kept
on the workers beside them. :func:`save_index` saves a fitted search as a
directory of its shards, which :func:`load_index` reopens on any cluster.

Everything is built with ``dask.array`` and ``dask.delayed``, so it runs on
whatever scheduler is active: a ``distributed.Client`` for a cluster, or
Dask's threads in one process. ``import skhash`` does not import Dask; this
module needs the ``skhash[dask]`` extra.
"""

from ._directory import load_index, save_index
from ._duplicates import duplicate_groups
from ._fit import fit
from ._join import similarity_join
from ._neighbors import HammingNeighbors
from ._rescoring import RescoringNeighbors
from ._transform import transform

__all__ = [
    "HammingNeighbors",
    "RescoringNeighbors",
    "duplicate_groups",
    "fit",
    "load_index",
    "save_index",
    "similarity_join",
    "transform",
]
