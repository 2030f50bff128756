"""A fitted :class:`HammingNeighbors` saved as a directory of its shards, and
reopened on any cluster whose workers can read that directory.

Each shard is saved by the worker that holds it, with
:func:`skhash.neighbors.save_index`, into ``shard-<s>``; ``metadata.json``
beside them holds what the estimator adds (parameters, placement, the
shards' first rows, the row chunks of the fitted codes). A replicated index
saves one copy; reopened, every worker maps the same files, and so shares
their pages. Reopening maps each shard on a worker with
:func:`skhash.neighbors.load_index` (which checks its parts) and checks that
the shards are those the metadata describes.
"""

import json
import os
import shutil

import dask
from dask import delayed
from sklearn.utils.validation import check_is_fitted

from ..neighbors import load_index as load_shard
from ..neighbors import save_index as save_shard
from ..utils._directories import (
    METADATA,
    check_replaceable,
    new_directory,
    read_metadata,
    refused,
    skhash_version,
    swap_in,
    write_metadata,
)
from ._neighbors import HammingNeighbors
from ._placement import Placement, _workers, on_worker

__all__ = ["load_index", "save_index"]

FORMAT = "skhash.dask.index"
FORMAT_VERSION = 1


def save_index(search, directory):
    """Save a fitted :class:`HammingNeighbors` as a directory of its shards.

    Each worker writes the shards it holds (a replicated index: one copy),
    so ``directory`` must be on a file system that the workers and this
    process share (one machine's disk for a ``LocalCluster``, a network file
    system otherwise). The directory is written under a temporary name
    beside it and renamed into place: an interrupted save leaves nothing
    that loads; an existing saved index there is replaced, anything else is
    refused.

    Parameters
    ----------
    search : HammingNeighbors
        A fitted :class:`skhash.dask.HammingNeighbors`.
    directory : str or path-like
        Where to save. Its parent directory must exist.

    Returns
    -------
    directory : str
        The directory written.

    See Also
    --------
    load_index : Reopen it, on this cluster or another.
    skhash.neighbors.save_index : The format of each shard.
    """
    if not isinstance(search, HammingNeighbors):
        raise TypeError(
            "save_index saves a skhash.dask.HammingNeighbors, got "
            f"{type(search).__name__}; see skhash.neighbors.save_index."
        )
    check_is_fitted(search)
    directory = os.path.abspath(os.fspath(directory))
    check_replaceable(directory, FORMAT)
    shards = search._shards  # a replicated index: one copy
    temporary = new_directory(directory, "partial")
    try:
        names = [f"shard-{s}" for s in range(len(shards))]
        dask.compute(
            *[
                delayed(save_shard)(shard, os.path.join(temporary, name))
                for shard, name in zip(shards, names, strict=True)
            ]
        )
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "skhash_version": skhash_version(),
            "params": search.get_params(),
            "placement": search.placement_,
            "shard_offsets": search.shard_offsets_.tolist(),
            "row_chunks": [int(n) for n in search._row_chunks],
            "lazy": bool(search._fit_lazy),
            "shards": names,
            # Which shard is which: the digest each saved of its codes.
            "codes": [_codes_digest(os.path.join(temporary, n)) for n in names],
        }
        write_metadata(temporary, metadata)
        swap_in(temporary, directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return directory


def load_index(directory, *, placement=None):
    """Reopen a :class:`HammingNeighbors` saved by :func:`save_index` on the
    cluster of this process, each shard mapped on a worker.

    The workers must be able to read ``directory`` (see :func:`save_index`).
    Sharded, shard ``s`` of ``n`` opens on the ``s``-th worker (in turn when
    there are fewer workers than shards); replicated, every worker maps the
    one saved copy. Nothing is rebuilt: each shard's codes and multi-index
    tables are mapped from its files, checked as
    :func:`skhash.neighbors.load_index` checks them.

    Parameters
    ----------
    directory : str or path-like
        A directory written by :func:`save_index`.
    placement : {"shard", "replicate"}, default=None
        How to place the shards on this cluster; ``None``: as saved. A
        sharded index of several shards cannot be replicated (no worker
        holds it whole): fit it again.

    Returns
    -------
    search : HammingNeighbors
        Fitted, answering as the saved one did.

    Raises
    ------
    ValueError
        When the directory is not a saved index this version reads, a shard
        is refused by :func:`skhash.neighbors.load_index`, or the shards are
        not those the metadata describes; the message names the part.
    """
    directory = os.path.abspath(os.fspath(directory))
    metadata = read_metadata(directory, FORMAT, FORMAT_VERSION, "skhash.dask index")
    try:
        names, offsets = metadata["shards"], metadata["shard_offsets"]
        digests = metadata["codes"]
        kind = placement or metadata["placement"]
        search = HammingNeighbors(**metadata["params"])
        row_chunks, lazy = metadata["row_chunks"], metadata["lazy"]
        if (
            len(offsets) != len(names) + 1
            or len(digests) != len(names)
            or sum(row_chunks) != offsets[-1]
        ):
            raise ValueError("its shard offsets or row chunks do not fit its shards")
    except (KeyError, TypeError, ValueError) as error:
        raise refused(directory, f"{METADATA} is damaged ({error})") from error
    if kind not in ("shard", "replicate") or (kind == "replicate" and len(names) > 1):
        raise ValueError(
            f"placement={kind!r} is not possible for this index of {len(names)} "
            "shard(s): use 'shard', or 'replicate' for an index of one shard."
        )
    paths = [os.path.join(directory, name) for name in names]
    places = _workers() or [None]
    if kind == "replicate":
        paths = paths * len(places)
    shards = []
    for s, path in enumerate(paths):
        with on_worker(places[s % len(places)]):
            place = s % len(names)
            shards.append(delayed(_open_shard)(path, offsets, place, digests[place]))
    return search._fitted_on(Placement(kind, shards, offsets), row_chunks, lazy)


def _open_shard(path, offsets, s, digest):
    """Shard ``s`` mapped from ``path``, checked to be the one saved there:
    its codes' digest, and the number of rows the metadata gives it."""
    shard = load_shard(path)
    expected = offsets[s + 1] - offsets[s]
    if _codes_digest(path) != digest:
        raise refused(
            os.path.dirname(path),
            f"{os.path.basename(path)} holds other codes than the shard saved there",
        )
    if getattr(shard, "n_codes", None) != expected:
        raise refused(
            os.path.dirname(path),
            f"{os.path.basename(path)} does not hold the {expected} codes of "
            "its place among the shards",
        )
    return shard


def _codes_digest(path):
    """The digest of its codes that a saved shard's metadata holds (checked
    against its file by :func:`skhash.neighbors.load_index`)."""
    try:
        with open(os.path.join(path, METADATA), encoding="utf-8") as file:
            return json.load(file)["parts"]["codes"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise refused(
            os.path.dirname(path), f"{os.path.basename(path)} has no readable metadata"
        ) from error
