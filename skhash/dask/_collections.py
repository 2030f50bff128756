"""Dask inputs as row-chunked arrays: what every function of skhash.dask takes."""

import math

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
from dask import delayed


def as_row_blocks(X, name="X"):
    """``X`` as a 2-D Dask array chunked along rows only.

    A Dask DataFrame becomes its values (its partitions' lengths computed), its
    index dropped: the codes of :func:`skhash.dask.transform`, one ``uint8``
    column per byte, become the array of codes. A NumPy array becomes one
    block. Columns are merged into one chunk: encoding and search need whole
    rows.
    """
    X = _as_dask_array(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got an array of shape {X.shape}.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def as_sample_blocks(X):
    """``X`` as a Dask array chunked along rows only, each block whole samples:
    2-D feature rows (as :func:`as_row_blocks`), a 1-D array of image paths
    (``str`` or object dtype) or a 4-D array of images, (n, H, W, C) or (n, C,
    H, W), whose chunks along H, W and C are merged: a hasher reads whole
    images, and each block's pieces are joined where its rows are, no pixel
    crossing to another block.
    """
    X = _as_dask_array(X)
    if X.ndim == 4 or (X.ndim == 1 and X.dtype.kind in "OU"):
        return X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    if X.ndim != 2:
        raise ValueError(
            "X must be 2-D feature rows, a 1-D array of image paths (str or "
            "object dtype) or a 4-D array of images; got an array of shape "
            f"{X.shape} and dtype {X.dtype}."
        )
    return as_row_blocks(X)


def bag_partitions(bag):
    """The partitions of a Dask Bag as delayed objects, and their lengths
    (computed), as :func:`frame_partitions` for a DataFrame."""
    parts = bag.to_delayed()
    return parts, dask.compute(*[delayed(_count)(part) for part in parts])


def _count(values):
    return len(values) if hasattr(values, "__len__") else sum(1 for _ in values)


def aligned_labels(y, row_chunks):
    """Labels (1-D, or a 2-D indicator) as a Dask array with ``row_chunks``."""
    y = _as_dask_array(y)
    if y.ndim not in (1, 2) or y.shape[0] != sum(row_chunks):
        raise ValueError(
            f"y of shape {y.shape} does not match the {sum(row_chunks)} rows of X."
        )
    return y.rechunk((row_chunks,) + ((-1,) if y.ndim == 2 else ()))


def frame_partitions(X):
    """The partitions of a Dask DataFrame or Series as delayed objects, and
    their lengths (computed), the one from the other.

    Dask's optimizer merges the small partitions of a Parquet read of a few
    columns (its "tune" pass) when it counts their lengths but not when it
    builds their values, so that ``to_dask_array(lengths=True)`` fails on
    such a frame: the partitions are pinned first, unmerged.
    """
    with dask.config.set({"optimization.tune.active": False}):
        parts = X.to_delayed()
    return parts, dask.compute(*[delayed(len)(part) for part in parts])


def _as_dask_array(X):
    if isinstance(X, (dd.DataFrame, dd.Series)):
        parts, lengths = frame_partitions(X)
        width = (len(X.columns),) if isinstance(X, dd.DataFrame) else ()
        dtype = np.asarray(X._meta).dtype
        X = da.concatenate(
            [
                da.from_delayed(
                    delayed(np.asarray)(part), shape=(length, *width), dtype=dtype
                )
                for part, length in zip(parts, lengths, strict=True)
            ]
        )
    elif not isinstance(X, da.Array):
        X = np.asarray(X)
        X = da.from_array(X, chunks=X.shape or -1)
    if any(math.isnan(size) for size in X.shape):
        raise ValueError("Unknown chunk sizes: call compute_chunk_sizes() first.")
    return X
