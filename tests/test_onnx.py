"""ONNX export: the model's codes under onnxruntime equal ``transform``'s.

Hashers are discovered, so a new public hasher is exported here without any
change to this file, and fails until it has a converter.
"""

import copy
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from skhash import (
    ClassifierCodes,
    HammingNeighbors,
    KSHHasher,
    LSHHasher,
    SSHHasher,
)
from skhash.base import BaseHasher
from skhash.codes import n_bytes_for
from skhash.deep._engine import BaseDeepHasher
from skhash.utils import all_estimators

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from skhash._onnx._graph import (  # noqa: E402
    GraphBuilder,
    Tensor,
    append_packing,
    make_model,
)
from skhash.onnx import to_onnx  # noqa: E402

ESTIMATORS = dict(all_estimators())
HASHERS = [name for name, cls in ESTIMATORS.items() if issubclass(cls, BaseHasher)]
DEEP_HASHERS = [
    name for name in HASHERS if issubclass(ESTIMATORS[name], BaseDeepHasher)
]
N_BITS = 13  # not a multiple of 8: the padding bits are exercised everywhere
# Small and fast; a hasher not named here gets these defaults, so that a new
# one is exported without any change to this file (and fails here until it
# has a converter). DSH runs its image backbone on the 8 x 8 digits: reshaping
# rows into images must keep the batch size dynamic (DNNH's divide-and-encode
# head reshapes too).
_DEEP = {"max_epochs": 1, "batch_size": 128, "device": "cpu"}
PARAMS = {
    "DNNHHasher": {"slice_size": 2},
    "DSHHasher": {"input_shape": (1, 8, 8)},
    "DSTHHasher": {"n_neighbors": 5, "n_hidden": 16},
    "ITQHasher": {"n_iter": 5},
    "CCAITQHasher": {"n_iter": 5},
    "KSHHasher": {"n_anchors": 30, "n_labeled": 120, "max_iter": 20},
    "STHHasher": {"n_neighbors": 5},
}


def _make(name):
    cls = ESTIMATORS[name]
    params = dict(PARAMS.get(name, {}))
    if name in DEEP_HASHERS:
        params = {**_DEEP, **params}
        if "input_shape" not in params:
            params["hidden_layer_sizes"] = (16,)
    if "random_state" in cls().get_params():
        params["random_state"] = 0
    return cls(N_BITS, **params)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


@pytest.fixture(scope="module")
def queries(digits):
    """Rows of digits (real data) and random rows spread around them."""
    X, _ = digits
    random_rows = np.random.RandomState(0).uniform(-1, 2, size=(200, X.shape[1]))

    def get(name, dtype):
        # All of digits; a quarter for the deep hashers, whose transform
        # through skorch is slow on a busy CPU.
        real = X[::4] if name in DEEP_HASHERS else X
        return np.vstack([real, random_rows]).astype(dtype)

    return get


@pytest.fixture(scope="module")
def fitted(digits):
    """Hashers fitted on a slice of digits in each dtype, each fitted once."""
    X, y = digits
    cache = {}

    def get(name, dtype):
        if name in DEEP_HASHERS:
            pytest.importorskip("onnxscript")  # torch's ONNX exporter
            # The deep hashers train in float32 whatever the dtype: fit once.
            dtype = np.float64
        if name == "ClassifierCodes":
            pytest.importorskip("skl2onnx")  # converts its classifier
        if (name, dtype) not in cache:
            hasher = _make(name)
            cache[name, dtype] = hasher.fit(X[:120].astype(dtype), y[:120])
        return cache[name, dtype]

    return get


@pytest.fixture(scope="module")
def exported(fitted):
    cache = {}

    def get(name, dtype):
        if (name, dtype) not in cache:
            hasher = fitted(name, dtype)
            cache[name, dtype] = to_onnx(hasher, np.zeros((1, 64), dtype=dtype))
        return cache[name, dtype]

    return get


def _run(model, X):
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(["codes"], {"X": X})[0]


# Every hasher with float64 input. With float32 input, every classical hasher
# (each computes in its own dtypes) and one deep hasher: the others differ from
# it only in the network that torch exports, each export takes about a second,
# and all deep hashers hand the network float32 rows by the same Cast.
CASES = [
    *((name, np.float64) for name in HASHERS),
    *((name, np.float32) for name in HASHERS if name not in DEEP_HASHERS),
    ("HashNetHasher", np.float32),
]


@pytest.mark.parametrize("name, dtype", CASES)
def test_codes_equal_transform(name, dtype, fitted, exported, queries):
    hasher, model = fitted(name, dtype), exported(name, dtype)
    X = queries(name, dtype)
    expected = hasher.transform(X)
    codes = _run(model, X)
    assert codes.dtype == np.uint8
    # Exact for the deep hashers too: their float32 sigmoids and convolutions
    # differ by about 1e-7 between torch and onnxruntime, and the projections
    # of these queries are exact zeros (which both compute alike) or farther
    # from zero than 1e-5 (measured).
    np.testing.assert_array_equal(codes, expected)
    # One row at a time: other matrix-product kernels, same codes.
    for row in [0, 1, len(X) - 1]:
        np.testing.assert_array_equal(_run(model, X[row : row + 1]), expected[[row]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ssh_with_kernel_and_rotation(dtype, digits):
    X, y = digits
    X = X.astype(dtype)
    hasher = SSHHasher(N_BITS, kernel="rbf", n_anchors=30, rotation="itq", n_iter=5)
    hasher.fit(X[:300], y[:300])
    model = to_onnx(hasher, X[:1])
    np.testing.assert_array_equal(_run(model, X), hasher.transform(X))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_takes_the_other_dtype_of_fit(dtype, fitted, queries):
    # A hasher fitted on one dtype encodes the other as NumPy promotes it.
    other = np.float32 if dtype == np.float64 else np.float64
    for name in ["LSHHasher", "STHHasher"]:
        hasher = fitted(name, dtype)
        X = queries(name, other)
        model = to_onnx(hasher, X[:1])
        np.testing.assert_array_equal(_run(model, X), hasher.transform(X))


@pytest.mark.parametrize("name", HASHERS)
def test_model_signature(name, exported):
    model = exported(name, np.float64)
    onnx.checker.check_model(model, full_check=True)
    (X,), (codes,) = model.graph.input, model.graph.output
    assert X.name == "X" and codes.name == "codes"
    assert X.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert codes.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [
        [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (X, codes)
    ]
    assert dims == [["n_samples", 64], ["n_samples", n_bytes_for(N_BITS)]]
    assert {"": 18} == {o.domain: o.version for o in model.opset_import if not o.domain}
    properties = {p.key: p.value for p in model.metadata_props}
    assert properties == {"skhash.estimator": name, "n_bits": str(N_BITS)}


def _zero_projection(name, hasher, X):
    """A copy of the hasher and rows whose projections are exactly zero."""
    hasher = copy.deepcopy(hasher)
    if name in DEEP_HASHERS:
        import torch

        # Zero weights: every output is 0 (DNNH: sigmoid(0) - 0.5 = 0).
        with torch.no_grad():
            for parameter in hasher.net_.module_.parameters():
                parameter.zero_()
        return hasher, X
    if name == "SignHasher":  # a row on the thresholds
        on_threshold = np.zeros(hasher.n_features_in_)
        on_threshold[: hasher.n_bits_] = hasher.threshold_
        return hasher, np.vstack([on_threshold, X, on_threshold])
    if name == "KSHHasher":
        hasher.coef_ = np.zeros_like(hasher.coef_)
        return hasher, X
    # The centred ones: a row equal to the training mean projects to 0.
    return hasher, np.vstack([hasher.mean_, X, hasher.mean_])


# A cosine of a float64 phase is never exactly zero: nothing to construct for
# SpectralHasher, nor for ClassifierCodes's one-hot codes (its decision scores
# of zero are tested with its other codes below). Of the deep hashers, one
# whose projection is the network's output and DNNH's (sigmoid - 0.5); each
# export takes about a second.
NEVER_ZERO = ["SpectralHasher", "ClassifierCodes"]
ZERO_CASES = [
    *(name for name in HASHERS if name not in DEEP_HASHERS + NEVER_ZERO),
    "HashNetHasher",
    "DNNHHasher",
]


@pytest.mark.parametrize("name", ZERO_CASES)
def test_projection_of_exactly_zero_gives_bit_one(name, fitted, digits):
    hasher, X = _zero_projection(name, fitted(name, np.float64), digits[0][:20])
    projection = hasher._project(X)
    zero = projection == 0
    assert zero.sum() >= N_BITS
    expected = hasher.transform(X)
    np.testing.assert_array_equal(_run(to_onnx(hasher, X[:1]), X), expected)
    bits = np.unpackbits(expected, axis=1, count=N_BITS).astype(bool)
    assert bits[zero].all()


@pytest.mark.parametrize("n_bits", [1, 7, 8, 9, 16, 17])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_packing_matches_numpy_packbits(n_bits, dtype):
    values = np.array([-np.inf, -1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0, np.inf, np.nan])
    projection = np.random.RandomState(n_bits).choice(values, size=(50, n_bits))
    projection = projection.astype(dtype)
    graph = GraphBuilder()
    append_packing(graph, Tensor("X", np.dtype(dtype)), n_bits)
    model = make_model(graph, LSHHasher(n_bits), dtype, n_bits)
    with np.errstate(invalid="ignore"):
        expected = np.packbits(projection >= 0, axis=1)
    np.testing.assert_array_equal(_run(model, projection), expected)


def test_errors(digits):
    X, y = digits
    with pytest.raises(NotFittedError):
        to_onnx(LSHHasher(), X[:1])
    hasher = LSHHasher(8, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        to_onnx(hasher, X[:1, :10])
    with pytest.raises(ValueError, match="2D array"):
        to_onnx(hasher, X[0])
    for not_a_hasher in [PCA(2).fit(X), HammingNeighbors().fit(hasher.transform(X))]:
        with pytest.raises(TypeError, match="not a skhash.base.BaseHasher"):
            to_onnx(not_a_hasher, X[:1])

    class Shifted(KSHHasher):
        def _project(self, X):
            return super()._project(X) - 1

    shifted = Shifted(8, n_anchors=10, n_labeled=50, max_iter=5, random_state=0)
    with pytest.raises(TypeError, match="overrides _project of KSHHasher"):
        to_onnx(shifted.fit(X[:50], y[:50]), X[:1])

    class Unconverted(BaseHasher):
        def __init__(self, n_bits=8):
            super().__init__(n_bits)

        def _fit(self, X, y):
            self.offset_ = X.mean()

        def _project(self, X):
            return X[:, : self.n_bits] - self.offset_

    with pytest.raises(TypeError, match="no converter for Unconverted"):
        to_onnx(Unconverted().fit(X), X[:1])


def test_importing_skhash_does_not_import_onnx():
    code = (
        "import sys, skhash, skhash.onnx, skhash._onnx._classical, "
        "skhash._onnx._baselines; "
        "assert not {'onnx', 'onnxruntime', 'skl2onnx', 'torch'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ClassifierCodes around classifiers that skl2onnx converts: the wrapped
# classifier's model comes from skl2onnx, the bits from skhash.


class _Centroids(ClassifierMixin, BaseEstimator):
    """A classifier of the user's own, which skl2onnx has no converter for."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.centroids_ = np.array([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def decision_function(self, X):
        return -((X[:, None, :] - self.centroids_) ** 2).sum(axis=2)

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


# Labels of digits. Binary: class 1 appears first, so the bit order of
# classes_ is the reverse of the classifier's sorted classes (the sign bit is
# the negated score). Strings: first appearance differs from sorted order.
LABELS = {
    "multiclass": lambda y: y,
    "binary": lambda y: (y % 2 == 0).astype(int),
    "strings": lambda y: np.array(list("jihgfedcba"))[y],
    "multilabel": lambda y: np.stack([y % 2, y % 3 == 0, y > 5], axis=1).astype(int),
}
# (code, labels, estimator, n_bits); None: ClassifierCodes's default
# (LogisticRegression, in OneVsRestClassifier for multi-label). n_bits not a
# multiple of 8 and above the classes' count: padding.
CLASSIFIER_CASES = [
    ("one_hot", "multiclass", None, 13),
    ("sign", "multiclass", None, 13),
    ("one_hot", "binary", None, None),
    ("sign", "binary", None, 11),
    ("one_hot", "strings", None, 20),
    ("sign", "strings", None, None),
    ("one_hot", "multilabel", None, 9),
    ("sign", "multilabel", None, None),
    # Trees: skl2onnx's model reads float32, as scikit-learn's trees do.
    ("one_hot", "multiclass", DecisionTreeClassifier(random_state=0), None),
    ("one_hot", "multilabel", DecisionTreeClassifier(random_state=0), 12),
    ("sign", "multiclass", LinearSVC(), 12),
    ("sign", "binary", LinearSVC(), None),
    # skl2onnx has no float64 model of a binary LinearSVC's labels.
    ("one_hot", "binary", LinearSVC(), None),
    # skl2onnx's pipeline passes raw_scores to no step: asked of the last.
    ("sign", "multiclass", make_pipeline(StandardScaler(), LogisticRegression()), 17),
]


def _case_id(case):
    code, labels, estimator, n_bits = case
    classifier = "default" if estimator is None else type(estimator).__name__
    return f"{code}-{labels}-{classifier}-{n_bits}"


@pytest.fixture(scope="module")
def classifier_data(digits):
    pytest.importorskip("skl2onnx")
    X, y = digits
    random_rows = np.random.RandomState(0).uniform(-1, 2, size=(200, X.shape[1]))
    return X[:600], y[:600], np.vstack([X[600:], random_rows])


@pytest.mark.parametrize(
    "code, labels, estimator, n_bits",
    CLASSIFIER_CASES,
    ids=map(_case_id, CLASSIFIER_CASES),
)
def test_classifier_codes_equal_transform(
    code, labels, estimator, n_bits, classifier_data
):
    X_train, y_train, queries = classifier_data
    y_train = LABELS[labels](y_train)
    hasher = ClassifierCodes(n_bits, estimator=estimator, code=code)
    hasher.fit(X_train, y_train)
    # Held-out digits and random rows, in both dtypes (a model per dtype).
    for dtype in [np.float64, np.float32]:
        X = queries.astype(dtype)
        model = to_onnx(hasher, X[:1])
        expected = hasher.transform(X)
        np.testing.assert_array_equal(_run(model, X), expected)
        np.testing.assert_array_equal(_run(model, X[-1:]), expected[-1:])
    onnx.checker.check_model(model, full_check=True)
    properties = {p.key: p.value for p in model.metadata_props}
    assert properties["n_bits"] == str(hasher.n_bits_)


def test_classifier_codes_score_of_zero_gives_bit_one(classifier_data):
    X_train, y_train, queries = classifier_data
    for labels in ["multiclass", "binary"]:
        hasher = ClassifierCodes(code="sign").fit(X_train, LABELS[labels](y_train))
        hasher.estimator_.coef_[:] = 0
        hasher.estimator_.intercept_[:] = 0
        expected = hasher.transform(queries)
        assert (np.unpackbits(expected, axis=1, count=hasher.n_bits_) == 1).all()
        np.testing.assert_array_equal(_run(to_onnx(hasher, queries), queries), expected)


def test_classifier_codes_refusals(classifier_data, monkeypatch):
    X_train, y_train, queries = classifier_data
    supported = "ONNX export of ClassifierCodes needs a classifier skl2onnx supports"
    hasher = ClassifierCodes(estimator=_Centroids()).fit(X_train, y_train)
    with pytest.raises(TypeError, match=f"_Centroids.*{supported}"):
        to_onnx(hasher, queries[:1])
    # A classifier skl2onnx converts, but without its decision scores.
    pipeline = make_pipeline(PCA(10), QuadraticDiscriminantAnalysis())
    hasher = ClassifierCodes(estimator=pipeline, code="sign").fit(X_train, y_train)
    with pytest.raises(TypeError, match=f"{supported}.*QuadraticDiscriminant.*raw"):
        to_onnx(hasher, queries[:1])
    # A model that skl2onnx makes and that disagrees with the classifier on
    # the sample rows: here probabilities where decision scores belong.
    from skhash._onnx import _baselines

    hasher = ClassifierCodes(code="sign").fit(X_train, y_train)
    no_raw_scores = {id(hasher.estimator_): {"zipmap": False}}
    monkeypatch.setattr(_baselines, "_options", lambda *args: no_raw_scores)
    with pytest.raises(TypeError, match=f"{supported}.*decision scores"):
        to_onnx(hasher, queries[:3])
    monkeypatch.undo()

    class Renamed(ClassifierCodes):
        def _outputs(self, X):
            return -super()._outputs(X)

    with pytest.raises(TypeError, match="overrides _outputs of ClassifierCodes"):
        to_onnx(Renamed().fit(X_train, y_train), queries[:1])
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    hasher = ClassifierCodes().fit(X_train, y_train)
    with pytest.raises(ImportError, match=r"skl2onnx.*pip install \"skhash\[onnx\]\""):
        to_onnx(hasher, queries[:1])
