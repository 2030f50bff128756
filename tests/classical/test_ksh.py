import numpy as np
import pytest
from sklearn.datasets import load_digits

import skhash.classical._ksh as ksh_module
from skhash import KSHHasher
from skhash.classical._ksh import _cost_and_gradient, _smooth_sign


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


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
    cost, gradient = _cost_and_gradient(a, K, residual)
    step = 1e-6
    numeric = [
        (
            _cost_and_gradient(a + step * e, K, residual)[0]
            - _cost_and_gradient(a - step * e, K, residual)[0]
        )
        / (2 * step)
        for e in np.eye(6)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5)
    phi = _smooth_sign(K @ a)
    assert cost == pytest.approx(-phi @ residual @ phi)


def test_each_bit_keeps_the_better_of_spectral_and_optimised(digits):
    X, y = digits
    hasher = KSHHasher(n_bits=10, n_anchors=40, n_labeled=200, random_state=0).fit(X, y)
    spectral, kept = hasher.objective_.T
    assert np.all(kept >= spectral)
    assert hasher.n_iter_ >= 10


def test_objective_is_recomputed_from_the_codes(digits):
    """y^T R y of every kept bit, from the stored coefficients and a fresh residual."""
    X, y = digits
    hasher = KSHHasher(n_bits=6, n_anchors=30, n_labeled=400, random_state=1).fit(X, y)
    # n_labeled >= n_samples: the labelled subset is every row (in drawn order,
    # which y^T R y does not depend on).
    K = hasher._kernel(X)
    residual = 6 * np.where(y[:, None] == y[None, :], 1.0, -1.0)
    for bit in range(6):
        code = np.where(K @ hasher.coef_[:, bit] > 0, 1.0, -1.0)
        assert code @ residual @ code == pytest.approx(hasher.objective_[bit, 1])
        residual -= np.outer(code, code)


def test_fitting_cost_is_bounded_by_n_labeled(monkeypatch):
    sizes = []
    original = ksh_module._accelerated_descent

    def recording(a, K, residual, max_iter, tol):
        sizes.append((K.shape, residual.shape))
        return original(a, K, residual, max_iter, tol)

    monkeypatch.setattr(ksh_module, "_accelerated_descent", recording)
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20_000, 5))
    y = (X[:, 0] > 0).astype(int)
    KSHHasher(n_bits=2, n_anchors=25, n_labeled=150, random_state=0).fit(X, y)
    assert sizes == [((150, 25), (150, 150))] * 2


def test_deterministic_and_multi_label(digits):
    X, y = digits
    params = {"n_bits": 13, "n_anchors": 30, "n_labeled": 150, "random_state": 4}
    a = KSHHasher(**params).fit(X, y).transform(X)
    b = KSHHasher(**params).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (400, 2)
    Y = np.column_stack([y == d for d in range(10)] + [y >= 5]).astype(int)
    codes = KSHHasher(**params).fit(X, Y).transform(X)
    assert codes.shape == (400, 2) and len(np.unique(codes, axis=0)) > 5


def test_bad_input(digits):
    X, y = digits
    with pytest.raises(ValueError, match="requires y"):
        KSHHasher(n_bits=4).fit(X)
    with pytest.raises(ValueError, match="1 class"):
        KSHHasher(n_bits=4).fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="NaN"):
        KSHHasher(n_bits=4).fit(np.full((5, 2), np.nan), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="n_anchors"):
        KSHHasher(n_bits=4, n_anchors=0).fit(X, y)
