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
        "unseen_classes": [
            Interval(Integral, 1, None, closed="left"),
            "array-like",
            None,
        ],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def retrieval_split(
    X,
    y,
    *,
    n_queries_per_class=100,
    n_train_per_class=500,
    unseen_classes=None,
    shuffle=True,
    random_state=None,
):
    """Split data into queries, a training set and a database, per class.

    The protocol of the learning-to-hash papers on 10-class image sets:
    `n_queries_per_class` samples of every class are held out as queries
    (1,000 for 10 classes); the database is everything else; the training
    set is `n_train_per_class` samples of every class drawn from the database
    (5,000 for 10 classes). The training samples stay in the database, as in
    the papers.

    With `unseen_classes`, the protocol of Sablayrolles et al. [1]_ instead:
    the training set comes from the other ("seen") classes only, and the
    queries and the database from the unseen classes only, so a hasher is
    judged on classes it never saw, as retrieval of new content is.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data. Anything that scikit-learn can index by rows works: NumPy
        arrays, sparse matrices, pandas DataFrames, lists.

    y : array-like of shape (n_samples,)
        The class labels. They must be 1-D, since the counts are per class; a
        multi-label indicator matrix is refused (see Notes).

    n_queries_per_class : int, default=100
        Number of queries drawn from each class (each unseen class with
        `unseen_classes`).

    n_train_per_class : int or None, default=500
        Number of training samples drawn from each class among the
        non-queries (each seen class with `unseen_classes`). None makes the
        whole database the training set (with `unseen_classes`: every sample
        of the seen classes).

    unseen_classes : int, array-like or None, default=None
        None: the papers' protocol. An int: that many classes, drawn at
        random, are kept out of training. An array-like: those class labels.
        Samples of the seen classes that are not drawn for training are in
        no part.

    shuffle : bool, default=True
        Return each part in a random order. Tie-breaking metrics
        (``ties="stable"``) rank equal distances by database position, and
        data stored sorted by class would then break ties by class, which
        biases MAP; shuffling makes that order random. False keeps the rows in
        their original relative order.

    random_state : int, RandomState instance or None, default=None
        Controls the draws and the shuffling. Pass an int for reproducible
        output across multiple function calls.

    Returns
    -------
    split : RetrievalSplit
        A named tuple ``(X_query, X_train, X_database, y_query, y_train,
        y_database)``: unpack it like the result of
        :func:`~sklearn.model_selection.train_test_split`, or read its fields
        by name. Each part has the type of `X` (or `y`).

    Raises
    ------
    ValueError
        If `y` is not 1-D, if a class has fewer than
        ``n_queries_per_class + n_train_per_class`` samples
        (``n_queries_per_class + 1`` when `n_train_per_class` is None, so that
        every query has a relevant item in the database; with
        `unseen_classes`, ``n_queries_per_class + 1`` for unseen classes and
        ``n_train_per_class`` for seen ones), or if `unseen_classes` leaves no
        seen or no unseen class.

    See Also
    --------
    sklearn.model_selection.train_test_split : A random split, for multi-label data.

    Notes
    -----
    To get the row indices of the three parts (for example to split images
    and precomputed features the same way), pass ``np.arange(n_samples)`` as
    `X`.

    The draws of queries and training samples do not depend on `shuffle`:
    with the same `random_state` both settings give the same parts, in
    different orders.

    Multi-label benchmarks (NUS-WIDE, Yeast) draw their queries at random
    rather than per class; use :func:`~sklearn.model_selection.train_test_split`
    for them: the queries are its test part and the database its training
    part.

    References
    ----------
    .. [1] A. Sablayrolles, M. Douze, N. Usunier and H. Jegou, "How should we
       evaluate supervised hashing?", ICASSP 2017.

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
    >>> unseen = retrieval_split(
    ...     X, y, n_queries_per_class=2, n_train_per_class=3, unseen_classes=[2],
    ...     random_state=0,
    ... )
    >>> np.unique(unseen.y_train), np.unique(unseen.y_query), len(unseen.y_database)
    (array([0, 1]), array([2]), 8)
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
    unseen = _unseen_mask(classes, unseen_classes, rng)
    if unseen_classes is None:
        n_needed = np.full(len(classes), n_queries_per_class + (n_train_per_class or 1))
    else:
        n_needed = np.where(unseen, n_queries_per_class + 1, n_train_per_class or 1)
    counts = np.bincount(y_encoded, minlength=len(classes))
    too_small = counts < n_needed
    if too_small.any():
        details = ", ".join(
            f"{label!r} ({count} samples)"
            for label, count in zip(
                classes[too_small].tolist(), counts[too_small].tolist(), strict=True
            )
        )
        if unseen_classes is None:
            needs = f"Every class needs at least {n_needed[0]} samples"
        else:
            needs = (
                f"Every unseen class needs at least {n_queries_per_class + 1} "
                f"samples and every seen class at least {n_train_per_class or 1}"
            )
        raise ValueError(
            f"{needs} (n_queries_per_class={n_queries_per_class}, "
            f"n_train_per_class={n_train_per_class}); these classes have fewer: "
            f"{details}."
        )

    is_query = np.zeros(len(y_array), dtype=bool)
    is_train = np.zeros(len(y_array), dtype=bool)
    is_database = np.zeros(len(y_array), dtype=bool)
    for class_index in range(len(classes)):
        members = rng.permutation(np.flatnonzero(y_encoded == class_index))
        if unseen_classes is None or unseen[class_index]:
            is_query[members[:n_queries_per_class]] = True
            is_database[members[n_queries_per_class:]] = True
            members = members[n_queries_per_class:]
        if unseen[class_index]:
            continue
        is_train[members[:n_train_per_class]] = True
    if n_train_per_class is None and unseen_classes is None:
        is_train = is_database

    indices = [np.flatnonzero(mask) for mask in (is_query, is_database, is_train)]
    if shuffle:
        # Drawn after every per-class draw (and the training part last), so
        # the parts themselves do not depend on shuffle or on the training
        # set's size.
        indices = [rng.permutation(part) for part in indices]
        if is_train is is_database:
            indices[2] = indices[1]
    query, database, train = indices
    indices = [query, train, database]
    return RetrievalSplit(
        *(_safe_indexing(X, part) for part in indices),
        *(_safe_indexing(y, part) for part in indices),
    )


def _unseen_mask(classes, unseen_classes, rng):
    """Boolean mask over ``classes``: True for the classes kept out of training."""
    if unseen_classes is None:
        return np.zeros(len(classes), dtype=bool)
    if isinstance(unseen_classes, Integral):
        if unseen_classes >= len(classes):
            raise ValueError(
                f"unseen_classes={unseen_classes} leaves no class to train on: "
                f"y has {len(classes)} classes."
            )
        unseen = np.zeros(len(classes), dtype=bool)
        unseen[rng.choice(len(classes), unseen_classes, replace=False)] = True
        return unseen
    requested = np.asarray(unseen_classes)
    if requested.ndim != 1 or len(requested) == 0:
        raise ValueError(
            "unseen_classes must be an int or a non-empty 1-D array-like of class "
            f"labels; got {unseen_classes!r}."
        )
    missing = ~np.isin(requested, classes)
    if missing.any():
        raise ValueError(
            f"unseen_classes holds labels that are not in y: "
            f"{requested[missing].tolist()}."
        )
    unseen = np.isin(classes, requested)
    if unseen.all():
        raise ValueError("unseen_classes holds every class: none is left to train on.")
    return unseen
