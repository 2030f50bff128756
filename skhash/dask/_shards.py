"""What runs on the workers: shards of a database, their searches, the merges.

A shard is a :class:`skhash.neighbors.HammingIndex` over consecutive row
blocks of the database, driven through its public methods only. It answers in
its own row numbers; the functions here add its global offset, so every merge
compares global indices. Each function takes and returns plain NumPy arrays,
small next to a shard: only they cross the network.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from dask.sizeof import sizeof

from ..neighbors import HammingIndex
from ..neighbors._duplicates import pairs_within
from ..utils import _csr as csr
from ..utils._vectors import check_vectors

PAIR_COLUMNS = {"left": np.int64, "right": np.int64, "distance": np.int32}
# Distance of the padding of a shard's rows: past any real distance.
PAD = np.iinfo(np.int32).max


@dataclass(frozen=True)
class Task:
    """What a shard's search is asked, beside its queries: where the shard
    starts in the database (``offset``), where the queries start in it when
    they are its own codes (``own_start``, else None), and the search's
    parameters."""

    offset: int
    own_start: int | None = None
    k: int = 0
    radius: int = 0
    with_labels: bool = False
    by_dist: bool = False


@sizeof.register(HammingIndex)
def _sizeof_shard(shard):
    # Dask's default guess for an object is a few dozen bytes, so the scheduler
    # would rather move a shard to its queries than the queries to it.
    return 1000 + shard.nbytes


def build_shard(params, n_blocks, *blocks):
    """A :class:`HammingIndex` over consecutive row blocks, its kernels
    compiled and its tables filled here, on the worker that keeps it, rather
    than in the first search. ``params`` are its keyword arguments;
    ``blocks`` are the ``n_blocks`` blocks of codes, then their labels' blocks
    if any (arguments, not lists: see ``Placement.fan_out``)."""
    codes = np.concatenate(blocks[:n_blocks])
    labels = np.concatenate(blocks[n_blocks:]) if len(blocks) > n_blocks else None
    return HammingIndex(codes, labels, **params).prepare()


def describe(shard):
    """What the client needs to know of a built shard: its labels and the
    cost of its searches (see ``HammingIndex.search_costs``)."""
    labels = shard.labels
    one_d = labels is not None and labels.ndim == 1
    return {
        "n_codes": shard.n_codes,
        "n_bytes": shard.codes.shape[1],
        "labels": None if labels is None else (labels.shape[1:], labels.dtype),
        "classes": np.unique(labels) if one_d else None,
        "costs": shard.search_costs(),
    }


def shard_rows(shard, rows):
    """The shard's codes at (local) ``rows``: a block of queries, or a sample."""
    return shard.codes[rows]


def stack(*blocks):
    """The blocks one under the other (one argument each: see
    ``Placement.fan_out`` on lists)."""
    return np.concatenate(blocks)


def sample_kneighbors(shard, sample, k, offset):
    """The sample's ``k`` nearest in the shard (fewer if it is smaller), global
    indices, by a scan: the shard's multi-index state is left as it is."""
    k = min(k, shard.n_codes)
    distances, indices = shard.kneighbors(sample, k, algorithm="brute")
    return distances, indices + offset


# The searches of a shard (see _rounds.py for the k nearest in rounds). A
# search may get the rows of the query block still pending (None: all of
# them) and answers for those rows only. When the queries are the shard's own
# codes from its row ``task.own_start`` on (``X=None``), each query leaves out
# its own row, as ``skhash.HammingNeighbors`` does: not every code equal to it.


def shard_kneighbors(shard, queries, task, rows=None):
    """The shard's ``task.k`` nearest (fewer if it is smaller), global
    indices, for the query ``rows`` (``None``: all)."""
    queries = _pending(shard, queries, rows)
    own = _own_rows(task.own_start, rows, len(queries))
    k = min(task.k, shard.n_codes - (own is not None))
    if k == 0 or len(queries) == 0:  # a shard of one code, queried by that code
        distances, indices = _nothing(len(queries), k)
    else:
        distances, indices = shard.kneighbors(queries, k, exclude=own)
    return distances, indices + task.offset, _labels_of(shard, indices, task)


def shard_within(shard, queries, task, rows=None):
    """The shard's ``task.k`` nearest within ``task.radius`` of the query
    ``rows``.

    Like :func:`shard_kneighbors`, from the shard's radius search (through
    its multi-index tables when they are cheaper than a scan). A query with
    fewer than ``k`` codes within the radius has its row padded with
    distances past any real one, which sort last.
    """
    queries = _pending(shard, queries, rows)
    if len(queries) == 0:
        distances, indices = _nothing(0, 0)
        return distances, indices, _labels_of(shard, indices, task)
    own = _own_rows(task.own_start, rows, len(queries))
    found = shard.radius_neighbors(queries, task.radius, exclude=own, sort=True)
    distances, indices = _first_of_runs(*found, task.k)
    return distances, indices + task.offset, _labels_of(shard, indices, task)


def _pending(shard, queries, rows):
    queries = shard.check_queries(queries)  # checked before taking rows
    return queries if rows is None else queries[rows]


def _own_rows(own_start, rows, n_queries):
    """The shard's rows of the queries when they are its own codes."""
    if own_start is None:
        return None
    return own_start + (np.arange(n_queries) if rows is None else np.asarray(rows))


def _nothing(n_queries, k):
    return np.empty((n_queries, k), np.int32), np.empty((n_queries, k), np.intp)


def _labels_of(shard, indices, task):
    return shard.labels[indices] if task.with_labels else None


def _first_of_runs(distances, indices, indptr, k):
    """The first ``k`` entries of each CSR run as rows of a matrix, padded
    with distance ``PAD`` (and index 0) as wide as the longest run needs."""
    counts = np.minimum(np.diff(indptr), k)
    n_rows, width = len(counts), int(counts.max(initial=0))
    out_distances = np.full((n_rows, width), PAD, np.int32)
    out_indices = np.zeros((n_rows, width), np.intp)
    row = np.repeat(np.arange(n_rows), counts)
    column = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    source = np.repeat(indptr[:-1], counts) + column
    out_distances[row, column] = distances[source]
    out_indices[row, column] = indices[source]
    return out_distances, out_indices


def merge_kneighbors(k, *parts):
    """The ``k`` nearest over all shards, ordered by (distance, global index).

    Each part is ordered by (distance, index) and the shards hold increasing
    ranges of indices, so a stable sort by distance of the parts side by side
    keeps equal distances in index order.
    """
    distances = np.concatenate([part[0] for part in parts], axis=1)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    indices = np.concatenate([part[1] for part in parts], axis=1)
    merged = [
        np.take_along_axis(distances, order, 1),
        np.take_along_axis(indices, order, 1),
        None,
    ]
    if parts[0][2] is not None:
        labels = np.concatenate([part[2] for part in parts], axis=1)
        order = order.reshape(order.shape + (1,) * (labels.ndim - 2))
        merged[2] = np.take_along_axis(labels, order, 1)
    return tuple(merged)


def shard_radius(shard, queries, task, rows=None):
    """The CSR triple (distances, global indices, indptr) of a radius search
    of all the queries (``rows`` is None)."""
    queries = shard.check_queries(queries)
    own = _own_rows(task.own_start, None, len(queries))
    distances, indices, indptr = shard.radius_neighbors(
        queries, task.radius, exclude=own, sort=task.by_dist
    )
    return distances, indices + task.offset, indptr


def merge_radius(n_queries, by_dist, *parts):
    """One CSR triple from the shards', each query's neighbours in index order
    (the shards' order) or, with ``by_dist``, in (distance, index) order."""
    query_of = np.concatenate([csr.query_of(part[2]) for part in parts])
    distances = np.concatenate([part[0] for part in parts])
    indices = np.concatenate([part[1] for part in parts])
    if by_dist:
        order = np.lexsort((indices, distances, query_of))
    else:
        order = np.argsort(query_of, kind="stable")
    indptr = csr.indptr_of(np.bincount(query_of, minlength=n_queries))
    return distances[order], indices[order], indptr


def shard_pairs(
    shard, queries, task, query_vectors=None, shard_vectors=None, query_ids=None,
    shard_ids=None,
):  # fmt: skip
    """The pairs of a block of queries and a shard (see :class:`PairTask`),
    sorted by global ``(left, right)`` rows, verified on the vectors (each
    side's, row for row) when given; ``query_ids`` and ``shard_ids`` (pandas
    Indexes), when given, replace the rows in the ``left`` and ``right``
    columns."""
    found = list(
        pairs_within(
            shard, queries, task.radius, query_offset=task.left_offset,
            index_offset=task.right_offset, upper=task.upper,
            query_vectors=query_vectors, index_vectors=shard_vectors,
            max_distance=task.max_distance, metric=task.metric,
        )
    )  # fmt: skip
    columns = pair_columns(task.max_distance is not None)
    pairs = pd.DataFrame(
        {
            name: np.concatenate([np.zeros(0, dtype), *(part[i] for part in found)])
            for i, (name, dtype) in enumerate(columns.items())
        }
    ).astype(columns)
    for name, ids, offset in [
        ("left", query_ids, task.left_offset),
        ("right", shard_ids, task.right_offset),
    ]:
        if ids is not None:
            pairs[name] = ids.take(pairs[name].to_numpy() - offset)
    return pairs


@dataclass(frozen=True)
class PairTask:
    """What a join asks a shard of a block of queries: the global rows where
    the block (``left_offset``) and the shard (``right_offset``) start,
    whether only pairs ``left < right`` count (``upper``, a self-join), and
    the verification's ``max_distance`` (None: none) and ``metric``."""

    radius: int
    left_offset: int
    right_offset: int
    upper: bool
    max_distance: float | None = None
    metric: str = "euclidean"


def pair_columns(verified):
    """The columns of a join's pairs, in global rows, and their dtypes."""
    return {**PAIR_COLUMNS, **({"vector_distance": np.float64} if verified else {})}


def checked_vectors(block, name):
    """A block of vectors, checked finite (see ``check_vectors``) once,
    before the searches that verify pairs on it."""
    return check_vectors(block, name=name)


def stack_ids(*indexes):
    """The pandas Indexes one after the other, their dtype kept."""
    return indexes[0].append(list(indexes[1:]))


def frame_values(part):
    """A partition of a DataFrame of codes as an array of codes."""
    return np.ascontiguousarray(part.to_numpy(dtype=np.uint8))


def frame_index(part):
    return part.index
