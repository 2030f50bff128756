"""Encode a Dask collection lazily, block by block, keyed by the user's ids."""

import os

import dask
import dask.array as da
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..base import BaseHasher
from ..codes import n_bytes_for
from ._collections import as_sample_blocks, bag_partitions


def transform(hasher, X, *, id_column=None):
    """Encode a Dask array, DataFrame or bag of image paths, lazily.

    Parameters
    ----------
    hasher : BaseHasher
        A fitted hasher, classical or deep (fitted anywhere: here, on a
        sample, or with :func:`skhash.dask.fit`).
    X : dask array, array-like, DataFrame (Dask or pandas) or dask bag
        Samples to encode, each block (partition) given whole to
        ``hasher.transform``:

        - feature rows, (n_samples, n_features). A DataFrame's partitions
          are encoded as DataFrames, so the hasher checks their column names
          as its ``transform`` does. A pandas DataFrame is one partition;
        - images, for the hashers that take them (the deep ones): a 1-D
          array (or Dask Series) of image file paths, a 4-D ``uint8`` array
          of images, (n_samples, H, W, C) or (n_samples, C, H, W), whose
          chunks along H, W and C are merged (a block is whole images), or a
          :class:`dask.bag.Bag` of paths (``str`` or
          ``os.PathLike``), each partition one block. The paths must name
          files that the workers can read.

        Any other array-like is one block.
    id_column : str, default=None
        The column of a DataFrame ``X`` that holds the samples' ids. Its values
        become the index of the codes and it is not a feature: the hasher sees
        the other columns. ``None`` keys the codes by ``X``'s index.

    Returns
    -------
    codes : dask array or dask DataFrame
        Nothing is computed yet (but the ranges of ``id_column``, or the
        lengths of a bag's partitions, see Notes).

        - From an array or Series: a Dask array of shape (n_samples, ceil(n_bits / 8)),
          dtype ``uint8``, the packed codes, chunked as ``X``'s rows.
        - From a bag: the same Dask array, in the bag's order, one chunk of
          rows per partition (its length known, empty partitions included).
        - From a DataFrame: a Dask DataFrame of the same packed codes, one
          ``uint8`` column per byte, ``code_0`` to ``code_{n_bytes - 1}``,
          indexed by ``X``'s index or by the values of ``id_column`` (the
          index then takes its name), one partition per partition of ``X``.
          It writes to and reads from Parquet with :mod:`dask.dataframe`, and
          :class:`HammingNeighbors` and :func:`similarity_join` take it as
          they take the array.

    Raises
    ------
    TypeError
        If ``id_column`` is given with an ``X`` that is not a DataFrame. At
        compute time, if a bag or an object array of paths holds something
        other than a ``str`` or ``os.PathLike``.
    ValueError
        If ``id_column`` is not a column of ``X``; if ``X`` holds images (an
        array of paths or a bag, a 4-D array) and ``hasher`` has the
        transform of :class:`~skhash.base.BaseHasher`, which encodes only
        feature rows (the classical hashers). The hasher's own errors (a
        missing image file, a :class:`FileNotFoundError` naming it; images
        given to a deep hasher fitted on feature rows) come at compute time.

    Notes
    -----
    The divisions of the codes are those of ``X``: known when ``X``'s are (a
    pandas ``X``: when its index, or its ``id_column``, is sorted), unknown
    otherwise. With a Dask ``X`` and ``id_column``, that column alone is read
    at once, to find each partition's first and last id: the divisions are
    known when the ids increase within each partition and from each partition
    to the next (the order Dask's divisions promise), with no empty partition
    and no missing id, and unknown otherwise. The rows are never moved: ids
    out of order give codes in ``X``'s order, with unknown divisions.

    A bag's partitions are computed once when ``transform`` is called, to
    count their paths (no image is read), so that the codes have known
    chunks: they can be sliced, written with ``to_zarr`` and searched, which
    a Dask array of unknown chunk sizes cannot without encoding it first.

    The hasher enters the task graph once, as one key: each worker receives
    it (a deep hasher: its network) once, whatever the number of blocks. A
    deep hasher with ``device="auto"`` (the default) encodes on the worker's
    GPU when it has one, whatever device trained it, on the CPU otherwise;
    any other encodes on its training device, or on the CPU where CUDA is not
    available.

    Searching a DataFrame of codes (:class:`HammingNeighbors`,
    :func:`similarity_join`) first computes the lengths of its partitions,
    which encodes them: write the codes to Parquet, or ``persist`` them,
    before searching them when encoding is costly.

    Examples
    --------
    >>> import dask.array as da
    >>> import dask.dataframe as dd
    >>> from skhash import LSHHasher
    >>> from skhash.dask import transform
    >>> X = da.random.default_rng(0).standard_normal((1_000, 16), chunks=250)
    >>> hasher = LSHHasher(n_bits=12, random_state=0).fit(X[:100].compute())
    >>> codes = transform(hasher, X)
    >>> codes.shape, codes.chunks[1], codes.dtype
    ((1000, 2), (2,), dtype('uint8'))

    A DataFrame's ids key its codes:

    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame(rng.standard_normal((1_000, 4)), columns=list("abcd"))
    >>> frame["id"] = np.arange(1_000) * 10
    >>> hasher = LSHHasher(n_bits=12, random_state=0).fit(frame.drop(columns="id"))
    >>> table = dd.from_pandas(frame, npartitions=4)
    >>> by_id = transform(hasher, table, id_column="id")
    >>> list(by_id.columns), by_id.index.name, by_id.divisions
    (['code_0', 'code_1'], 'id', (0, 2500, 5000, 7500, 9990))

    A deep hasher encodes images (here a 4-D ``uint8`` array; a Dask array or
    bag of file paths alike), a block of whole images at a time:

    >>> from skhash import HashNetHasher
    >>> images = da.random.default_rng(0).integers(
    ...     0, 256, (400, 8, 8, 3), dtype=np.uint8, chunks=(100, 4, 8, 3)
    ... )
    >>> deep = HashNetHasher(n_bits=8, max_epochs=1, random_state=0)
    >>> deep = deep.fit(images[:100].compute(), np.arange(100) % 2)
    >>> transform(deep, images).chunks
    ((100, 100, 100, 100), (1,))
    """
    check_is_fitted(hasher)
    n_bytes = n_bytes_for(getattr(hasher, "n_bits_", hasher.n_bits))
    model = dask.delayed(hasher, pure=True)
    if isinstance(X, pd.DataFrame | dd.DataFrame):
        return _encode_frame(X, id_column, model, n_bytes)
    if id_column is not None:
        raise TypeError(
            "id_column names a column of a DataFrame X, but X is a "
            f"{type(X).__name__}: pass a DataFrame, or leave id_column out."
        )
    if isinstance(X, db.Bag):
        _check_takes_images(hasher, "a bag of image paths")
        return _encode_bag(X, model, n_bytes)
    X = as_sample_blocks(X)
    if X.ndim == 1:
        _check_takes_images(hasher, "image paths")
        encode, axes = _encode_paths, {"new_axis": 1}
    elif X.ndim == 4:
        _check_takes_images(hasher, "a 4-D array of images")
        encode, axes = _encode, {"drop_axis": (2, 3)}
    else:
        encode, axes = _encode, {}
    return X.map_blocks(
        encode,
        model,
        n_bytes,
        chunks=(X.chunks[0], (n_bytes,)),
        meta=np.empty((0, n_bytes), dtype=np.uint8),
        **axes,
    )


def _check_takes_images(hasher, what):
    # BaseHasher.transform validates 2-D float rows: it would refuse every
    # block, after the hasher went to the workers. Hashers with a transform
    # of their own (the deep ones) say at compute time what they refuse.
    if getattr(type(hasher), "transform", None) is BaseHasher.transform:
        raise ValueError(
            f"{type(hasher).__name__} encodes feature rows (a 2-D array of "
            f"numbers), not {what}. The deep hashers (skhash.deep) encode "
            "images; or encode features extracted from the images."
        )


def _encode_bag(X, model, n_bytes):
    # Chunks known, as from an array (slicing, to_zarr and the searches need
    # them): counting the paths computes the bag's partitions once more, but
    # reads no image.
    parts, lengths = bag_partitions(X)
    encode = dask.delayed(_encode_paths, pure=True)
    blocks = [
        da.from_delayed(encode(part, model, n_bytes), (length, n_bytes), np.uint8)
        for part, length in zip(parts, lengths, strict=True)
    ]
    return da.concatenate(blocks or [da.empty((0, n_bytes), dtype=np.uint8)])


def _encode_frame(X, id_column, model, n_bytes):
    if id_column is not None and id_column not in X.columns:
        where = " (it is X's index)" if id_column == X.index.name else ""
        raise ValueError(
            f"id_column={id_column!r} is not a column of X{where}; its columns "
            f"are {list(X.columns)}."
        )
    if isinstance(X, pd.DataFrame):
        if id_column is not None:
            X = X.set_index(id_column)
        # One partition, in the given order: divisions known when sorted.
        X, id_column = dd.from_pandas(X, npartitions=1, sort=False), None
    index = X._meta.index if id_column is None else X._meta.set_index(id_column).index
    columns = _code_columns(n_bytes)
    meta = pd.DataFrame(np.empty((0, n_bytes), np.uint8), index, columns)
    if id_column is None:
        return X.map_partitions(_encode_partition, model, n_bytes, meta=meta)
    # Dask merges small partitions where it reads few columns (its "tune"
    # pass): the ids alone would come in fewer partitions than the features,
    # and divisions set over a read that it merges later break the graph.
    # Without that pass, and with X's partitions pinned as delayed objects,
    # the divisions found are those of the partitions encoded.
    with dask.config.set({"optimization.tune.active": False}):
        partitions = X.to_delayed()
        ids = X[id_column].to_delayed()
    encode = dask.delayed(_encode_partition, pure=True)
    return dd.from_delayed(
        [encode(part, model, n_bytes, id_column) for part in partitions],
        meta=meta,
        divisions=_sorted_divisions(ids, len(partitions)),
    )


def _sorted_divisions(ids, n_partitions):
    """The divisions of ``n_partitions`` partitions of sorted ``ids``, or None."""
    ranges = dask.compute(*[dask.delayed(_sorted_range)(part) for part in ids])
    if len(ranges) != n_partitions or any(bounds is None for bounds in ranges):
        return None
    lows, highs = zip(*ranges, strict=True)
    try:
        # Strictly: an id shared by two partitions has no division.
        if all(high < low for high, low in zip(highs[:-1], lows[1:], strict=True)):
            return (*lows, highs[-1])
    except TypeError:  # ids that do not compare across partitions
        pass
    return None


def _sorted_range(ids):
    try:
        if len(ids) == 0 or ids.isna().any() or not ids.is_monotonic_increasing:
            return None
    except TypeError:  # ids of types that do not compare
        return None
    return ids.iloc[[0, -1]].tolist()  # Python scalars, as Dask's divisions


def _encode_partition(frame, hasher, n_bytes, id_column=None):
    if id_column is not None:
        frame = frame.set_index(id_column)
    codes = _encode(frame, hasher, n_bytes)
    return pd.DataFrame(codes, index=frame.index, columns=_code_columns(n_bytes))


def _code_columns(n_bytes):
    return [f"code_{i}" for i in range(n_bytes)]


def _encode_paths(values, hasher, n_bytes):
    """Codes of image paths: a 1-D array block or a bag's partition."""
    paths = np.fromiter(values, dtype=object)  # tuples stay elements
    for value in paths:
        if not isinstance(value, str | os.PathLike):
            raise TypeError(
                "Image paths must be str or os.PathLike; found "
                f"{type(value).__name__} {value!r} among them."
            )
    return _encode(paths, hasher, n_bytes)


def _encode(block, hasher, n_bytes):
    if len(block) == 0:  # an empty partition; transform requires rows
        return np.empty((0, n_bytes), dtype=np.uint8)
    return hasher.transform(block)
