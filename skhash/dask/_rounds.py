"""The k nearest in rounds, planned on the client (see HammingNeighbors, Notes).

A shard holding a fraction of the database has its own k nearest far away,
where its multi-index search gives up and scans, while a query's k nearest
overall may be a few bits away. So the shards first search increasing radii:
a query with ``k`` codes within a radius over all shards is settled, and only
the others go on; the last round asks each shard for its ``k`` nearest. The
radii are those of least expected cost for queries like a sample of the
database, from the shards' estimated search costs.
"""

from typing import NamedTuple

import dask
import numpy as np
from dask import delayed

from ..neighbors._index import drop_self
from . import _shards

# Database codes sampled at fit, and how many neighbours each: the rounds are
# planned for k up to this (and the constructor's n_neighbors).
SAMPLE_SIZE = 128
SAMPLE_K = 64
# What one more round of tasks costs (scheduling, transfers), in scanned
# words (0.3 ns each, on one core): a round took 10 to 20 ms on a
# LocalCluster of 2 workers, each of them idle meanwhile.
ROUND_COST = 2.0**26


class Sample(NamedTuple):
    """k-th neighbour distances of the sampled database codes (columns: k =
    1, 2, ...), over the whole database and within each shard."""

    kth: np.ndarray
    per_shard: list


class Settled(NamedTuple):
    """Rows of a query block whose k nearest a round found, and those."""

    rows: np.ndarray
    distances: np.ndarray
    indices: np.ndarray
    labels: np.ndarray | None


def sample_neighbours(shards, offsets, costs, k):
    """The :class:`Sample` of the database for up to ``k`` neighbours, or
    None when no round can help: one shard (its own k nearest are the
    answer), no radius search cheaper than the scan, or one code. The sample
    rows are spread evenly over the database; each is searched by a scan in
    every shard, and drops itself from the answers."""
    n_codes = int(offsets[-1])
    k = min(k, n_codes - 1)
    if (
        k < 1
        or len(shards) == 1
        or all(np.all(radius >= scan) for radius, _, scan in costs)
    ):
        return None
    rows = np.unique(np.linspace(0, n_codes - 1, SAMPLE_SIZE).astype(np.intp))
    blocks = []
    for s, shard in enumerate(shards):
        local = rows[(rows >= offsets[s]) & (rows < offsets[s + 1])] - offsets[s]
        if len(local):
            blocks.append(delayed(_shards.shard_rows)(shard, local))
    sample = delayed(_shards.stack)(*blocks)
    parts = dask.compute(
        *[
            delayed(_shards.sample_kneighbors)(shard, sample, k + 1, int(offset))
            for shard, offset in zip(shards, offsets, strict=False)
        ]
    )
    merged = _shards.merge_kneighbors(k + 1, *[(*part, None) for part in parts])
    per_shard = [drop_self(*part, rows)[0] for part in parts]
    return Sample(drop_self(*merged[:2], rows)[0], per_shard)


def radii(sample, costs, k, n_rows):
    """Radii of the rounds of a block of ``n_rows`` queries for ``k``
    nearest: those of least expected cost (see :func:`plan_radii`) for
    queries like the sample's; none when ``k`` is larger than it planned."""
    if sample is None or k > sample.kth.shape[1]:
        return []
    # Each sample query's cost in the last round: each shard's k nearest,
    # as dear as its radius search at its own k-th distance.
    last = sum(
        knn[shard_kth[:, k - 1]] if k <= shard_kth.shape[1] else scan
        for (_, knn, scan), shard_kth in zip(costs, sample.per_shard, strict=True)
    )
    return plan_radii(
        sample.kth[:, k - 1],
        last,
        sum(radius for radius, _, _ in costs),
        sum(scan for _, _, scan in costs),
        ROUND_COST / n_rows,
    )


def plan_radii(kth, last, costs, scan, round_cost):
    """Radii of the k-nearest rounds of least expected cost per query.

    A round at radius ``r`` costs ``costs[r]`` for each query still pending
    (its k-th distance over the previous radius) and ``round_cost``; the last
    round, the shards' k nearest, costs what each query left costs there.
    Queries are expected to be like the sample queries, and one more: a query
    that no radius settles (every code but within ``8 * n_bytes``) and that
    costs a ``scan`` in the last round, so that the plan never counts on
    what the sample did not see. Minimised by dynamic programming over the
    last radius searched.

    Parameters
    ----------
    kth : ndarray of shape (n_sample,)
        k-th neighbour distances of the sample queries.
    last : ndarray of shape (n_sample,)
        Their costs in the last round.
    costs : ndarray of shape (n_bits + 1,)
        Cost of one query's radius search at each radius.
    scan : float
        Cost of one query's scan of the database.
    round_cost : float
        Cost of one more round, per query.

    Returns
    -------
    radii : list of int
        Increasing radii; empty when the last round alone costs least.
    """
    n_radii = len(costs)
    # State j: the radii up to j - 1 searched (j = 0: none yet).
    pending = kth[:, None] > np.arange(-1, n_radii)
    share = (pending.sum(axis=0) + 1) / (len(kth) + 1)
    best = (last @ pending + scan) / (len(kth) + 1)  # expected cost, ending now
    share[-1] = best[-1] = 0.0  # within 8 * n_bytes of a query: every code
    following = np.full(n_radii + 1, -1)
    for j in range(n_radii - 1, -1, -1):
        options = share[j] * costs[j:] + round_cost + best[j + 1 :]
        radius = j + int(np.argmin(options))
        if options[radius - j] < best[j]:
            best[j], following[j] = options[radius - j], radius
    radii, j = [], 0
    while following[j] >= 0:
        radii.append(int(following[j]))
        j = radii[-1] + 1
    return radii


def knn_answer(fan_out, block, k, with_labels, radii):
    """Delayed (distances, indices, labels) of one query block, in rounds:
    radius searches at ``radii``, each settling the rows with ``k`` codes
    within its radius, then the shards' ``k`` nearest for the rows left.
    ``fan_out(block, function, rows, **task)`` gives every shard's part."""
    settled, rows = (), None  # rows still pending; None: all of them
    for radius in radii:
        parts = fan_out(
            block, _shards.shard_within, rows, k=k, radius=radius,
            with_labels=with_labels,
        )  # fmt: skip
        settled, rows = delayed(merge_within, nout=2)(
            k, radius, block.n_rows, settled, rows, *parts
        )
    parts = fan_out(block, _shards.shard_kneighbors, rows, k=k, with_labels=with_labels)
    return delayed(merge_last, nout=3)(k, block.n_rows, settled, rows, *parts)


def merge_within(k, radius, n_rows, settled, rows, *parts):
    """Settle the pending ``rows`` (``None``: all ``n_rows``) that have at
    least ``k`` codes within ``radius`` over all shards.

    All their codes at distance ``<= radius`` are known, ties included, so
    their ``k`` nearest are final. Returns the settled rows with them added,
    and the rows still pending.
    """
    rows = np.arange(n_rows) if rows is None else rows
    distances, indices, labels = _shards.merge_kneighbors(k, *parts)
    done = np.zeros(len(rows), bool)
    if distances.shape[1] == k:
        done = distances[:, k - 1] <= radius
    found = Settled(
        rows[done], distances[done], indices[done],
        None if labels is None else labels[done],
    )  # fmt: skip
    return (*settled, found), rows[~done]


def merge_last(k, n_rows, settled, rows, *parts):
    """The ``k`` nearest of every row: those settled in the rounds and the
    ``rows`` left, from the shards' ``k`` nearest."""
    last = Settled(rows, *_shards.merge_kneighbors(k, *parts))
    if rows is None:  # no rounds: every row is here
        return last[1:]
    distances = np.empty((n_rows, k), np.int32)
    indices = np.empty((n_rows, k), np.intp)
    labels = None
    if last.labels is not None:
        shape = (n_rows, k, *last.labels.shape[2:])
        labels = np.empty(shape, last.labels.dtype)
    for found in (*settled, last):
        if len(found.rows):
            distances[found.rows], indices[found.rows] = found.distances, found.indices
            if labels is not None:
                labels[found.rows] = found.labels
    return distances, indices, labels
