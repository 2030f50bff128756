"""The query / training / database splits used by the learning-to-hash papers."""

from numbers import Integral
from typing import Any, NamedTuple

import numpy as np
from sklearn.utils import check_consistent_length, check_random_state
from sklearn.utils._indexing import _safe_indexing
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.validation import column_or_1d

from ..utils._param_validation import Interval

__all__ = ["RetrievalSplit", "retrieval_split", "seen_unseen_splits"]

# The protocols of the unseen-class setting, named "queries@database" after
# the classes each part comes from ("all": seen and unseen), and the parts of
# one draw that each uses.
_PROTOCOL_PARTS = {
    "seen@seen": ("query_seen", "database_seen"),
    "seen@all": ("query_seen", "database_all"),
    "unseen@unseen": ("query_unseen", "database_unseen"),
    "unseen@all": ("query_unseen", "database_all"),
}


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


_COMMON_CONSTRAINTS = {
    "X": ["array-like", "sparse matrix"],
    "y": ["array-like"],
    "n_queries_per_class": [Interval(Integral, 1, None, closed="left")],
    "n_train_per_class": [Interval(Integral, 1, None, closed="left"), None],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
}
_UNSEEN_CLASSES = [Interval(Integral, 1, None, closed="left"), "array-like"]


@validate_params(
    {
        **_COMMON_CONSTRAINTS,
        "unseen_classes": [*_UNSEEN_CLASSES, None],
        "protocol": [StrOptions(set(_PROTOCOL_PARTS)), None],
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
    protocol=None,
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

    With `unseen_classes`, the classes are split into "seen" ones, the only
    ones the training set comes from, and "unseen" ones, which the hasher
    never sees, and `protocol` says where the queries and the database come
    from (Sablayrolles et al. [1]_ proposed ``"unseen@unseen"``; the
    empirical study of deep supervised hashing [2]_ evaluates all four).
    Every class gives `n_queries_per_class` queries; every other sample of a
    class is in that class's database; the training set is
    `n_train_per_class` samples of every seen class drawn from its database:

    ``"unseen@unseen"`` (the default with `unseen_classes`)
        Queries and database from the unseen classes: retrieval of new
        content. No training item is in the database.
    ``"unseen@all"``
        Queries from the unseen classes, the database of every class: new
        content among the content trained on. The training items are in the
        database.
    ``"seen@seen"``
        Queries and database from the seen classes: the standard protocol
        restricted to the seen classes. The training items are in the
        database.
    ``"seen@all"``
        Queries from the seen classes, the database of every class. The
        training items are in the database.

    The draws do not depend on `protocol`: with the same integer
    `random_state`, the four protocols share the training set, and the two
    ``seen@`` (the two ``unseen@``) share the queries, so that one fitted
    hasher is evaluated four ways. :func:`seen_unseen_splits` returns the
    four from one call.

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
        Number of training samples drawn from the database part of each class
        (each seen class with `unseen_classes`). None makes the whole
        database the training set (with `unseen_classes`: the database part
        of the seen classes, every seen sample that is not a query).

    unseen_classes : int, array-like or None, default=None
        None: the papers' protocol. An int: that many classes, drawn at
        random, are kept out of training. An array-like: those class labels.

    protocol : {"unseen@unseen", "unseen@all", "seen@seen", "seen@all"} \
            or None, default=None
        With `unseen_classes`: where the queries and the database come from,
        as ``"queries@database"`` (see above); None is ``"unseen@unseen"``.
        Without `unseen_classes` it must be None.

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
        If `y` is not 1-D, if a class is too small, if `unseen_classes`
        leaves no seen or no unseen class, or if `protocol` is given without
        `unseen_classes`. A class needs ``n_queries_per_class +
        n_train_per_class`` samples (``n_queries_per_class + 1`` when
        `n_train_per_class` is None, so that every query has a relevant item
        in the database); with `unseen_classes`, every seen class needs as
        many and every unseen class ``n_queries_per_class + 1``, whatever the
        protocol.

    See Also
    --------
    seen_unseen_splits : The four protocols of one draw, in one call.
    sklearn.model_selection.train_test_split : A random split, for multi-label data.

    Notes
    -----
    No sample is both a query and in the database, under any protocol, and no
    query is a training sample.

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
    .. [2] "An Empirical Study on Training Paradigms for Deep Supervised
       Hashing", International Journal of Computer Vision; the protocols'
       definitions and code: https://github.com/aassxun/DSH_Analysis.

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
    >>> seen_all = retrieval_split(
    ...     X, y, n_queries_per_class=2, n_train_per_class=3, unseen_classes=[2],
    ...     protocol="seen@all", random_state=0,
    ... )
    >>> np.unique(seen_all.y_query), np.bincount(seen_all.y_database)
    (array([0, 1]), array([8, 8, 8]))
    >>> np.array_equal(seen_all.X_train, unseen.X_train)
    True
    """
    if protocol is not None and unseen_classes is None:
        raise ValueError(
            f"protocol={protocol!r} needs unseen_classes: without unseen classes "
            "the split is the papers' protocol, every class seen."
        )
    classes, y_encoded, unseen, rng = _prepare(
        X, y, n_queries_per_class, n_train_per_class, unseen_classes, random_state
    )
    if unseen_classes is None:
        parts = _draw_standard(
            y_encoded, len(classes), n_queries_per_class, n_train_per_class, rng
        )
        if shuffle:
            # Drawn after every per-class draw (and the training part last),
            # so the parts themselves do not depend on shuffle or on the
            # training set's size.
            parts = {name: rng.permutation(part) for name, part in parts.items()}
            if n_train_per_class is None:
                parts["train"] = parts["database"]
        indices = [parts["query"], parts["train"], parts["database"]]
    else:
        parts = _draw_seen_unseen(
            y_encoded, unseen, n_queries_per_class, n_train_per_class, shuffle, rng
        )
        query, database = _PROTOCOL_PARTS[protocol or "unseen@unseen"]
        indices = [parts[query], parts["train"], parts[database]]
    return RetrievalSplit(
        *(_safe_indexing(X, part) for part in indices),
        *(_safe_indexing(y, part) for part in indices),
    )


@validate_params(
    {**_COMMON_CONSTRAINTS, "unseen_classes": _UNSEEN_CLASSES},
    prefer_skip_nested_validation=True,
)
def seen_unseen_splits(
    X,
    y,
    *,
    unseen_classes,
    n_queries_per_class=100,
    n_train_per_class=500,
    shuffle=True,
    random_state=None,
):
    """The four seen / unseen-class protocols of one draw.

    Draws the queries, the training set and the databases once, as
    :func:`retrieval_split` does with `unseen_classes`, and returns the split
    of each protocol: ``"seen@seen"``, ``"seen@all"``, ``"unseen@unseen"``
    and ``"unseen@all"`` (queries from the seen or unseen classes, a database
    of the seen, unseen or all classes; see :func:`retrieval_split` for each
    one). The four share one training set, so one hasher fitted on it is
    evaluated four ways, and the numbers are comparable: the same queries
    under ``seen@seen`` and ``seen@all``, the same under ``unseen@unseen`` and
    ``unseen@all``, the same database under ``seen@all`` and ``unseen@all``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data, in any form that scikit-learn can index by rows.

    y : array-like of shape (n_samples,)
        The class labels, 1-D.

    unseen_classes : int or array-like
        An int: that many classes, drawn at random, are kept out of training.
        An array-like: those class labels.

    n_queries_per_class : int, default=100
        Number of queries drawn from each class, seen or unseen.

    n_train_per_class : int or None, default=500
        Number of training samples drawn from each seen class among its
        non-queries. None: every seen sample that is not a query.

    shuffle : bool, default=True
        Return each part in a random order (see :func:`retrieval_split`).

    random_state : int, RandomState instance or None, default=None
        Controls the draws and the shuffling. With the same int,
        ``seen_unseen_splits(...)[protocol]`` equals ``retrieval_split(...,
        protocol=protocol)``.

    Returns
    -------
    splits : dict of str to RetrievalSplit
        The split of each protocol, keyed ``"seen@seen"``, ``"seen@all"``,
        ``"unseen@unseen"``, ``"unseen@all"`` in that order. Parts that two
        protocols share are the same object (the training set is one object
        in all four), so nothing is copied twice.

    Raises
    ------
    ValueError
        As :func:`retrieval_split` with `unseen_classes`.

    See Also
    --------
    retrieval_split : One protocol's split.

    References
    ----------
    .. [1] "An Empirical Study on Training Paradigms for Deep Supervised
       Hashing", International Journal of Computer Vision; the protocols'
       definitions and code: https://github.com/aassxun/DSH_Analysis.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash.datasets import seen_unseen_splits
    >>> X = np.arange(80).reshape(40, 2)
    >>> y = np.repeat([0, 1, 2, 3], 10)
    >>> splits = seen_unseen_splits(
    ...     X, y, unseen_classes=[3], n_queries_per_class=2, n_train_per_class=4,
    ...     random_state=0,
    ... )
    >>> for protocol, split in splits.items():
    ...     print(f"{protocol:13} queries of {np.unique(split.y_query)}, "
    ...           f"database of {np.unique(split.y_database)}")
    seen@seen     queries of [0 1 2], database of [0 1 2]
    seen@all      queries of [0 1 2], database of [0 1 2 3]
    unseen@unseen queries of [3], database of [3]
    unseen@all    queries of [3], database of [0 1 2 3]
    >>> np.bincount(splits["unseen@all"].y_train)
    array([4, 4, 4])
    """
    classes, y_encoded, unseen, rng = _prepare(
        X, y, n_queries_per_class, n_train_per_class, unseen_classes, random_state
    )
    parts = _draw_seen_unseen(
        y_encoded, unseen, n_queries_per_class, n_train_per_class, shuffle, rng
    )
    X_parts = {name: _safe_indexing(X, part) for name, part in parts.items()}
    y_parts = {name: _safe_indexing(y, part) for name, part in parts.items()}
    return {
        protocol: RetrievalSplit(
            X_parts[query],
            X_parts["train"],
            X_parts[database],
            y_parts[query],
            y_parts["train"],
            y_parts[database],
        )
        for protocol, (query, database) in _PROTOCOL_PARTS.items()
    }


def _prepare(X, y, n_queries_per_class, n_train_per_class, unseen_classes, seed):
    """Check the labels and the class sizes; draw the unseen classes."""
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
    rng = check_random_state(seed)

    classes, y_encoded = np.unique(y_array, return_inverse=True)
    unseen = _unseen_mask(classes, unseen_classes, rng)
    n_seen_needed = n_queries_per_class + (n_train_per_class or 1)
    n_needed = np.where(unseen, n_queries_per_class + 1, n_seen_needed)
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
            needs = f"Every class needs at least {n_seen_needed} samples"
        else:
            needs = (
                f"Every unseen class needs at least {n_queries_per_class + 1} "
                f"samples and every seen class at least {n_seen_needed}"
            )
        raise ValueError(
            f"{needs} (n_queries_per_class={n_queries_per_class}, "
            f"n_train_per_class={n_train_per_class}); these classes have fewer: "
            f"{details}."
        )
    return classes, y_encoded, unseen, rng


def _draw_standard(y_encoded, n_classes, n_queries_per_class, n_train_per_class, rng):
    """Row indices of the papers' protocol, in the original order."""
    is_query = np.zeros(len(y_encoded), dtype=bool)
    is_train = np.zeros(len(y_encoded), dtype=bool)
    for class_index in range(n_classes):
        members = rng.permutation(np.flatnonzero(y_encoded == class_index))
        is_query[members[:n_queries_per_class]] = True
        is_train[members[n_queries_per_class:][:n_train_per_class]] = True
    is_database = ~is_query
    parts = {
        "query": np.flatnonzero(is_query),
        "database": np.flatnonzero(is_database),
    }
    parts["train"] = (
        parts["database"] if n_train_per_class is None else np.flatnonzero(is_train)
    )
    return parts


def _draw_seen_unseen(
    y_encoded, unseen, n_queries_per_class, n_train_per_class, shuffle, rng
):
    """Row indices of every part of the seen / unseen-class protocols."""
    masks = {
        name: np.zeros(len(y_encoded), dtype=bool)
        for name in (
            "query_unseen",
            "database_unseen",
            "train",
            "query_seen",
            "database_seen",
        )
    }
    for class_index, is_unseen in enumerate(unseen):
        members = rng.permutation(np.flatnonzero(y_encoded == class_index))
        if is_unseen:
            masks["query_unseen"][members[:n_queries_per_class]] = True
            masks["database_unseen"][members[n_queries_per_class:]] = True
            continue
        # The training samples come first and the queries from the end of the
        # permutation, so that the training set (and, with shuffle, the
        # unseen@unseen parts) are those drawn before the seen classes had
        # queries: unseen@unseen results published with an integer
        # n_train_per_class stay reproducible.
        rest, queries = np.split(members, [len(members) - n_queries_per_class])
        masks["query_seen"][queries] = True
        masks["database_seen"][rest] = True
        masks["train"][rest[:n_train_per_class]] = True
    masks["database_all"] = masks["database_seen"] | masks["database_unseen"]
    parts = {name: np.flatnonzero(mask) for name, mask in masks.items()}
    if shuffle:
        # The same order of permutations as before seen queries existed (see
        # above); "all" gets its own permutation, since the two shuffled
        # databases end to end would rank stable ties seen classes first.
        parts = {name: rng.permutation(part) for name, part in parts.items()}
    return parts


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
