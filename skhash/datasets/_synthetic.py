"""A tiny synthetic generator for tests and examples."""

from numbers import Integral, Real

import numpy as np
from sklearn.datasets import make_blobs, make_multilabel_classification
from sklearn.utils._param_validation import validate_params

from ..utils._param_validation import Interval

__all__ = ["make_hashing_blobs"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_classes": [Interval(Integral, 1, None, closed="left")],
        "multilabel": ["boolean"],
        "cluster_std": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_hashing_blobs(
    n_samples=1000,
    n_features=32,
    n_classes=10,
    *,
    multilabel=False,
    cluster_std=1.0,
    random_state=None,
):
    """Generate labelled data with class structure for hashing.

    Single-label data are Gaussian blobs, one per class, with centres drawn
    in ``[-3, 3] ** n_features`` so that neighbouring classes overlap a
    little (see :func:`~sklearn.datasets.make_blobs`). Multi-label data come
    from :func:`~sklearn.datasets.make_multilabel_classification` with two
    labels per sample on average and none unlabelled.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples, split as evenly as possible between the classes
        when ``multilabel=False``.

    n_features : int, default=32
        Number of features.

    n_classes : int, default=10
        Number of classes (or of labels when ``multilabel=True``).

    multilabel : bool, default=False
        If True, `y` is a label indicator matrix.

    cluster_std : float, default=1.0
        Standard deviation of each blob. Ignored when ``multilabel=True``.

    random_state : int, RandomState instance or None, default=None
        Controls the draws. Pass an int for reproducible output across
        multiple function calls.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float64
        The samples.

    y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        The class of each sample (int64), or with ``multilabel=True`` the
        label indicator matrix (uint8).

    See Also
    --------
    load_yeast : A real multi-label dataset.

    Examples
    --------
    >>> from skhash.datasets import make_hashing_blobs
    >>> X, y = make_hashing_blobs(n_samples=100, n_classes=4, random_state=0)
    >>> X.shape, y.shape
    ((100, 32), (100,))
    >>> X, Y = make_hashing_blobs(n_samples=100, multilabel=True, random_state=0)
    >>> Y.shape, Y.dtype.name, bool(Y.sum(axis=1).min() >= 1)
    ((100, 10), 'uint8', True)
    """
    if multilabel:
        X, Y = make_multilabel_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_classes=n_classes,
            n_labels=2,
            allow_unlabeled=False,
            random_state=random_state,
        )
        return X, Y.astype(np.uint8)
    X, y = make_blobs(
        n_samples=n_samples,
        n_features=n_features,
        centers=n_classes,
        cluster_std=cluster_std,
        center_box=(-3.0, 3.0),
        random_state=random_state,
    )
    return X, y.astype(np.int64)
