"""Encode a Dask collection lazily, block by block."""

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..codes import n_bytes_for
from ._collections import as_row_blocks


def transform(hasher, X):
    """Encode a Dask array or DataFrame with a fitted hasher, lazily.

    Parameters
    ----------
    hasher : BaseHasher
        A fitted hasher, classical or deep (fitted anywhere: here, on a
        sample, or with :func:`skhash.dask.fit`).
    X : dask array or dask DataFrame of shape (n_samples, n_features)
        Samples to encode. A DataFrame's partitions are encoded as DataFrames
        (so the hasher checks their column names) after their lengths are
        computed, as ``to_dask_array(lengths=True)`` does.

    Returns
    -------
    codes : dask array of shape (n_samples, ceil(n_bits / 8)), dtype uint8
        Packed codes, chunked as ``X``'s rows; nothing is computed yet.

    Notes
    -----
    The hasher enters the task graph once, as one key: each worker receives
    it (a deep hasher: its network) once, whatever the number of blocks. A
    deep hasher with ``device="auto"`` (the default) encodes on the worker's
    GPU when it has one, whatever device trained it, on the CPU otherwise;
    any other encodes on its training device, or on the CPU where CUDA is not
    available.

    Examples
    --------
    >>> import dask.array as da
    >>> from skhash import LSHHasher
    >>> from skhash.dask import transform
    >>> X = da.random.default_rng(0).standard_normal((1_000, 16), chunks=250)
    >>> hasher = LSHHasher(n_bits=12, random_state=0).fit(X[:100].compute())
    >>> codes = transform(hasher, X)
    >>> codes.shape, codes.chunks[1], codes.dtype
    ((1000, 2), (2,), dtype('uint8'))
    """
    check_is_fitted(hasher)
    n_bytes = n_bytes_for(getattr(hasher, "n_bits_", hasher.n_bits))
    model = dask.delayed(hasher, pure=True)
    if isinstance(X, dd.DataFrame):
        lengths = X.map_partitions(len).compute()
        blocks = [
            da.from_delayed(
                dask.delayed(_encode)(part, model, n_bytes),
                shape=(length, n_bytes),
                dtype=np.uint8,
            )
            for part, length in zip(X.to_delayed(), lengths, strict=True)
        ]
        return da.concatenate(blocks)
    X = as_row_blocks(X)
    return X.map_blocks(
        _encode,
        model,
        n_bytes,
        chunks=(X.chunks[0], (n_bytes,)),
        meta=np.empty((0, n_bytes), dtype=np.uint8),
    )


def _encode(block, hasher, n_bytes):
    if len(block) == 0:  # an empty partition; transform requires rows
        return np.empty((0, n_bytes), dtype=np.uint8)
    return hasher.transform(block)
