"""Where the index of a database goes: sharded, one shard per worker of
consecutive blocks, or replicated, a copy of the whole on every worker."""

import contextlib

import dask
import numpy as np
from dask import delayed

from . import _shards

# The share of a worker's memory limit that a copy of the index may take
# (building it, and searching, take room too).
REPLICA_SHARE = 1 / 4


class Placement:
    """Where a fitted database is: its shards, persisted on the workers (or
    the copies of one replicated index), the first global row of each shard,
    and which of them search which query block."""

    def __init__(self, kind, shards, offsets):
        """Persist the delayed ``shards`` (``kind="replicate"``: copies of
        one index): they stay where they are computed, futures under
        distributed. Shard ``s`` holds the rows ``offsets[s]`` on."""
        self.kind = kind
        self.persisted = list(dask.persist(*shards))
        self.offsets = np.asarray(offsets, np.intp)

    @classmethod
    def build(cls, codes, labels, params, kind, y=None):
        """The shards of the codes, sharded or replicated as ``kind`` says
        or, if ``"auto"``, as :func:`replicate_fits` decides (for the codes
        and their labels ``y``)."""
        if kind == "auto":
            kind = "replicate" if replicate_fits(codes, y) else "shard"
        if kind == "replicate":
            shards, starts = build_replicas(codes, labels, params), [0]
        else:
            shards, starts = build_shards(codes, labels, params)
        return cls(kind, shards, [*starts, codes.shape[0]])

    def __setstate__(self, state):
        vars(self).update(state)
        # Bound at once to this process's client, if it holds the shards, so
        # that they outlive the pickled original.
        attach(self.persisted)

    @property
    def n_copies(self):
        """How many workers can take a query block: copies of the index."""
        return len(self.persisted) if self.kind == "replicate" else 1

    def shards_for(self, block_number):
        """The shards, checked to be on a cluster of this process, that
        search query block ``block_number``: all of them, or the copy of a
        replicated index whose turn it is."""
        persisted = attached(self.persisted)
        if self.kind == "replicate":
            return [persisted[block_number % len(persisted)]]
        return persisted

    def fan_out(self, block, function, rows=None, **task):
        """Delayed ``function(shard, codes, task, rows)`` of every shard for a
        query block, each with its :class:`_shards.Task`.

        The parts go to their merge as separate arguments: in a list, Dask
        (2026.8) leaves the persisted shards' futures out of the graph (see
        dask/dask#12055), and a lazy answer would lose its shards with the
        estimator.
        """
        return [
            delayed(function)(
                shard,
                block.codes,
                _shards.Task(int(offset), block.own_start_in(s), **task),
                rows,
            )
            for s, (shard, offset) in enumerate(
                zip(self.shards_for(block.number), self.offsets, strict=False)
            )
        ]


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
    workers = _workers()
    groups = _groups(row_chunks, max(1, len(workers)))
    shards = [
        _build_on(workers[s] if workers else None, codes, labels, group, params)
        for s, group in enumerate(groups)
    ]
    return shards, [int(starts[group[0]]) for group in groups]


def build_replicas(codes, labels, params):
    """Delayed copies of one ``HammingIndex(..., **params)`` over all the
    codes, one built on each worker (one in all under a local scheduler):
    every block moves to every worker once. Persist them, as the shards of
    :func:`build_shards`."""
    blocks = np.flatnonzero(codes.chunks[0])
    return [
        _build_on(worker, codes, labels, blocks, params)
        for worker in (_workers() or [None])
    ]


def replicate_fits(codes, y=None):
    """The rule of ``placement="auto"``: replicate when there are several
    workers and a copy of the index takes at most :data:`REPLICA_SHARE` of
    the smallest worker's memory limit. A copy is counted as the codes,
    twice their size for the multi-index tables (4-byte ids, a table per
    16 to 32 bits) and 8 bytes per label; a worker without a limit counts as
    too small."""
    if len(_workers()) < 2:
        return False
    client = dask.base.get_scheduler().__self__
    limits = [w.get("memory_limit") or 0 for w in _worker_info(client).values()]
    return copy_bytes(codes, y) <= REPLICA_SHARE * min(limits)


def copy_bytes(codes, y=None):
    """What :func:`replicate_fits` counts for a copy of the index."""
    shape = None if y is None else getattr(y, "shape", None) or np.shape(y)
    n_labels = 0 if shape is None else int(shape[1]) if len(shape) == 2 else 1
    return codes.shape[0] * (3 * codes.shape[1] + 8 * n_labels)


def _build_on(worker, codes, labels, blocks, params):
    """Delayed ``build_shard`` of the row ``blocks`` (block numbers) of the
    codes and their labels, placed on ``worker`` (None: anywhere)."""
    delayed_blocks = codes.to_delayed().ravel()
    block_labels = [labels[b] for b in blocks] if len(labels) else []
    with on_worker(worker):
        return delayed(_shards.build_shard)(
            params, len(blocks), *[delayed_blocks[b] for b in blocks], *block_labels
        )


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


def on_worker(worker):
    """A context in which Dask tasks are placed on ``worker`` (or, if it is
    lost, on another); None: anywhere."""
    if worker is None:
        return contextlib.nullcontext()
    return dask.annotate(workers=[worker], allow_other_workers=True)


def _workers():
    """Addresses of the workers when Dask computes on a distributed cluster,
    else none (a local scheduler: one shard)."""
    client = getattr(dask.base.get_scheduler(), "__self__", None)
    nthreads = getattr(client, "nthreads", None)
    return sorted(nthreads()) if callable(nthreads) else []


def _worker_info(client):
    return client.scheduler_info(n_workers=-1)["workers"]


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
