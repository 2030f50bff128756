"""Exact similarity join: every pair of codes within a Hamming radius,
verified on the vectors beside the codes where the pairs are found."""

from dataclasses import dataclass
from itertools import pairwise

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask import delayed
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

from ..codes import check_codes_dtype
from ..neighbors import HammingNeighbors as SingleHammingNeighbors
from ..neighbors._duplicates import PARAMETERS, check_verification
from . import _shards
from ._collections import as_row_blocks, frame_partitions
from ._neighbors import HammingNeighbors
from ._placement import build_shards

__all__ = ["similarity_join"]


@validate_params(
    {
        **PARAMETERS,
        "left": "no_validation",
        "right": "no_validation",
        "radius": [*PARAMETERS["radius"], None],
        "vectors": "no_validation",
        "right_vectors": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def similarity_join(
    left,
    right=None,
    *,
    radius=None,
    vectors=None,
    right_vectors=None,
    max_distance=None,
    metric="euclidean",
    algorithm="auto",
    backend="auto",
    n_jobs=None,
):
    """Every pair of codes within a Hamming radius, exactly, optionally
    verified on the vectors the codes were computed from.

    The codes of ``right`` (of ``left`` for a self-join) make one
    :class:`skhash.HammingNeighbors` shard per worker, as
    :class:`skhash.dask.HammingNeighbors` makes them, and each shard answers a
    radius search for each row block of ``left``; no collection is gathered
    on one node. The shards are built (persisted) at once; the pairs are a
    lazy Dask DataFrame.

    Parameters
    ----------
    left : dask array or dask DataFrame of shape (n_left, n_bytes), dtype uint8
        Packed codes; a NumPy array is one block. A DataFrame's columns are
        the code's bytes (as :func:`skhash.dask.transform` makes them) and
        its index holds the rows' ids.
    right : dask array, dask DataFrame or HammingNeighbors, default=None
        Packed codes of the same width, or a fitted
        :class:`skhash.dask.HammingNeighbors`, whose shards then serve as they
        are (with their own ``algorithm``, ``backend`` and ``n_jobs``).
        ``None`` joins ``left`` with itself: no pair ``(i, i)``, and each
        unordered pair once, with ``left < right`` (in rows).
    radius : int, default=None
        Pairs at Hamming distance ``<= radius``. ``None`` means the fitted
        ``right``'s radius, or 2 (the default of ``HammingNeighbors``).
    vectors : dask array or dask DataFrame of shape (n_left, n_features), \
            default=None
        The float vectors of ``left``'s rows, row for row. Given with
        ``max_distance``, a pair is kept only when its rows' vectors are
        within ``max_distance``: hash collisions are dropped where they are
        found, never shipped. Each block is checked for NaN and infinite
        values on its worker, when the pairs are computed.
    right_vectors : dask array or dask DataFrame of shape (n_right, \
            n_features), default=None
        The vectors of ``right``'s rows (of the fitted database's, for a
        ``HammingNeighbors``); needed with ``vectors`` in a join of two
        collections, an error in a self-join.
    max_distance : float, default=None
        Largest distance of the vectors of a kept pair; non-negative, except
        for ``metric="inner_product"``. Goes with ``vectors``.
    metric : {"euclidean", "cosine", "inner_product"}, default="euclidean"
        Distance of the vectors: ``||u - v||``, ``1 - cos(u, v)`` or
        ``-u.v``.
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        Search method of the shards (see :class:`skhash.HammingNeighbors`):
        ``"auto"`` chooses multi-index hashing per shard when its estimated
        cost is below a scan's.
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        Search engine of the shards.
    n_jobs : int, default=None
        Threads of each search of a shard, on its worker.

    Returns
    -------
    pairs : dask DataFrame
        Columns ``left`` and ``right`` (global row numbers, int64; the ids of
        the rows, with the index's dtype, for a DataFrame's side),
        ``distance`` (the Hamming distance, int32) and, when verified,
        ``vector_distance`` (float64). One partition per non-empty ``left``
        block and shard, in the order ``(left block, shard)`` (for a
        self-join, only the shards with rows after the block's first); pairs
        sorted by their ``(left, right)`` rows within each partition, so
        ``compute()`` is deterministic. A left row's partners thus come in
        increasing order, though rows of different left blocks interleave
        with the shards.

    See Also
    --------
    skhash.dask.HammingNeighbors.radius_neighbors : The same search, per query.
    skhash.dask.duplicate_groups : The groups that a self-join's pairs make.

    Notes
    -----
    A self-join searches each block against the shard that holds it and the
    later ones, keeping the pairs with ``left < right``: with ``s`` shards,
    ``(s + 1) / (2 s)`` of the searches of a join of two collections. Fewer,
    larger shards make less work than a shard per block: a radius search
    over four times the codes took 0.7 times as long here (radius 2,
    clustered 64-bit codes, 1.25 and 5 million of them), its multi-index
    buckets being longer and emptier.

    A verified join's task gets, beside the block of queries and the shard,
    the block's vectors and the shard's (its blocks' stacked, once per
    shard): the vectors move where the codes are searched, and each search
    holds the candidates of a part of its block at a time. A DataFrame of
    codes is computed once, for its codes and ids together.

    Examples
    --------
    >>> import dask.array as da
    >>> from skhash.codes import pack_codes
    >>> from skhash.dask import similarity_join
    >>> codes = da.from_array(
    ...     pack_codes([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]),
    ...     chunks=2,
    ... )
    >>> similarity_join(codes, radius=1).compute()
       left  right  distance
    0     0      2         1
    1     0      3         0
    0     2      3         1
    >>> vectors = da.from_array([[0.0, 0.0], [9.0, 9.0], [5.0, 0.0], [0.1, 0.0]])
    >>> similarity_join(codes, radius=1, vectors=vectors, max_distance=0.5).compute()
       left  right  distance  vector_distance
    0     0      3         0              0.1
    """
    verified = check_verification(vectors, max_distance, metric) is not None
    if right is None and right_vectors is not None:
        raise ValueError(
            "right_vectors was given for a self-join: its pairs are verified on "
            "vectors alone."
        )
    if right is not None and verified != (right_vectors is not None):
        raise ValueError(
            "A join of two collections verifies its pairs on vectors and "
            "right_vectors, and needs both (with max_distance) or neither."
        )
    left = row_blocks(left, "left")
    if isinstance(right, HammingNeighbors):
        check_is_fitted(right)
        radius = right.radius if radius is None else radius
    elif right is not None:
        right = row_blocks(right, "right")
    search = {"algorithm": algorithm, "backend": backend, "n_jobs": n_jobs}
    if not verified:
        return join_pairs(left, right, radius, search)
    vectors = (vectors, right_vectors if right is not None else vectors)
    return join_pairs(left, right, radius, search, vectors, max_distance, metric)


@dataclass(frozen=True)
class Blocks:
    """A collection of codes as row blocks (a Dask array) and, for a Dask
    DataFrame, the pandas Index of each block (delayed), from the same
    partitions: the frame is computed once for both."""

    codes: da.Array
    ids: list | None = None
    ids_dtype: object = np.dtype(np.int64)

    @property
    def starts(self):
        return np.concatenate([[0], np.cumsum(self.codes.chunks[0])]).tolist()


def row_blocks(X, name):
    """``X`` as :class:`Blocks` of packed codes."""
    if not isinstance(X, dd.DataFrame):
        codes = as_row_blocks(X, name)
        check_codes_dtype(codes.dtype, name)
        return Blocks(codes)
    dtypes = set(X.dtypes)
    check_codes_dtype(dtypes.pop() if len(dtypes) == 1 else np.dtype(object), name)
    parts, lengths = frame_partitions(X)
    values = [delayed(_shards.frame_values)(part) for part in parts]
    # One block per partition, empty ones too (da.concatenate drops them),
    # so that blocks and partitions stay in step.
    key = f"codes-{tokenize(*values)}"
    layer = {(key, i, 0): value.key for i, value in enumerate(values)}
    codes = da.Array(
        HighLevelGraph.from_collections(key, layer, dependencies=values),
        key,
        chunks=(lengths, (len(X.columns),)),
        dtype=np.uint8,
    )
    ids = [delayed(_shards.frame_index)(part) for part in parts]
    return Blocks(codes, ids, X.index.dtype)


def join_pairs(
    left, right, radius, search, vectors=None, max_distance=None, metric=None
):
    """The pairs of :func:`similarity_join` between :class:`Blocks` ``left``
    and ``right`` (None: a self-join; or a fitted HammingNeighbors), verified
    on ``vectors``, the two sides' (None: not verified)."""
    fitted = isinstance(right, HammingNeighbors)
    source = left if right is None else right  # of the right side's rows
    if fitted:
        bounds = right.shard_offsets_.tolist()
        n_bytes = right.n_features_in_
    else:
        radius = SingleHammingNeighbors().radius if radius is None else radius
        n_bytes = source.codes.shape[1]
    if left.codes.shape[1] != n_bytes:
        raise ValueError(
            f"left and right codes differ in width: {left.codes.shape[1]} and "
            f"{n_bytes} bytes."
        )
    # The right side's blocks, grouped by shard below (a fitted
    # HammingNeighbors' vectors are cut into one block per shard).
    right_chunks = np.diff(bounds) if fitted else source.codes.chunks[0]
    left_chunks, self_join = left.codes.chunks[0], right is None
    if vectors is not None:  # checked before the shards are built
        left_vectors, n_features = vector_blocks(vectors[0], left_chunks, "vectors")
        right_vectors, n_right = (
            (left_vectors, n_features)
            if self_join
            else vector_blocks(vectors[1], right_chunks, "right_vectors")
        )
        if n_right != n_features:
            raise ValueError(
                f"vectors and right_vectors differ in width: {n_features} and "
                f"{n_right} features."
            )
    if fitted:
        # A replicated index: each left block goes to a copy in turn.
        shards_for = right._placement.shards_for
    else:
        # Built now, each on its worker, and kept there while the pairs are
        # computed, as HammingNeighbors.fit builds them.
        shards, starts = build_shards(source.codes, [], search)
        shards = list(dask.persist(*shards))
        bounds = [*starts, source.codes.shape[0]]

        def shards_for(block_number):
            return shards

    # No two codes differ in more bits than a code has.
    radius = min(radius, 8 * n_bytes)
    shard_vectors = shard_ids = [None] * (len(bounds) - 1)
    if vectors is None:
        left_vectors = [None] * len(left_chunks)
    else:
        shard_vectors = _per_shard(right_vectors, right_chunks, bounds, _shards.stack)
    left_ids = left.ids or [None] * len(left_chunks)
    if not fitted and source.ids is not None:
        shard_ids = _per_shard(source.ids, right_chunks, bounds, _shards.stack_ids)

    parts = []
    blocks = left.codes.to_delayed(optimize_graph=False).ravel()
    for b, start in enumerate(left.starts[:-1]):
        for s, (shard_start, shard_end) in enumerate(pairwise(bounds)):
            # A self-join's pairs have left < right: none in earlier shards.
            if not left_chunks[b] or self_join and shard_end <= start:
                continue
            task = _shards.PairTask(
                radius, start, shard_start, self_join, max_distance, metric
            )
            sides = (left_vectors[b], shard_vectors[s], left_ids[b], shard_ids[s])
            parts.append(
                delayed(_shards.shard_pairs)(shards_for(b)[s], blocks[b], task, *sides)
            )
    columns = _shards.pair_columns(vectors is not None)
    for name, side in [("left", left), ("right", None if fitted else source)]:
        if side is not None and side.ids is not None:
            columns[name] = side.ids_dtype
    meta = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in columns.items()})
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def vector_blocks(vectors, row_chunks, name):
    """Delayed blocks of ``vectors``, one per block of codes (``row_chunks``),
    each checked finite on its worker before use, and their width."""
    vectors = as_row_blocks(vectors, name)
    if vectors.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be real numbers, got dtype {vectors.dtype}.")
    n_rows = sum(row_chunks)
    if vectors.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {vectors.shape[0]} row(s) but there are {n_rows} code(s): "
            "the vectors must line up with the codes, row for row."
        )
    vectors = vectors.rechunk((tuple(row_chunks), -1))
    starts = np.cumsum([0, *row_chunks]).tolist()
    blocks = [
        delayed(_shards.checked_vectors)(block, f"{name}[{start}:{stop}]")
        for block, start, stop in zip(
            vectors.to_delayed().ravel(), starts[:-1], starts[1:], strict=True
        )
    ]
    return blocks, vectors.shape[1]


def _per_shard(blocks, row_chunks, bounds, stack):
    """For each shard, the blocks of its rows as one (delayed)."""
    starts = np.cumsum([0, *row_chunks])[:-1]
    grouped = []
    for shard_start, shard_end in pairwise(bounds):
        members = [
            block
            for block, start, size in zip(blocks, starts, row_chunks, strict=True)
            if size and shard_start <= start < shard_end
        ]
        grouped.append(members[0] if len(members) == 1 else delayed(stack)(*members))
    return grouped
