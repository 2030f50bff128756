"""Baselines that supervised hashers should beat: a classifier's outputs as codes.

Sablayrolles et al. showed that, when relevance is "same class", the one-hot
codes of a plain classifier's predictions beat most supervised hashers under
the standard protocol. :class:`ClassifierCodes` makes those codes from any
scikit-learn classifier, so a user can check whether hashing beats it on their
data (see :ref:`evaluation`).
"""

from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, StrOptions

from .base import MAX_N_BITS, BaseHasher, SupervisedHasherMixin
from .utils._param_validation import Interval

__all__ = ["ClassifierCodes"]


class ClassifierCodes(SupervisedHasherMixin, BaseHasher):
    """Codes from a classifier: its one-hot predictions or its score signs.

    A baseline for supervised hashing. ``fit`` trains a clone of
    ``estimator`` on ``(X, y)``; ``transform`` returns, per sample, one bit per
    class, either the one-hot code of the predicted class (with multi-label
    ``y``, the predicted label set) or the sign of each class's decision
    score. Under Hamming ranking, one-hot codes put the items predicted in the
    query's class first: a classifier's accuracy turned into retrieval.

    Parameters
    ----------
    n_bits : int or None, default=None
        Length of the codes. None: one bit per class (or label). A larger
        value pads the codes with zero bits, which changes no Hamming
        distance, so that they can be stored or compared at a hasher's code
        length; a smaller one is an error, raised by ``fit``.
    estimator : classifier or None, default=None
        Any scikit-learn classifier, cloned before fitting. ``code="sign"``
        needs ``decision_function``; multi-label ``y`` needs a classifier
        that supports it. None: :class:`~sklearn.linear_model.LogisticRegression`
        (``max_iter=1000``), wrapped in
        :class:`~sklearn.multiclass.OneVsRestClassifier` for multi-label ``y``.
    code : {"one_hot", "sign"}, default="one_hot"
        ``"one_hot"``: the predicted class (or label set) as bits.
        ``"sign"``: bit ``c`` is ``decision_function(x)[c] >= 0`` (one bit for
        a binary problem), which keeps more of the classifier's ranking.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    classes_ : ndarray of shape (n_classes,)
        Class labels in the order of their bits (their first appearance in
        ``y``); absent for multi-label ``y``, whose bits are its columns.
    n_outputs_ : int
        Bits before padding: classes (labels) for ``"one_hot"``, score
        columns for ``"sign"``.
    n_bits_ : int
        Length of the codes.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    KSHHasher : A kernel supervised hasher, the classical one to compare with.
    CCAITQHasher : A linear supervised hasher.

    Notes
    -----
    A fair comparison gives the classifier the same labelled training set as
    the hashers. Such codes are only as good as the predictions: they say
    nothing about items of classes the classifier never saw, which the
    unseen-class protocol of :func:`skhash.datasets.retrieval_split`
    (``unseen_classes``) measures. ONNX export (:func:`skhash.onnx.to_onnx`)
    converts the wrapped classifier with skl2onnx, which must support it.

    References
    ----------
    .. [1] A. Sablayrolles, M. Douze, N. Usunier and H. Jegou, "How should we
       evaluate supervised hashing?", ICASSP 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skhash import ClassifierCodes, HammingNeighbors
    >>> X, y = load_digits(return_X_y=True)
    >>> codes = ClassifierCodes(estimator=LogisticRegression(max_iter=1000))
    >>> database = codes.fit(X[:1000], y[:1000]).transform(X[:1000])
    >>> database.shape
    (1000, 2)
    >>> nn = HammingNeighbors().fit(database, y[:1000])
    >>> round(nn.score(codes.transform(X[1000:]), y[1000:]), 2)
    0.93
    """

    _parameter_constraints = {
        "n_bits": [Interval(Integral, 1, MAX_N_BITS, closed="both"), None],
        "estimator": [HasMethods(["fit", "predict"]), None],
        "code": [StrOptions({"one_hot", "sign"})],
    }

    def __init__(self, n_bits=None, *, estimator=None, code="one_hot"):
        self.n_bits = n_bits
        self.estimator = estimator
        self.code = code

    def _fit(self, X, y):
        if self.estimator is not None:
            estimator = clone(self.estimator)
        else:
            from sklearn.linear_model import LogisticRegression
            from sklearn.multiclass import OneVsRestClassifier

            estimator = LogisticRegression(max_iter=1000)
            if y.ndim == 2:
                estimator = OneVsRestClassifier(estimator)
        if self.code == "sign" and not hasattr(estimator, "decision_function"):
            raise ValueError(
                f'code="sign" needs a classifier with decision_function; '
                f'{type(estimator).__name__} has none. Use code="one_hot".'
            )
        self.estimator_ = estimator.fit(X, y)
        if y.ndim == 1:
            # Bits follow the classes' first appearance in y, as the labels'
            # indicator matrix does elsewhere, so that renaming the classes
            # (which reorders the classifier's sorted classes_) changes no code.
            _, first = np.unique(y, return_index=True)
            self.classes_ = y[np.sort(first)]
        self.n_outputs_ = self._outputs(X[:1]).shape[1]
        if self.n_bits is not None and self.n_bits < self.n_outputs_:
            raise ValueError(
                f"n_bits={self.n_bits} is less than the {self.n_outputs_} bits of "
                f'the classifier\'s code="{self.code}" codes; pass n_bits=None.'
            )
        self.n_bits_ = self.n_outputs_ if self.n_bits is None else self.n_bits

    def _outputs(self, X):
        """The classifier's outputs, one column per bit; bit = value >= 0."""
        if self.code == "sign":
            scores = np.asarray(self.estimator_.decision_function(X), dtype=float)
            scores = scores.reshape(len(X), -1)
            if not hasattr(self, "classes_"):
                return scores  # multi-label: one column per label already
            sorted_classes = list(self.estimator_.classes_)
            if scores.shape[1] == 1:  # binary: positive for sorted_classes[1]
                flip = sorted_classes[1] != self.classes_[1]
                return -scores if flip else scores
            return scores[:, [sorted_classes.index(c) for c in self.classes_]]
        predicted = np.asarray(self.estimator_.predict(X))
        if predicted.ndim == 1:
            predicted = predicted[:, None] == self.classes_[None, :]
        return np.where(predicted.astype(bool), 1.0, -1.0)

    def _project(self, X):
        outputs = self._outputs(X)
        padding = np.full((len(X), self.n_bits_ - outputs.shape[1]), -1.0)
        return np.hstack([outputs, padding])
