"""A fitted search saved as a directory of ``.npy`` parts, reopened mapped.

A pickle is read whole and its tables checked whole against the codes when
loaded: seconds or more for a large database. A directory holds each array
as its own ``.npy`` file, which :func:`load_index` maps without reading, and
a ``metadata.json`` that lets it check cheaply that the files belong
together (see its Notes); the kernels' safety rests on each multi-index
table being checked where it would have been built, on first use (see
``MultiIndex.map_tables``).
"""

import hashlib
import os
import shutil

import numpy as np

from ..utils._directories import (
    check_replaceable,
    new_directory,
    read_metadata,
    refused,
    skhash_version,
    swap_in,
    sync,
    write_metadata,
)
from ._hamming_index import HammingIndex
from ._hamming_neighbors import HammingNeighbors

__all__ = ["load_index", "save_index"]

FORMAT = "skhash.neighbors.index"
FORMAT_VERSION = 1

# Parts a reopening reads whole (checked by SHA-256); the others are mapped.
SMALL_PARTS = ("classes",)
KINDS = {"HammingIndex": HammingIndex, "HammingNeighbors": HammingNeighbors}
# Blocks of a large part that its sampled digest covers, first and last
# included: 32 reads of 4 KiB at reopening.
_SAMPLED_BLOCKS = 32
_BLOCK_BYTES = 4096
_CHUNK_BYTES = 2**24


def save_index(search, directory):
    """Save a fitted search as a directory that :func:`load_index` reopens.

    The directory holds the codes, their labels and the multi-index tables
    as ``.npy`` files, and a ``metadata.json`` describing them. The tables
    are saved when the search may use them (``algorithm="multi_index"``, or
    ``"auto"`` with the ``"numba"`` backend) or some are built; those not
    built yet are built straight into their file, in passes of bounded
    memory, and not kept in memory: the way to tables larger than memory is
    to fit on the codes mapped from a file, save, and reopen with
    :func:`load_index`. The directory is written under a temporary
    name beside it and renamed into place, so an interrupted save leaves
    nothing that loads; an existing saved index there is replaced, anything
    else is refused.

    Parameters
    ----------
    search : HammingNeighbors or HammingIndex
        A fitted :class:`skhash.HammingNeighbors` or a
        :class:`~skhash.neighbors.HammingIndex`.
    directory : str or path-like
        Where to save. Its parent directory must exist.

    Returns
    -------
    directory : str
        The directory written.

    See Also
    --------
    load_index : Reopen it.

    Examples
    --------
    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> from skhash import HammingNeighbors
    >>> from skhash.neighbors import load_index, save_index
    >>> codes = np.random.default_rng(0).integers(0, 256, (1000, 8), np.uint8)
    >>> nn = HammingNeighbors(n_neighbors=3).fit(codes)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_index(nn, f"{folder}/index")
    ...     print(sorted(os.listdir(path)))
    ...     reopened = load_index(path)  # mapped: nothing read, nothing built
    ...     np.array_equal(reopened.kneighbors(codes)[1], nn.kneighbors(codes)[1])
    ['codes.npy', 'metadata.json', 'multi_index_ids.npy', 'multi_index_offsets.npy']
    True
    """
    index, kind, params, classes = _unpack(search)
    directory = os.path.abspath(os.fspath(directory))
    check_replaceable(directory, FORMAT)
    arrays = {"codes": index.codes, "labels": index.labels, "classes": classes}
    arrays = {name: array for name, array in arrays.items() if array is not None}
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise ValueError(
                f"The {name} are Python objects, which a .npy file holds only "
                "as a pickle; convert them to numbers or strings to save."
            )
    engine = index._tables_to_save()
    temporary = new_directory(directory, "partial")
    try:
        parts = {
            part: _write(os.path.join(temporary, f"{part}.npy"), array)
            for part, array in arrays.items()
        }
        if engine is not None:
            parts.update(_write_tables(temporary, engine, index._threads(None)))
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "skhash_version": skhash_version(),
            "kind": kind,
            "params": params,
            "n_codes": index.n_codes,
            "n_bytes": index.codes.shape[1],
            "n_bits": index.n_bits,
            "multi_index": None if engine is None else {
                "n_tables": engine.n_tables, "per_probe": engine.per_probe,
                "substring_bits": engine.lengths.tolist(),
            },
            "parts": parts,
        }  # fmt: skip
        if hasattr(search, "feature_names_in_"):
            metadata["feature_names_in"] = search.feature_names_in_.tolist()
        write_metadata(temporary, metadata, default=_plain)
        swap_in(temporary, directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return directory


def load_index(directory, *, mmap_mode="r", verify=False):
    """Reopen a search saved by :func:`save_index`, mapped, without rebuilding.

    Returns the kind saved, a fitted :class:`skhash.HammingNeighbors` with
    its parameters or a :class:`~skhash.neighbors.HammingIndex`, answering
    as the saved one did. Its parts are checked as far as they can be without
    reading them (see Notes); a directory whose parts do not belong
    together, or are missing, truncated or of an unknown format, is refused.

    Parameters
    ----------
    directory : str or path-like
        A directory written by :func:`save_index`.
    mmap_mode : {"r", None}, default="r"
        ``"r"`` maps the codes, labels and tables from their files, which
        must not change while the search is open (as a database mapped at
        fit, see :meth:`skhash.HammingNeighbors.fit`); the tables are mapped
        copy-on-write, so the compiled kernels take them as they take tables
        built in memory, and the files are never written. ``None`` reads them
        into memory.
    verify : bool, default=False
        Also compare every file with the SHA-256 saved for it and check every
        multi-index table now: this reads the whole directory.

    Returns
    -------
    search : HammingNeighbors or HammingIndex
        The search saved, fitted.

    Raises
    ------
    ValueError
        When the directory is not a saved index this version reads, or a part
        is missing, truncated, from another index, or damaged; the message
        names the part.

    See Also
    --------
    save_index : Save a fitted search.

    Notes
    -----
    Reopening reads ``metadata.json``, the ``.npy`` headers, 32 blocks of
    4 KiB of each large part and the small ones whole. It checks the format
    version, that every part is there with the size, shape and dtype saved
    and agreeing with the others (one row per code), the sampled blocks of
    the large parts against their digest and the small parts against their
    SHA-256. A file from another index, truncated, extended or replaced
    fails these checks; a few bytes changed in place between the sampled
    blocks escape them, and only ``verify=True`` sees those. Whatever the
    files hold, the compiled kernels stay in bounds and the answers exact:
    each multi-index table is checked on its first use against the codes
    (it must be the table a build gives; sequential passes over the codes
    and the table), which raises ``ValueError`` for a damaged one. As with
    a database mapped at fit, each search checks that the codes' file keeps
    its identity, size and modification time.

    Examples
    --------
    See :func:`save_index`.
    """
    if mmap_mode not in ("r", None):
        raise ValueError(f'mmap_mode must be "r" or None, got {mmap_mode!r}.')
    directory = os.fspath(directory)
    metadata = read_metadata(
        directory, FORMAT, FORMAT_VERSION, "skhash.neighbors index"
    )
    try:
        kind, params = metadata["kind"], metadata["params"]
        n_codes, n_bytes = metadata["n_codes"], metadata["n_bytes"]
        tables = metadata["multi_index"]
        parts = metadata["parts"]
        feature_names = metadata.get("feature_names_in")
        if kind not in KINDS or not isinstance(params, dict):
            raise ValueError(f"kind={kind!r}")
        expected = _expected_shapes(kind, parts, n_codes, n_bytes, tables)
    except (KeyError, TypeError, ValueError) as error:
        raise refused(directory, f"metadata.json is damaged ({error})") from error
    arrays = {
        name: _open_part(directory, name, parts[name], shape, mmap_mode, verify)
        for name, shape in expected.items()
    }
    try:
        search = _rebuild(kind, params, arrays, tables, feature_names)
    except (KeyError, TypeError, ValueError) as error:
        raise refused(directory, f"metadata.json: {error}") from error
    if verify and "multi_index_ids" in arrays:
        index = search if kind == "HammingIndex" else search.index_
        index._tables_to_save().complete(index._threads(None))
    return search


def _unpack(search):
    """(index, kind, parameters, classes) of a fitted search."""
    if isinstance(search, HammingIndex):
        params = {
            name: getattr(search, name)
            for name in ("algorithm", "backend", "device", "n_jobs")
        }
        return search, "HammingIndex", params, None
    if type(search) is not HammingNeighbors:
        raise TypeError(
            "save_index saves a HammingNeighbors or a HammingIndex, got "
            f"{type(search).__name__}."
        )
    if not hasattr(search, "index_"):
        raise ValueError("This HammingNeighbors is not fitted yet: fit it first.")
    return (
        search.index_, "HammingNeighbors", search.get_params(),
        getattr(search, "classes_", None),
    )  # fmt: skip


def _rebuild(kind, params, arrays, tables, feature_names):
    """The search saved, over its opened parts; ValueError for what does not
    fit (parameters, labels, tables)."""
    if kind == "HammingIndex":
        n_jobs = params.get("n_jobs")
        if n_jobs is not None and type(n_jobs) is not int:
            raise ValueError(f"n_jobs={n_jobs!r}")
        index = HammingIndex(arrays["codes"], arrays.get("labels"), **params)
    else:
        search = HammingNeighbors(**params)
        search._validate_params()
        index = HammingIndex(
            arrays["codes"], arrays.get("labels"), algorithm=search.algorithm,
            backend=search.backend, device=search.device, n_jobs=search.n_jobs,
        )  # fmt: skip
    if tables is not None:
        index._map_tables(
            arrays["multi_index_offsets"], arrays["multi_index_ids"],
            tables["per_probe"],
        )  # fmt: skip
    if kind == "HammingIndex":
        return index
    search._fitted_on(index, arrays.get("classes"))
    if feature_names is not None:
        names = np.asarray(feature_names, dtype=object)
        if names.shape != (search.n_features_in_,) or not all(
            isinstance(name, str) for name in names
        ):
            raise ValueError(f"feature_names_in={feature_names!r}")
        search.feature_names_in_ = names
    return search


def _expected_shapes(kind, parts, n_codes, n_bytes, tables):
    """Shape each part listed must have, from the index's own numbers."""
    for name, number in (("n_codes", n_codes), ("n_bytes", n_bytes)):
        if type(number) is not int or number < 1:
            raise ValueError(f"{name}={number!r}")
    expected = {"codes": (n_codes, n_bytes)}
    if "labels" in parts:
        labels = tuple(parts["labels"]["shape"])
        if labels[:1] != (n_codes,) or len(labels) > 2:
            raise ValueError(f"labels of shape {labels} for {n_codes} codes")
        expected["labels"] = labels
    if kind == "HammingNeighbors" and len(expected.get("labels", ())) == 1:
        # Those of 1-D labels, saved rather than found again in every label.
        expected["classes"] = tuple(parts["classes"]["shape"])
    if tables is not None:
        from ._tables import layout

        _, lengths = layout(n_bytes, n_codes)
        if tables["n_tables"] != len(lengths):
            raise ValueError(f"{tables['n_tables']} tables, not {len(lengths)}")
        # Tables cut another way (by a skhash that lays them out otherwise)
        # would fail their check on first use, less clearly; directories
        # saved before the layout was recorded have the layout of today.
        saved_bits = tables.get("substring_bits", lengths.tolist())
        if saved_bits != lengths.tolist():
            raise ValueError(
                f"tables of substrings of {saved_bits} bits, where this skhash "
                f"cuts {lengths.tolist()}: save the index again with it"
            )
        n_buckets = 2 ** int(lengths.max())
        expected["multi_index_offsets"] = (len(lengths), n_buckets + 1)
        expected["multi_index_ids"] = (len(lengths), n_codes)
    if set(parts) != set(expected):
        raise ValueError(f"parts {sorted(parts)}, expected {sorted(expected)}")
    return expected


def _open_part(directory, name, saved, shape, mmap_mode, verify):
    """One part as an array, mapped or read, once its file passes the checks
    that do not read it whole (all of them with ``verify``)."""
    path = os.path.join(directory, f"{name}.npy")
    try:
        if saved["file"] != f"{name}.npy" or tuple(saved["shape"]) != shape:
            raise ValueError(f"metadata.json lists it with shape {saved['shape']}")
        if not os.path.isfile(path):
            raise ValueError("the file is missing")
        size = os.path.getsize(path)
        if size != saved["bytes"]:
            raise ValueError(
                f"the file has {size} bytes, {saved['bytes']} were saved: it is "
                "truncated, or from another index"
            )
        if name in SMALL_PARTS or verify:
            if _sha256(path) != saved["sha256"]:
                raise ValueError("its SHA-256 is not the one saved")
        elif _sampled_digest(path) != saved["sample"]:
            raise ValueError(
                "its sampled blocks are not those saved: it is from another "
                "index, or was altered"
            )
        mode = None if name in SMALL_PARTS else mmap_mode
        if mode is not None and name.startswith("multi_index_"):
            mode = "c"  # writeable pages for the kernels, never written back
        array = np.load(path, mmap_mode=mode, allow_pickle=False)
        if array.shape != shape or array.dtype.str != saved["dtype"]:
            raise ValueError(
                f"it holds {array.dtype.str} of shape {array.shape}, not the "
                f"{saved['dtype']} of shape {shape} saved"
            )
        if not array.flags.c_contiguous:
            raise ValueError("it is not in C order")
    except (KeyError, TypeError, ValueError, OSError, EOFError) as error:
        raise refused(directory, f"{name}.npy: {error}") from error
    return array


def _plain(value):
    """A NumPy scalar parameter as JSON's number or string (json.dump's
    ``default``)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{value!r} cannot be saved in metadata.json.")


def _write(path, array):
    """Save one part and describe it for metadata.json."""
    with open(path, "wb") as file:
        np.save(file, array, allow_pickle=False)
        sync(file)
    return _describe(path, array)


def _write_tables(directory, engine, n_jobs):
    """The multi-index tables' parts. The ids, 4 bytes per code and table,
    are built straight into their file, mapped, so that tables larger than
    memory are saved without ever being in it (see
    ``MultiIndex.write_tables``)."""
    path = os.path.join(directory, "multi_index_ids.npy")
    ids = np.lib.format.open_memmap(path, "w+", np.int32, engine.ids.shape)
    offsets = engine.write_tables(ids, n_jobs)
    ids.flush()
    with open(path, "rb+") as file:
        sync(file)
    return {
        "multi_index_offsets": _write(
            os.path.join(directory, "multi_index_offsets.npy"), offsets
        ),
        "multi_index_ids": _describe(path, ids),
    }


def _describe(path, array):
    """What metadata.json says of a part written to ``path`` from ``array``."""
    return {
        "file": os.path.basename(path),
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "bytes": os.path.getsize(path),
        "sha256": _sha256(path),
        "sample": _sampled_digest(path),
    }


def _sha256(path):
    checksum = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            checksum.update(chunk)
    return checksum.hexdigest()


def _sampled_digest(path):
    """BLAKE2b of a file's size and of blocks spread evenly over it (all of a
    small file): a few reads that tell most files apart."""
    size = os.path.getsize(path)
    fingerprint = hashlib.blake2b(str(size).encode(), digest_size=16)
    starts = np.linspace(0, max(0, size - _BLOCK_BYTES), _SAMPLED_BLOCKS)
    with open(path, "rb") as file:
        for start in np.unique(starts.astype(np.int64)).tolist():
            file.seek(start)
            fingerprint.update(file.read(_BLOCK_BYTES))
    return fingerprint.hexdigest()
