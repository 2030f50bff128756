"""Near-duplicate groups on Dask: a verified self-join, then its connected
components by a tree reduction of spanning forests, never all pairs on one
node."""

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask import delayed
from sklearn.utils._param_validation import validate_params

from ..neighbors._duplicates import (
    PARAMETERS,
    check_verification,
    group_labels,
    spanning_forest,
)
from ._join import join_pairs, row_blocks

__all__ = ["duplicate_groups"]

# Forests merged by each task of the reduction.
SPLIT_EVERY = 8


@validate_params(
    {**PARAMETERS, "codes": "no_validation", "vectors": "no_validation"},
    prefer_skip_nested_validation=True,
)
def duplicate_groups(
    codes,
    *,
    radius,
    vectors=None,
    max_distance=None,
    metric="euclidean",
    algorithm="auto",
    backend="auto",
    n_jobs=None,
):
    """Groups of near-duplicate rows of a Dask collection of codes, lazily.

    The candidate pairs are those of :func:`skhash.dask.similarity_join` of
    ``codes`` with themselves, verified on ``vectors`` on the workers where
    they are found. Rows connected by a chain of pairs form a group, found
    without gathering the pairs: each partition of pairs becomes a spanning
    forest of its rows (at most one edge per row it holds), the forests are
    merged in a tree, ``8`` at a time, each merge again a forest, and every
    block of codes is labelled from the final forest.

    Parameters
    ----------
    codes : dask array or dask DataFrame of shape (n_samples, n_bytes), \
            dtype uint8
        Packed codes; a NumPy array is one block. A DataFrame's columns are
        the code's bytes (as :func:`skhash.dask.transform` makes them) and
        its index holds the rows' ids, which should be unique (rows sharing
        an id fall in one group).
    radius : int
        Candidate pairs are the codes at Hamming distance ``<= radius``. It
        has no default: a fitting radius depends on the number of bits.
    vectors : dask array or dask DataFrame of shape (n_samples, n_features), \
            default=None
        The float vectors the codes were computed from, row for row. Without
        them every candidate pair connects its rows: hash collisions then
        chain unrelated rows into large groups.
    max_distance : float, default=None
        Largest distance of the vectors of a connecting pair; non-negative,
        except for ``metric="inner_product"``. Goes with ``vectors``.
    metric : {"euclidean", "cosine", "inner_product"}, default="euclidean"
        Distance of the vectors: ``||u - v||``, ``1 - cos(u, v)`` or
        ``-u.v``.
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        Search method of the shards, as in :func:`similarity_join`.
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        Search engine of the shards.
    n_jobs : int, default=None
        Threads of each search of a shard, on its worker.

    Returns
    -------
    labels : dask Series
        Named ``"group"``, one partition per block of ``codes``: the group of
        each row, named by its smallest row number (int64, the index being
        the row numbers) or, for a DataFrame, by its smallest id (the index
        being the ids, the DataFrame's divisions kept). The representatives
        (one row kept per group) are the rows whose label is their own row
        or id; a row without a verified partner is a group of its own.

    See Also
    --------
    skhash.neighbors.duplicate_groups : The same groups on one machine.
    similarity_join : The pairs.

    Notes
    -----
    What gathers on one node is the final forest: one edge per row in a
    group of two or more (a row and its group's smallest), so its size is
    the number of duplicated rows, not the number of pairs, which grows as
    the square of a group's size and counts every hash collision before
    verification. Every labelling task receives that forest.

    Examples
    --------
    >>> import dask.array as da
    >>> from skhash.codes import pack_codes
    >>> from skhash.dask import duplicate_groups
    >>> codes = da.from_array(
    ...     pack_codes([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]]),
    ...     chunks=2,
    ... )
    >>> vectors = da.from_array([[0.0, 0.0], [5.0, 0.0], [9.0, 9.0], [0.1, 0.0]])
    >>> labels = duplicate_groups(codes, radius=1, vectors=vectors, max_distance=0.5)
    >>> labels.compute().tolist()
    [0, 1, 2, 0]
    >>> duplicate_groups(codes, radius=1).compute().tolist()
    [0, 0, 2, 0]
    """
    check_verification(vectors, max_distance, metric)
    blocks = row_blocks(codes, "codes")
    search = {"algorithm": algorithm, "backend": backend, "n_jobs": n_jobs}
    verification = () if vectors is None else ((vectors, vectors), max_distance, metric)
    pairs = join_pairs(blocks, None, radius, search, *verification)

    parts = pairs.to_delayed(optimize_graph=False)
    forests = [delayed(_forest)(part) for part in parts]
    while len(forests) > 1:
        forests = [
            delayed(_merge)(*forests[i : i + SPLIT_EVERY])
            for i in range(0, len(forests), SPLIT_EVERY)
        ]
    starts = blocks.starts
    ids = blocks.ids or [None] * (len(starts) - 1)
    parts = [
        delayed(_labels)(forests[0], start, stop, block_ids)
        for start, stop, block_ids in zip(starts[:-1], starts[1:], ids, strict=True)
    ]
    dtype = blocks.ids_dtype
    # Named as the partitions' index is: Parquet writes an unnamed one else.
    name = codes.index.name if isinstance(codes, dd.DataFrame) else None
    meta = pd.Series(
        [], dtype=dtype, index=pd.Index([], dtype=dtype, name=name), name="group"
    )
    if isinstance(codes, dd.DataFrame):
        divisions = codes.divisions
    else:
        # The last division is the last row, included: a trailing empty block
        # has none, and the divisions stay unknown.
        divisions = (*starts[:-1], starts[-1] - 1)
        if np.any(np.diff(divisions) < 0) or starts[-1] == 0:
            divisions = None
    return dd.from_delayed(parts, meta=meta, divisions=divisions, verify_meta=False)


def _forest(pairs):
    """The spanning forest of a partition of pairs."""
    return spanning_forest(pairs["left"].to_numpy(), pairs["right"].to_numpy())


def _merge(*forests):
    """One forest of several: the forest of their edges taken together."""
    nodes, roots = zip(*forests, strict=True)
    return spanning_forest(np.concatenate(nodes), np.concatenate(roots))


def _labels(forest, start, stop, ids):
    """The labels of a block of rows ``start:stop``, whose ids are ``ids``
    (a pandas Index; None: the row numbers)."""
    index = pd.RangeIndex(start, stop) if ids is None else ids
    labels = group_labels(index.to_numpy(), *forest)
    return pd.Series(labels, index=index, name="group", dtype=index.dtype)
