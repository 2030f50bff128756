import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

import skhash.classical._ksh as ksh_module
from skhash.classical._itq import ITQHasher
from skhash.classical._ksh import KSHHasher, _cost_and_gradient, _smooth_sign
from skhash.classical._lsh import LSHHasher
from skhash.codes import unpack_codes


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


def _dense_residual(y, n_bits):
    similar = y[:, None] == y[None, :]
    return n_bits * np.where(similar, 1.0, -1.0)


def _record_descent(monkeypatch):
    """Record what every bit's gradient descent starts from and works on."""
    calls = []
    original = ksh_module._accelerated_descent

    def recording(a, K, apply_residual, max_iter, tol):
        # The residual as a dense matrix, as it stands for this bit.
        residual = apply_residual(np.eye(len(K)))
        result = original(a, K, apply_residual, max_iter, tol)
        calls.append({"start": a.copy(), "K": K, "R": residual, "end": result[0]})
        return result

    monkeypatch.setattr(ksh_module, "_accelerated_descent", recording)
    return calls


def test_smooth_sign_is_the_papers_sigmoid():
    x = np.linspace(-30, 30, 101)
    np.testing.assert_allclose(_smooth_sign(x), 2 / (1 + np.exp(-x)) - 1, atol=1e-12)
    assert np.isfinite(_smooth_sign(np.array([-1e6, 1e6]))).all()


def test_gradient_matches_finite_differences():
    rng = np.random.RandomState(0)
    K = rng.standard_normal((30, 6))
    S = np.where(rng.rand(30, 30) < 0.5, 1.0, -1.0)
    residual = (S + S.T) / 2
    a = rng.standard_normal(6) * 0.3
    cost, gradient = _cost_and_gradient(a, K, residual.__matmul__)
    step = 1e-6
    numeric = [
        (
            _cost_and_gradient(a + step * e, K, residual.__matmul__)[0]
            - _cost_and_gradient(a - step * e, K, residual.__matmul__)[0]
        )
        / (2 * step)
        for e in np.eye(6)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)
    phi = 2 / (1 + np.exp(-K @ a)) - 1
    assert cost == pytest.approx(-phi @ residual @ phi)


def test_each_bit_keeps_the_better_of_spectral_and_optimised(digits, monkeypatch):
    calls = _record_descent(monkeypatch)
    X, y = digits
    hasher = KSHHasher(n_bits=10, n_anchors=40, n_labeled=200, random_state=0)
    hasher.fit(X, y)
    assert np.all(hasher.objective_ >= hasher.spectral_objective_)
    assert hasher.n_iter_ >= 10
    assert len(calls) == 10
    for bit, call in enumerate(calls):
        K, R = call["K"], call["R"]
        spectral, optimised = (
            np.where(K @ call[key] > 0, 1.0, -1.0) for key in ("start", "end")
        )
        scores = spectral @ R @ spectral, optimised @ R @ optimised
        assert hasher.spectral_objective_[bit] == pytest.approx(scores[0])
        assert hasher.objective_[bit] == pytest.approx(max(scores))
        kept = call["end"] if scores[1] > scores[0] else call["start"]
        np.testing.assert_allclose(hasher.coef_[:, bit], kept)
        # The spectral start is scaled so that ||K a0||^2 = n_labeled.
        assert np.sum((K @ call["start"]) ** 2) == pytest.approx(200)
    # Gradient descent pays off on some bits, so the choice is not trivial.
    assert np.any(hasher.objective_ > hasher.spectral_objective_)


def test_objective_is_recomputed_from_the_codes(digits):
    """y^T R y of every kept bit, from the stored coefficients and a fresh residual."""
    X, y = digits
    hasher = KSHHasher(n_bits=6, n_anchors=30, n_labeled=400, random_state=1).fit(X, y)
    # n_labeled >= n_samples: the labelled subset is every row (in drawn order,
    # which y^T R y does not depend on).
    K = hasher._kernel(X)
    residual = _dense_residual(y, 6)
    for bit in range(6):
        code = np.where(K @ hasher.coef_[:, bit] > 0, 1.0, -1.0)
        assert code @ residual @ code == pytest.approx(hasher.objective_[bit])
        residual -= np.outer(code, code)
    # Centred by the mean over the labelled rows, here every row.
    np.testing.assert_allclose(K.mean(axis=0), 0, atol=1e-12)


def test_max_iter_zero_keeps_the_spectral_solution(digits):
    X, y = digits
    hasher = KSHHasher(n_bits=4, n_anchors=30, n_labeled=100, max_iter=0)
    hasher.fit(X, y)
    assert hasher.n_iter_ == 0
    np.testing.assert_array_equal(hasher.objective_, hasher.spectral_objective_)


def test_class_labels_and_one_hot_indicator_agree(digits):
    """The factored similarity (1-D labels) equals the dense one (indicator)."""
    X, y = digits
    params = {"n_bits": 5, "n_anchors": 30, "n_labeled": 120, "random_state": 2}
    by_class = KSHHasher(**params).fit(X, y)
    one_hot = KSHHasher(**params).fit(X, (y[:, None] == np.arange(10)).astype(int))
    np.testing.assert_allclose(by_class.coef_, one_hot.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(by_class.transform(X), one_hot.transform(X))


def test_fitting_cost_is_bounded_by_n_labeled(monkeypatch):
    calls = _record_descent(monkeypatch)
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20_000, 5))
    y = (X[:, 0] > 0).astype(int)
    hasher = KSHHasher(n_bits=2, n_anchors=25, n_labeled=150, random_state=0)
    hasher.fit(X, y)
    assert [(c["K"].shape, c["R"].shape) for c in calls] == [
        ((150, 25), (150, 150))
    ] * 2
    assert hasher.anchors_.shape == (25, 5)


def test_dropping_labels_is_announced(digits, monkeypatch):
    # Issue #16: labels beyond n_labeled were ignored without a word.
    X, y = digits
    params = {"n_bits": 4, "n_anchors": 20, "max_iter": 5, "random_state": 0}
    with pytest.warns(UserWarning, match="n_labeled=100 of the 400 .* other 300"):
        KSHHasher(n_labeled=100, **params).fit(X, y)
    calls = _record_descent(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KSHHasher(n_labeled=400, **params).fit(X, y)
        hasher = KSHHasher(n_labeled=None, **params).fit(X, y)
    # n_labeled=None: every row is labelled, its kernel mean is over all rows.
    assert calls[-1]["K"].shape == (400, 20)
    kernel = np.exp(
        -((X[:, None, :] - hasher.anchors_[None]) ** 2).sum(axis=2)
        / (2 * hasher.sigma_)
    )
    np.testing.assert_allclose(hasher.kernel_mean_, kernel.mean(axis=0))


def test_deterministic_and_multi_label(digits):
    X, y = digits
    params = {"n_bits": 13, "n_anchors": 30, "n_labeled": 150, "max_iter": 50}
    params["random_state"] = 4
    a = KSHHasher(**params).fit(X, y).transform(X)
    b = KSHHasher(**params).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (400, 2)
    # Overlapping labels: the digit and "is at least 5".
    Y = np.column_stack([y == d for d in range(10)] + [y >= 5]).astype(int)
    codes = KSHHasher(**params).fit(X, Y).transform(X)
    assert codes.shape == (400, 2) and len(np.unique(codes, axis=0)) > 5
    assert not np.array_equal(codes, a)


def test_small_and_degenerate_inputs():
    X = np.arange(12.0).reshape(6, 2)
    hasher = KSHHasher(n_bits=3, n_anchors=50, n_labeled=50, random_state=0)
    hasher.fit(X, [0, 0, 0, 1, 1, 1])
    assert hasher.anchors_.shape == (6, 2)  # fewer rows than n_anchors: all rows
    assert hasher.coef_.shape == (6, 3)
    # Every row the same point: nothing to learn, but finite codes.
    same = KSHHasher(n_bits=2, random_state=0).fit(np.ones((6, 2)), [0, 1] * 3)
    assert np.isfinite(same.coef_).all() and same.sigma_ == 1.0
    assert same.transform(np.ones((2, 2))).shape == (2, 1)


def test_bad_input(digits):
    X, y = digits
    with pytest.raises(ValueError, match="requires y"):
        KSHHasher(n_bits=4).fit(X)
    with pytest.raises(ValueError, match="1 class"):
        KSHHasher(n_bits=4).fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="NaN"):
        KSHHasher(n_bits=4).fit(np.full((5, 2), np.nan), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        KSHHasher(n_bits=4).fit(X[:3], [0.0, 1.0, np.nan])
    with pytest.raises(ValueError, match="n_anchors"):
        KSHHasher(n_bits=4, n_anchors=0).fit(X, y)
    with pytest.raises(ValueError, match="inconsistent"):
        KSHHasher(n_bits=4).fit(X, y[:-1])


def _mean_average_precision(query_codes, database_codes, y_query, y_database, n_bits):
    """Plain MAP over the Hamming ranking; ties broken by database index."""
    query = unpack_codes(query_codes, n_bits).astype(int)
    database = unpack_codes(database_codes, n_bits).astype(int)
    distances = (query[:, None, :] != database[None, :, :]).sum(axis=2)
    precisions = []
    for row, label in zip(distances, y_query, strict=True):
        relevant = y_database[np.argsort(row, kind="stable")] == label
        hits = np.cumsum(relevant)[relevant]
        precisions.append(np.mean(hits / (np.flatnonzero(relevant) + 1)))
    return np.mean(precisions)


def test_ksh_beats_unsupervised_baselines_on_digits():
    X, y = load_digits(return_X_y=True)
    X_train, y_train, X_query, y_query = X[:1000], y[:1000], X[1000:1300], y[1000:1300]
    scores = {}
    for name, hasher, labels in [
        ("LSH", LSHHasher(32, random_state=0), None),
        ("ITQ", ITQHasher(32, random_state=0), None),
        (
            "KSH",
            KSHHasher(32, n_anchors=40, n_labeled=200, max_iter=100, random_state=0),
            y_train,
        ),
    ]:
        database = hasher.fit(X_train, labels).transform(X_train)
        scores[name] = _mean_average_precision(
            hasher.transform(X_query), database, y_query, y_train, 32
        )
    print(scores)
    # Measured: LSH 0.459, ITQ 0.655, KSH 0.857.
    assert scores["KSH"] > scores["ITQ"] + 0.15 > scores["LSH"] + 0.15
