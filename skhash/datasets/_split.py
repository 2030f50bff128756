"""The query / training / database split used by the learning-to-hash papers."""

from numbers import Integral
from typing import Any, NamedTuple

import numpy as np
from sklearn.utils import check_consistent_length, check_random_state
from sklearn.utils._indexing import _safe_indexing
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import column_or_1d

from ..utils._param_validation import Interval

__all__ = ["RetrievalSplit", "retrieval_split"]


class RetrievalSplit(NamedTuple):
    """The six parts returned by :func:`retrieval_split`.

    A named tuple: unpack it in this order, or read the parts by name.
    """

    X_query: Any
    X_train: Any
    X_database: Any
    y_query: Any
    y_train: Any
    y_database: Any


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "n_queries_per_class": [Interval(Integral, 1, None, closed="left")],
        "n_train_per_class": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def retrieval_split(
    X, y, *, n_queries_per_class=100, n_train_per_class=500, random_state=None
):
    """Split data into queries, a training set and a database, per class.

    The protocol of the learning-to-hash papers on 10-class image sets:
    `n_queries_per_class` samples of every class are held out as queries
    (1,000 for 10 classes); the database is everything else; the training
    set is `n_train_per_class` samples of every class drawn from the database
    (5,000 for 10 classes). The training samples stay in the database, as in
    the papers.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data. Anything that scikit-learn can index by rows works: NumPy
        arrays, sparse matrices, pandas DataFrames, lists.

    y : array-like of shape (n_samples,)
        The class labels. They must be 1-D, since the counts are per class; a
        multi-label indicator matrix is refused (see Notes).

    n_queries_per_class : int, default=100
        Number of queries drawn from each class.

    n_train_per_class : int or None, default=500
        Number of training samples drawn from each class among the
        non-queries. None makes the whole database the training set.

    random_state : int, RandomState instance or None, default=None
        Controls the draws. Pass an int for reproducible output across
        multiple function calls.

    Returns
    -------
    split : RetrievalSplit
        A named tuple ``(X_query, X_train, X_database, y_query, y_train,
        y_database)``: unpack it like the result of
        :func:`~sklearn.model_selection.train_test_split`, or read its fields
        by name. Each part keeps the rows in their original relative order
        and has the type of `X` (or `y`).

    Raises
    ------
    ValueError
        If `y` is not 1-D, or if a class has fewer than
        ``n_queries_per_class + n_train_per_class`` samples
        (``n_queries_per_class + 1`` when `n_train_per_class` is None, so that
        every query has a relevant item in the database).

    See Also
    --------
    sklearn.model_selection.train_test_split : A random split, for multi-label data.

    Notes
    -----
    To get the row indices of the three parts (for example to split images
    and precomputed features the same way), pass ``np.arange(n_samples)`` as
    `X`.

    Multi-label benchmarks (NUS-WIDE, Yeast) draw their queries at random
    rather than per class; use :func:`~sklearn.model_selection.train_test_split`
    for them: the queries are its test part and the database its training
    part.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash.datasets import retrieval_split
    >>> X = np.arange(60).reshape(30, 2)
    >>> y = np.repeat([0, 1, 2], 10)
    >>> X_query, X_train, X_database, y_query, y_train, y_database = retrieval_split(
    ...     X, y, n_queries_per_class=2, n_train_per_class=3, random_state=0
    ... )
    >>> X_query.shape, X_train.shape, X_database.shape
    ((6, 2), (9, 2), (24, 2))
    >>> np.bincount(y_train)
    array([3, 3, 3])
    """
    check_consistent_length(X, y)
    y_array = np.asarray(y)
    if y_array.ndim != 1 and not (y_array.ndim == 2 and y_array.shape[1] == 1):
        raise ValueError(
            "retrieval_split draws a fixed number of samples per class and needs "
            f"1-D class labels; got y of shape {y_array.shape}. For multi-label "
            "data, draw the queries at random with "
            "sklearn.model_selection.train_test_split."
        )
    y_array = column_or_1d(y_array, warn=True)
    rng = check_random_state(random_state)

    classes, y_encoded = np.unique(y_array, return_inverse=True)
    n_needed = n_queries_per_class + (n_train_per_class or 1)
    counts = np.bincount(y_encoded, minlength=len(classes))
    too_small = counts < n_needed
    if too_small.any():
        details = ", ".join(
            f"{label!r} ({count} samples)"
            for label, count in zip(
                classes[too_small].tolist(), counts[too_small].tolist(), strict=True
            )
        )
        raise ValueError(
            f"Every class needs at least {n_needed} samples "
            f"(n_queries_per_class={n_queries_per_class}, n_train_per_class="
            f"{n_train_per_class}); these classes have fewer: {details}."
        )

    is_query = np.zeros(len(y_array), dtype=bool)
    is_train = np.zeros(len(y_array), dtype=bool)
    for class_index in range(len(classes)):
        members = rng.permutation(np.flatnonzero(y_encoded == class_index))
        is_query[members[:n_queries_per_class]] = True
        if n_train_per_class is not None:
            end = n_queries_per_class + n_train_per_class
            is_train[members[n_queries_per_class:end]] = True
    is_database = ~is_query
    if n_train_per_class is None:
        is_train = is_database

    indices = [np.flatnonzero(mask) for mask in (is_query, is_train, is_database)]
    return RetrievalSplit(
        *(_safe_indexing(X, part) for part in indices),
        *(_safe_indexing(y, part) for part in indices),
    )
