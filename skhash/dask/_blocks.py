"""Query blocks on the client: the queries of a search as row blocks, their
labels beside them, and the answers put back together with their row chunks.

A search runs block by block: every shard answers a block, a merge makes one
answer of theirs, and the answers of the blocks make one Dask array (lazy
queries) or are computed together (NumPy queries).
"""

import warnings
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
from dask import delayed
from dask.base import is_dask_collection
from sklearn.exceptions import DataConversionWarning

from .._supervision import check_labels
from ..codes import check_codes, check_codes_dtype
from ..neighbors._base import split_runs
from ..utils import _csr as csr
from ._collections import aligned_labels, as_row_blocks
from ._shards import shard_rows


@dataclass(frozen=True)
class QueryBlock:
    """One row block of queries.

    ``codes`` is an array or a delayed block; ``number`` its place among the
    non-empty blocks (which copy of a replicated index searches it). When the queries
    are the database's own codes (``X=None``), ``own_shard`` holds them from
    its row ``own_start`` on, and there each query leaves out its own row.
    """

    codes: object
    n_rows: int
    number: int = 0
    own_shard: int | None = None
    own_start: int | None = None

    def own_start_in(self, shard):
        """The block's first row in shard number ``shard``, if it holds it."""
        return self.own_start if shard == self.own_shard else None


def query_blocks(X, n_features, name, n_blocks=1):
    """The queries ``X`` (NumPy or Dask) as blocks, and whether they are lazy.

    NumPy queries make up to ``n_blocks`` blocks of about as many rows,
    checked here; Dask ones keep their row blocks, their values checked where
    they are searched, by the shards.
    """
    lazy = is_dask_collection(X)
    codes = as_row_blocks(X, "X") if lazy else check_codes(X, name="X")
    if codes.shape[1] != n_features:
        raise ValueError(
            f"X has {codes.shape[1]} features, but {name} is expecting "
            f"{n_features} features as input."
        )
    if codes.shape[0] == 0:
        raise ValueError(
            "Found array with 0 sample(s) while a minimum of 1 is required."
        )
    if not lazy:
        # Each delayed once, so that the tasks of every shard share one copy.
        parts = np.array_split(codes, min(n_blocks, len(codes)))
        return [
            QueryBlock(delayed(part), len(part), i) for i, part in enumerate(parts)
        ], False
    check_codes_dtype(codes.dtype, "X")
    blocks, sizes = codes.to_delayed().ravel(), codes.chunks[0]
    numbers = np.cumsum(np.asarray(sizes) > 0) - 1
    return [
        QueryBlock(b, n, int(i)) for b, n, i in zip(blocks, sizes, numbers, strict=True)
    ], True


def own_blocks(shards_for, offsets, row_chunks):
    """The database's row blocks as queries of themselves, each taken from
    the shard that holds it among those that search it (``shards_for(i)``
    for block ``i``; shard ``s`` holds rows ``offsets[s]`` on)."""
    blocks, i = [], 0  # i: the block's place among the non-empty ones
    starts = np.concatenate([[0], np.cumsum(row_chunks)])
    for start, size in zip(starts, row_chunks, strict=False):
        if size == 0:
            blocks.append(QueryBlock(None, 0, i))
            continue
        s = int(np.searchsorted(offsets, start, side="right")) - 1
        own_start = int(start - offsets[s])
        rows = slice(own_start, own_start + size)
        codes = delayed(shard_rows)(shards_for(i)[s], rows)
        blocks.append(QueryBlock(codes, size, i, s, own_start))
        i += 1
    return blocks


def label_blocks(y, row_chunks, mismatch, database=None):
    """Labels as one block (an array, or a delayed block) per row chunk.

    ``mismatch`` is the message for a wrong number of labels, formatted with
    ``n_codes`` and ``n_labels``; ``database`` is the shape of one database
    label row, which query labels must match.
    """
    if is_dask_collection(y):
        labels = aligned_labels(y, row_chunks)
        if labels.ndim == 2 and labels.shape[1] == 1:
            # What check_labels does, before the blocks reach the workers.
            warnings.warn(
                "A column-vector y was passed when a 1-D array was expected; it "
                "is read as class labels. Pass y.ravel() to avoid this warning.",
                DataConversionWarning,
                stacklevel=3,
            )
            labels = labels.ravel().rechunk((row_chunks,))
        shape, blocks = labels.shape[1:], list(labels.to_delayed().ravel())
    else:
        labels = check_labels(y)
        if len(labels) != sum(row_chunks):
            raise ValueError(
                mismatch.format(n_codes=sum(row_chunks), n_labels=len(labels))
            )
        shape = labels.shape[1:]
        blocks = np.split(labels, np.cumsum(row_chunks)[:-1])
    if database is not None and len(shape) != len(database):
        raise ValueError(
            "Query and database labels must both be 1-D class labels or both be "
            f"2-D indicator matrices, got {len(shape) + 1}-D and "
            f"{len(database) + 1}-D."
        )
    if database is not None and shape != database:
        raise ValueError(
            f"Query and database labels have {shape[0]} and {database[0]} label "
            "columns; they must match."
        )
    return blocks


def stitch(values, blocks, tail, dtype):
    """One Dask array of the delayed per-block ``values``, with the blocks'
    row chunks (``None`` for an empty block)."""
    row_chunks = tuple(block.n_rows for block in blocks)
    array = da.concatenate(
        [
            da.from_delayed(value, (n, *tail), dtype=dtype)
            for value, n in zip(values, row_chunks, strict=True)
            if n
        ]
    )
    # Concatenation drops empty blocks; put them back, so that the answer's
    # chunks are the queries' (an alias per block, no copy).
    return array.rechunk((row_chunks, *((size,) for size in tail)))


def item(answer, i):
    """Item ``i`` of a block's delayed answer (``None`` for an empty block)."""
    return None if answer is None else answer[i]


def runs(answer, i):
    """Per-query object array of item ``i`` of a block's CSR triple."""
    return None if answer is None else delayed(split_runs)(answer[i], answer[2])


def gather_csr(answers):
    """One CSR triple of every block's, computed."""
    # Empty blocks add no rows.
    return csr.concatenate(dask.compute(*[a for a in answers if a is not None]))
