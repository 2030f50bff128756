"""Where the shards of a database go: one per worker, of consecutive blocks."""

import contextlib

import dask
import numpy as np
from dask import delayed

from . import _shards


def build_shards(codes, labels, params):
    """Delayed shards of a Dask array of codes, and their first rows.

    One ``skhash.neighbors.HammingIndex(..., **params)`` per worker (one in all under a
    local scheduler) over a run of consecutive non-empty blocks, about as
    many codes each (see :func:`_groups`), with ``labels`` (one block per
    row block) when not empty. Each is built on its own worker or, if that
    one is lost, on another: the blocks move there once, and never further.
    Persist them: the placement is an annotation of their graph, which
    persisting keeps and some collections built on them drop
    (``dd.from_delayed``).
    """
    row_chunks = codes.chunks[0]
    starts = np.concatenate([[0], np.cumsum(row_chunks)])
    blocks = codes.to_delayed().ravel()
    workers = _workers()
    shards = []
    groups = _groups(row_chunks, max(1, len(workers)))
    for s, group in enumerate(groups):
        on_worker = (
            dask.annotate(workers=[workers[s]], allow_other_workers=True)
            if workers
            else contextlib.nullcontext()
        )
        group_labels = [labels[b] for b in group] if len(labels) else []
        with on_worker:
            shards.append(
                delayed(_shards.build_shard)(
                    params, len(group), *[blocks[b] for b in group], *group_labels
                )
            )
    return shards, [int(starts[group[0]]) for group in groups]


def attach(shards):
    """Whether every persisted shard is on a cluster this process computes on.

    A shard loaded from a pickle is a future bound to no client: it is bound
    to this process's client, whose scheduler is asked whether it holds the
    shard; one it does not hold (a pickle made on another cluster) is
    cancelled, and so refused at once by later searches, as is a shard whose
    cluster closed.
    """
    try:
        from distributed import Future, get_client
    except ImportError:  # no distributed: the shards are plain objects
        return True
    futures = [
        value
        for shard in shards
        for value in dict(shard.dask).values()
        if isinstance(value, Future)
    ]
    unbound = [future for future in futures if future.status is None]
    if unbound:
        try:
            client = get_client()
        except ValueError:  # no client yet: they stay unbound
            return False
        for future in unbound:
            future.bind_client(client)
        held = client.who_has(unbound)
        client.cancel([future for future in unbound if not held.get(future.key)])
    return all(future.status not in (None, "cancelled") for future in futures)


def attached(shards):
    """The shards, once :func:`attach` finds them on a cluster."""
    if not attach(shards):
        raise RuntimeError(
            "This fitted estimator's shards are not on any cluster this process "
            "is connected to: they stay in the memory of the workers that built "
            "them, so it was loaded from a pickle made on another cluster, or "
            "its cluster has closed. Fit it again on this cluster."
        )
    return shards


def _workers():
    """Addresses of the workers when Dask computes on a distributed cluster,
    else none (a local scheduler: one shard)."""
    client = getattr(dask.base.get_scheduler(), "__self__", None)
    nthreads = getattr(client, "nthreads", None)
    return sorted(nthreads()) if callable(nthreads) else []


def _groups(row_chunks, n_groups):
    """Up to ``n_groups`` runs of consecutive non-empty blocks (arrays of block
    numbers) of about as many codes each: a run ends at the block end nearest
    its share of the codes."""
    blocks = np.flatnonzero(row_chunks)
    if len(blocks) == 0:
        return []
    ends = np.cumsum(np.asarray(row_chunks)[blocks])
    shares = ends[-1] * np.arange(1, n_groups) / n_groups
    cuts = 1 + np.abs(ends[:, None] - shares).argmin(axis=0)
    return np.split(blocks, np.unique(cuts[cuts < len(blocks)]))
