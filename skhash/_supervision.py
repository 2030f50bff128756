"""Labels to similarity: the supervision every supervised hasher and metric shares.

``y`` is either 1-D class labels or a 2-D binary indicator matrix (multi-label).
Two samples are *similar* (relevant to each other) when they share at least one
label: equal class labels, or a positive dot product of indicator rows.
"""

import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples

__all__ = [
    "check_labels",
    "check_supervision",
    "encode_labels",
    "indicator_matrix",
    "relevance",
    "sample_pairs",
    "sample_triplets",
]


def check_labels(y, *, name="y"):
    """Validate labels; return 1-D labels or a 2-D ``uint8`` indicator matrix."""
    y = np.asarray(y)
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(
            f"{name} must be 1-D class labels or a 2-D multi-label indicator matrix, "
            f"got an array of shape {y.shape}."
        )
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    if y.dtype == object and any(isinstance(v, (list, tuple, set)) for v in y.flat):
        raise ValueError(
            f"{name} holds sequences of labels; turn them into a 2-D indicator "
            "matrix first, e.g. with sklearn.preprocessing.MultiLabelBinarizer."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        # As in scikit-learn: a column vector is class labels, not an indicator
        # matrix of one label (under which the items without it would be
        # similar to nothing).
        warnings.warn(
            f"A column-vector {name} was passed when a 1-D array was expected; "
            "it is read as class labels. Pass y.ravel() to avoid this warning.",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y.ravel()
    if y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise ValueError(
                f"A 2-D {name} must be a multi-label indicator matrix of 0 and 1; "
                "for 1-D class labels pass a 1-D array."
            )
        return y.astype(np.uint8)
    return y


def encode_labels(y_query, y_database):
    """Encode two label sets so that :func:`relevance` on slices is cheap.

    1-D labels become integer class ids over the union of both sets; indicator
    matrices become ``float32`` so that relevance is one matrix product.
    """
    y_query = check_labels(y_query, name="query labels")
    y_database = check_labels(y_database, name="database labels")
    if y_query.ndim != y_database.ndim:
        raise ValueError(
            "Query and database labels must both be 1-D class labels or both be "
            f"2-D indicator matrices, got {y_query.ndim}-D and {y_database.ndim}-D."
        )
    if y_query.ndim == 2:
        if y_query.shape[1] != y_database.shape[1]:
            raise ValueError(
                f"Query and database labels have {y_query.shape[1]} and "
                f"{y_database.shape[1]} label columns; they must match."
            )
        return y_query.astype(np.float32), y_database.astype(np.float32)
    _, ids = np.unique(np.concatenate([y_query, y_database]), return_inverse=True)
    return ids[: len(y_query)], ids[len(y_query) :]


def indicator_matrix(y):
    """Labels as a float32 indicator matrix, one column per class for 1-D labels.

    Classes take columns in the order of their first appearance in ``y``, not
    in sorted order: sorting puts string labels ("10" < "2") and integers in
    different orders, and a network's output units would then be initialised
    for other classes, so the same partition gave other codes.
    """
    if y.ndim == 2:
        return y.astype(np.float32)
    _, first = np.unique(y, return_index=True)
    classes = y[np.sort(first)]
    return (y[:, None] == classes[None, :]).astype(np.float32)


def relevance(y_query, y_database):
    """Boolean matrix: ``True`` where a query and a database item share a label.

    Parameters
    ----------
    y_query, y_database : ndarray
        Labels as returned by :func:`encode_labels` (or :func:`check_labels`).

    Returns
    -------
    relevant : ndarray of shape (n_queries, n_database), dtype bool
    """
    if y_query.ndim == 1:
        return y_query[:, None] == y_database[None, :]
    as_float = dict(dtype=np.float32, copy=False)
    return (y_query.astype(**as_float) @ y_database.astype(**as_float).T) > 0


def check_supervision(y, n_samples):
    """Validate ``y`` for a supervised hasher: right length, not all similar.

    Returns the labels in the form of :func:`check_labels`.
    """
    if y is None:
        raise ValueError(
            "This hasher is supervised: it requires y to be passed, but the target "
            "y is None. Pass class labels or a multi-label indicator matrix."
        )
    y = check_labels(y)
    if _num_samples(y) != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {n_samples} and "
            f"{_num_samples(y)}."
        )
    if y.ndim == 1:
        n_classes = len(np.unique(y))
        if n_classes < 2:
            raise ValueError(
                f"y has {n_classes} class; a supervised hasher needs at least two "
                "classes to tell similar from dissimilar pairs."
            )
    elif y.all(axis=0).any():
        raise ValueError(
            "A label is shared by every sample, so every pair is similar; a "
            "supervised hasher needs dissimilar pairs."
        )
    return y


def sample_pairs(y, n_pairs, random_state=None):
    """Draw random pairs of distinct samples and say whether each is similar.

    Returns
    -------
    first, second : ndarray of shape (n_pairs,), dtype intp
        Indices of the two samples of each pair (never equal).
    similar : ndarray of shape (n_pairs,), dtype bool
    """
    y = check_labels(y)
    n_samples = len(y)
    if n_samples < 2:
        raise ValueError("Pairs need at least two samples.")
    rng = check_random_state(random_state)
    first = rng.randint(n_samples, size=n_pairs)
    # An offset in [1, n) makes the second index differ from the first.
    second = (first + rng.randint(1, n_samples, size=n_pairs)) % n_samples
    similar = _row_similar(y, first, second)
    return first, second, similar


def sample_triplets(y, n_triplets, random_state=None):
    """Draw (anchor, positive, negative) triplets from labels.

    Each anchor is drawn uniformly among samples that have at least one similar
    and one dissimilar partner; the positive uniformly among its similar
    partners (itself excluded), the negative among its dissimilar ones.

    Returns
    -------
    anchor, positive, negative : ndarray of shape (n_triplets,), dtype intp
    """
    y = check_labels(y)
    rng = check_random_state(random_state)
    similar = relevance(y, y)
    np.fill_diagonal(similar, False)
    dissimilar = ~relevance(y, y)
    usable = np.flatnonzero(similar.any(axis=1) & dissimilar.any(axis=1))
    if len(usable) == 0:
        raise ValueError(
            "No sample has both a similar and a dissimilar partner; triplets need "
            "at least two classes with two or more samples in one of them."
        )
    anchor = rng.choice(usable, size=n_triplets)
    positive = np.array([rng.choice(np.flatnonzero(similar[a])) for a in anchor])
    negative = np.array([rng.choice(np.flatnonzero(dissimilar[a])) for a in anchor])
    return anchor, positive.astype(np.intp), negative.astype(np.intp)


def _row_similar(y, first, second):
    if y.ndim == 1:
        return y[first] == y[second]
    return (y[first].astype(bool) & y[second].astype(bool)).any(axis=1)
