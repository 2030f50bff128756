import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skhash.base import MAX_N_BITS, fits_from_rows
from skhash.classical import SignHasher

THRESHOLDS = ["zero", "mean", "median"]


def _data(n_samples=60, n_features=20, seed=0):
    rng = np.random.RandomState(seed)
    # Offsets and scales per feature, so that zero, the mean and the median
    # are different thresholds (and an always-positive feature is there).
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 3, n_features)
    X += np.linspace(-1, 4, n_features)
    return X


def _oracle_thresholds(X, threshold, n_bits):
    kept = np.asarray(X, dtype=np.float64)[:, :n_bits]
    if threshold == "zero":
        return np.zeros(n_bits)
    if threshold == "mean":
        return kept.mean(axis=0)
    return np.median(kept, axis=0)


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("n_bits", [None, 1, 13, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_codes_are_packed_comparisons_with_the_threshold(threshold, n_bits, dtype):
    X = _data().astype(dtype)
    hasher = SignHasher(n_bits, threshold=threshold).fit(X)
    n_kept = X.shape[1] if n_bits is None else n_bits
    assert hasher.n_bits_ == n_kept and hasher.n_features_in_ == X.shape[1]
    expected_thresholds = _oracle_thresholds(X, threshold, n_kept)
    assert hasher.threshold_.shape == (n_kept,)
    assert hasher.threshold_.dtype == np.float64
    np.testing.assert_allclose(hasher.threshold_, expected_thresholds, rtol=1e-12)
    # New rows too, and rows lying exactly on the thresholds (bit 1).
    queries = np.vstack([X, _data(seed=1).astype(dtype)])
    on_threshold = np.zeros((1, X.shape[1]), dtype=dtype)
    on_threshold[0, :n_kept] = hasher.threshold_
    queries = np.vstack([queries, on_threshold])
    expected = np.packbits(queries[:, :n_kept] >= expected_thresholds, axis=1)
    codes = hasher.transform(queries)
    assert codes.dtype == np.uint8 and codes.shape == (len(queries), -(-n_kept // 8))
    np.testing.assert_array_equal(codes, expected)
    if threshold == "zero" or dtype == np.float64:
        # (A float32 row cannot hold a float64 mean or median exactly.)
        assert (np.unpackbits(codes[-1:], count=n_kept) == 1).all()


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_thresholds_split_the_training_data(threshold):
    X = _data()
    bits = np.unpackbits(SignHasher(threshold=threshold).fit_transform(X), axis=1)
    ones = bits[:, : X.shape[1]].mean(axis=0)
    always_positive = (X > 0).all(axis=0)
    assert always_positive.any()
    if threshold == "zero":
        # The sign of an always-positive feature says nothing.
        assert (ones[always_positive] == 1).all()
    elif threshold == "median":
        assert (ones == 0.5).all()
    else:
        assert ((ones > 0) & (ones < 1)).all()


def test_zero_threshold_learns_nothing_from_the_data():
    X = _data()
    fitted_here = SignHasher().fit(X)
    fitted_elsewhere = SignHasher().fit(_data(seed=5) * 100 - 50)
    np.testing.assert_array_equal(
        fitted_here.transform(X), fitted_elsewhere.transform(X)
    )
    np.testing.assert_array_equal(fitted_here.transform(X), np.packbits(X >= 0, axis=1))


@pytest.mark.parametrize("n_bits", [1, 5, 7, 9, 13, 20])
def test_padding_bits_are_zero(n_bits):
    X = _data()
    codes = SignHasher(n_bits).fit(X).transform(X)
    assert codes.shape[1] == -(-n_bits // 8)
    bits = np.unpackbits(codes, axis=1)
    assert bits[:, :n_bits].any()
    assert not bits[:, n_bits:].any()


def test_n_bits_keeps_the_leading_features():
    X = _data()
    full = SignHasher(threshold="median").fit(X)
    truncated = SignHasher(8, threshold="median").fit(X)
    np.testing.assert_array_equal(truncated.threshold_, full.threshold_[:8])
    np.testing.assert_array_equal(truncated.transform(X), full.transform(X)[:, :1])
    # Features past n_bits change no code.
    changed = X.copy()
    changed[:, 8:] = -changed[:, 8:]
    np.testing.assert_array_equal(truncated.transform(changed), truncated.transform(X))
    assert not np.array_equal(full.transform(changed), full.transform(X))


def test_n_bits_above_the_features_is_an_error_at_fit():
    X = _data(n_features=6)
    hasher = SignHasher(7)
    with pytest.raises(ValueError, match="n_bits=7.*n_features=6: at most 6"):
        hasher.fit(X)
    assert SignHasher(6).fit(X).transform(X).shape == (len(X), 1)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_bits": 0}, "n_bits"),
        ({"n_bits": -3}, "n_bits"),
        ({"n_bits": 2.5}, "n_bits"),
        ({"n_bits": True}, "n_bits"),
        ({"n_bits": "8"}, "n_bits"),
        ({"n_bits": MAX_N_BITS + 1}, "n_bits"),
        ({"threshold": "max"}, "threshold"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": None}, "threshold"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        SignHasher(**params).fit(_data())


def test_transform_checks_feature_count():
    X = _data()
    hasher = SignHasher(4).fit(X)
    # All the features are checked, not only the kept ones.
    with pytest.raises(ValueError, match="features"):
        hasher.transform(X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        hasher.transform(np.hstack([X, X[:, :1]]))


def test_median_is_not_fitted_from_sums():
    assert fits_from_rows(SignHasher(threshold="zero"))
    assert fits_from_rows(SignHasher(threshold="mean"))
    assert not fits_from_rows(SignHasher(threshold="median"))


# skhash.dask.fit on Dask's local threads: no cluster is needed to check that
# the reductions over partitions give the in-memory model.


@pytest.fixture(scope="module")
def dask_array():
    pytest.importorskip("dask.array")
    pytest.importorskip("skhash.dask")
    return pytest.importorskip("dask.array")


# Uneven partitions, one of them empty.
CHUNKS = (40, 0, 95, 7, 58)


@pytest.mark.parametrize("threshold", ["zero", "mean"])
@pytest.mark.parametrize("n_bits", [None, 11])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dask_fit_from_sums_is_the_local_fit(dask_array, threshold, n_bits, dtype):
    from skhash.dask import fit

    X = _data(n_samples=sum(CHUNKS)).astype(dtype)
    local = SignHasher(n_bits, threshold=threshold).fit(X)
    # No n_samples: the exact path (the sampling one would require it).
    fitted = fit(
        SignHasher(n_bits, threshold=threshold),
        dask_array.from_array(X, chunks=(CHUNKS, X.shape[1])),
    )
    assert fitted.n_bits_ == local.n_bits_
    assert fitted.n_features_in_ == local.n_features_in_
    assert fitted.threshold_.dtype == local.threshold_.dtype == np.float64
    np.testing.assert_allclose(fitted.threshold_, local.threshold_, rtol=1e-12)
    np.testing.assert_array_equal(fitted.transform(X), local.transform(X))


def test_dask_fit_of_the_median_samples_rows(dask_array):
    from skhash.dask import fit

    X = _data(n_samples=sum(CHUNKS))
    dX = dask_array.from_array(X, chunks=(CHUNKS, X.shape[1]))
    with pytest.raises(ValueError, match="pass n_samples"):
        fit(SignHasher(threshold="median"), dX)
    # Every row drawn: the local fit exactly.
    everything = fit(SignHasher(threshold="median"), dX, n_samples=10**9)
    local = SignHasher(threshold="median").fit(X)
    np.testing.assert_array_equal(everything.threshold_, local.threshold_)
    np.testing.assert_array_equal(everything.transform(X), local.transform(X))
    sample = fit(SignHasher(threshold="median"), dX, n_samples=50, random_state=0)
    assert not np.array_equal(sample.threshold_, local.threshold_)


def test_dask_fit_checks_n_bits_and_threshold(dask_array):
    from skhash.dask import fit

    dX = dask_array.from_array(_data(), chunks=25)
    with pytest.raises(ValueError, match="at most 20"):
        fit(SignHasher(21), dX)
    with pytest.raises(InvalidParameterError, match="threshold"):
        fit(SignHasher(threshold="max"), dX)


# ONNX export: the model's codes under onnxruntime equal transform's.


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("n_bits", [None, 13])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_onnx_codes_equal_transform(threshold, n_bits, dtype):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from skhash.onnx import to_onnx

    X = _data().astype(dtype)
    hasher = SignHasher(n_bits, threshold=threshold).fit(X)
    on_threshold = np.zeros((1, X.shape[1]), dtype=dtype)
    on_threshold[0, : hasher.n_bits_] = hasher.threshold_
    queries = np.vstack([X, _data(seed=2).astype(dtype), on_threshold])
    model = to_onnx(hasher, queries[:1])
    onnx.checker.check_model(model, full_check=True)
    properties = {p.key: p.value for p in model.metadata_props}
    assert properties == {
        "skhash.estimator": "SignHasher",
        "n_bits": str(hasher.n_bits_),
    }
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    expected = hasher.transform(queries)
    for rows in [queries, queries[-1:]]:
        codes = session.run(["codes"], {"X": rows})[0]
        assert codes.dtype == np.uint8
        np.testing.assert_array_equal(codes, hasher.transform(rows))
    np.testing.assert_array_equal(session.run(["codes"], {"X": queries})[0], expected)


def test_bits_that_never_change_are_warned_of():
    # Pixels under the vector databases' zero threshold: every bit is 1.
    X = np.random.default_rng(0).random((50, 8))
    with pytest.warns(UserWarning, match="8 of the 8 bits are the same"):
        SignHasher().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SignHasher(threshold="mean").fit(X)
        SignHasher().fit(X - 0.5)
