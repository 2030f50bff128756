"""Fit a hasher on a Dask array: exactly from the partitions' sums, or on a
random sample of rows."""

import dask
import dask.array as da
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_feature_names

from .._supervision import check_supervision
from ..base import fit_from_rows, fits_from_rows
from ._collections import aligned_labels, as_row_blocks

# Partial sums added together per reduction task: a tree, so that no task
# receives the statistics of thousands of partitions at once.
_FAN_IN = 8


def fit(hasher, X, y=None, *, n_samples=None, random_state=None):
    """Fit a hasher on a Dask array without collecting it.

    The hashers whose fit takes only sums over rows (:class:`~skhash.LSHHasher`,
    :class:`~skhash.ITQHasher`, :class:`~skhash.CCAITQHasher`) are fitted
    exactly: each of their passes over the data is a sum of the partitions'
    sums, computed where the partitions are, and the model equals (to
    floating-point rounding) the one ``hasher.fit`` learns from the collected
    array with the same ``random_state``. Any other hasher is fitted on
    ``n_samples`` rows drawn at random and collected: pass ``n_samples``,
    which must then fit in the memory of this process.

    Parameters
    ----------
    hasher : BaseHasher
        The hasher to fit (it is modified, as by its own ``fit``).
    X : dask array or dask DataFrame of shape (n_samples, n_features)
        Training data, chunked along rows (NumPy arrays are accepted too).
    y : dask or NumPy array of shape (n_samples,) or (n_samples, n_labels), \
default=None
        Labels, for the supervised hashers.
    n_samples : int, default=None
        Fit on this many rows drawn uniformly without replacement (all rows
        when there are fewer). Required by the hashers that cannot be fitted
        from sums; optional, to save passes, for the others.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw of rows; the hasher's own ``random_state`` seeds the
        rest.

    Returns
    -------
    hasher : BaseHasher
        The fitted hasher: the usual estimator, which encodes NumPy arrays
        here and Dask arrays with :func:`skhash.dask.transform`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skhash import ITQHasher
    >>> from skhash.dask import fit
    >>> X = da.random.default_rng(0).standard_normal((10_000, 16), chunks=2_500)
    >>> local = ITQHasher(8, random_state=0).fit(X.compute())
    >>> distributed = fit(ITQHasher(8, random_state=0), X)
    >>> np.allclose(distributed.rotation_, local.rotation_)
    True
    """
    # Feature names, as scikit-learn records them, from a DataFrame's columns.
    columns = getattr(X, "_meta", None)
    X = as_row_blocks(X)
    if n_samples is not None:
        _fit_on_sample(hasher, X, y, n_samples, random_state)
    elif fits_from_rows(hasher):
        supervised = hasher.__sklearn_tags__().target_tags.required

        def rows_of(dtype):
            data = X.astype(dtype or (X.dtype if X.dtype.kind == "f" else np.float64))
            if not da.isfinite(data).all().compute():
                raise ValueError("Input X contains NaN or infinity.")
            if not supervised:
                return DaskRows.of(data)
            return DaskRows.of(data, _checked_labels(y, X.chunks[0]))

        fit_from_rows(hasher, rows_of, *X.shape)
    else:
        raise ValueError(
            f"{type(hasher).__name__} cannot be fitted from sums over partitions; "
            "pass n_samples to fit it on that many rows drawn at random."
        )
    _check_feature_names(hasher, columns, reset=True)
    return hasher


def _fit_on_sample(hasher, X, y, n_samples, random_state):
    n_samples = min(int(n_samples), X.shape[0])
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    # Generator.choice draws few of many rows without permuting them all.
    chosen = np.sort(
        np.random.default_rng(seed).choice(X.shape[0], n_samples, replace=False)
    )
    if y is not None:
        y = aligned_labels(y, X.chunks[0])[chosen]
    hasher.fit(*dask.compute(X[chosen], y))


def _checked_labels(y, row_chunks):
    """``y`` checked as ``check_supervision`` does, as a float64 indicator
    matrix (classes in sorted order, as CCA-ITQ's fit takes them)."""
    if y is None:
        check_supervision(y, len(row_chunks))  # raises the usual error
    y = aligned_labels(y, row_chunks)
    if y.ndim == 1:
        classes = da.unique(y).compute()
        check_supervision(classes, len(classes))  # at least two classes
        return y.map_blocks(
            lambda block: (block[:, None] == classes).astype(np.float64),
            new_axis=1,
            chunks=(row_chunks, (len(classes),)),
            dtype=np.float64,
        )
    binary, shared = dask.compute(da.isin(y, (0, 1)).all(), y.all(axis=0))
    if not binary:
        raise ValueError("A 2-D y must be a multi-label indicator matrix of 0 and 1.")
    # Two rows sharing exactly the labels every sample has: the same verdict.
    check_supervision(np.vstack([shared, shared]), 2)
    return y.astype(np.float64)


class DaskRows:
    """:class:`skhash.utils._rows.Rows` over the partitions of Dask arrays.

    Each sum is computed where the partitions are, then added up in a tree of
    tasks; :meth:`map` keeps its result on the cluster (persisted).
    """

    def __init__(self, blocks, n_samples):
        self.blocks, self.n_samples = blocks, n_samples

    @classmethod
    def of(cls, *arrays):
        """Rows of row-aligned Dask arrays chunked along rows only."""
        blocks = zip(*(array.to_delayed().ravel() for array in arrays), strict=True)
        return cls(list(blocks), arrays[0].shape[0])

    def reduce(self, statistic):
        terms = [dask.delayed(statistic)(*block) for block in self.blocks]
        while len(terms) > 1:
            terms = [
                dask.delayed(_add)(*terms[start : start + _FAN_IN])
                for start in range(0, len(terms), _FAN_IN)
            ]
        return terms[0].compute()

    def map(self, function):
        mapped = dask.persist(
            *(dask.delayed(function)(*block) for block in self.blocks)
        )
        return DaskRows([(block,) for block in mapped], self.n_samples)


def _add(*terms):
    return tuple(sum(parts) for parts in zip(*terms, strict=True))
