"""The MAP of queries against a sharded database, without gathering it.

Each query's average precision over the whole database, ranked by (distance,
global index), in two passes. A relevant item's rank is the number of items at
a smaller distance anywhere, plus those at its distance in earlier shards,
plus its rank in its own shard; the first pass counts the first two (the
shards' histograms over distances, as the metrics count them), the second adds
the third. Only per-query histograms cross the network.
"""

import dask
import numpy as np
from dask import delayed

from .._ranking import distance_block, distance_histograms, query_batches
from .._supervision import check_labels, relevance
from ..codes import as_words


def mean_average_precision(shards_for, blocks, labels, n_bins):
    """MAP of the query ``blocks`` (their ``labels`` beside them) against the
    shards, in order of their rows (``shards_for(i)``: those that search
    block ``i``); queries with nothing relevant count as 0."""
    sums, n_relevant = [], []
    for block, block_labels in zip(blocks, labels, strict=True):
        if block.n_rows == 0:
            continue
        shards = shards_for(block.number)
        block_labels = delayed(block_labels)  # one copy for all the tasks
        histograms = [
            delayed(shard_histograms)(shard, block.codes, block_labels, n_bins)
            for shard in shards
        ]
        ranks, relevant = delayed(rank_offsets, nout=2)(*histograms)
        sums.append(
            [
                delayed(shard_precision_sums)(
                    shard, block.codes, block_labels, ranks[s]
                )
                for s, shard in enumerate(shards)
            ]
        )
        n_relevant.append(relevant)
    sums, n_relevant = dask.compute(sums, n_relevant)
    average_precision = [
        np.where(r > 0, sum(s) / np.maximum(r, 1), 0.0)
        for s, r in zip(sums, n_relevant, strict=True)
    ]
    return float(np.mean(np.concatenate(average_precision)))


def _ranked(shard, queries, labels):
    """Batches of (rows, distances, relevance) of the queries to the shard."""
    queries = shard.check_queries(queries)
    labels = check_labels(labels)
    codes, database_labels = shard.codes, shard.labels
    query_words, words = as_words(queries), as_words(codes)
    for rows in query_batches(len(queries), len(codes)):
        distances = distance_block(query_words, words, rows)
        yield rows, distances, relevance(labels[rows], database_labels)


def shard_histograms(shard, queries, labels, n_bins):
    """Items and relevant items of the shard at each distance, per query."""
    items = np.zeros((len(queries), n_bins), np.int64)
    hits = np.zeros_like(items)
    for rows, distances, relevant in _ranked(shard, queries, labels):
        items[rows], hits[rows] = distance_histograms(distances, relevant, n_bins)
    return items, hits


def rank_offsets(*histograms):
    """Per shard, the items (and relevant items) ranked before it at each
    distance, less those of the shard itself at smaller distances.

    Returns one ``(items_before, hits_before)`` pair per shard and the
    number of relevant items of each query.
    """
    offsets = []
    totals = [sum(h[i] for h in histograms) for i in (0, 1)]
    smaller = [np.cumsum(total, axis=1) - total for total in totals]
    earlier = [np.zeros_like(total) for total in totals]
    for histogram in histograms:
        pair = []
        for i in (0, 1):
            own_smaller = np.cumsum(histogram[i], axis=1) - histogram[i]
            pair.append(smaller[i] + earlier[i] - own_smaller)
            earlier[i] = earlier[i] + histogram[i]
        offsets.append(tuple(pair))
    return offsets, totals[1].sum(axis=1)


def shard_precision_sums(shard, queries, labels, offsets):
    """Sum of the precisions at the shard's relevant items, per query.

    In the shard's own (distance, index) order, the ``j``-th item at distance
    ``d`` has the global rank ``items_before[d] + j + 1``.
    """
    items_before, hits_before = offsets
    sums = np.zeros(len(queries))
    for rows, distances, relevant in _ranked(shard, queries, labels):
        # Distances fit in 16 bits; NumPy sorts those stably with a radix sort.
        order = np.argsort(distances.astype(np.uint16), axis=1, kind="stable")
        distances = np.take_along_axis(distances, order, 1)
        relevant = np.take_along_axis(relevant, order, 1)
        rank = np.take_along_axis(items_before[rows], distances, 1)
        rank += np.arange(1, distances.shape[1] + 1)
        hits = np.take_along_axis(hits_before[rows], distances, 1)
        hits += np.cumsum(relevant, axis=1)
        sums[rows] = np.where(relevant, hits / rank, 0.0).sum(axis=1)
    return sums
