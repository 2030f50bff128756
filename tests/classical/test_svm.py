import numpy as np
import pytest
from sklearn.svm import LinearSVC

from skhash.classical._svm import fit_linear_svms


def _objective(coef, X, targets, C):
    signs = np.where(targets, 1.0, -1.0)
    hinge = np.maximum(1 - signs * (X @ coef), 0)
    return 0.5 * np.sum(coef**2, axis=0) + C * np.sum(hinge**2, axis=0)


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_same_optimum_as_liblinear(C):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 12))
    targets = np.column_stack(
        [
            X[:, 0] > 0,  # separable
            X[:, 1] + rng.standard_normal(300) > 0,  # noisy
            rng.uniform(size=300) < 0.2,  # unbalanced noise
        ]
    )
    ours = fit_linear_svms(X, targets, C=C, tol=1e-10)
    reference = np.column_stack(
        [
            LinearSVC(C=C, fit_intercept=False, tol=1e-12, max_iter=100_000)
            .fit(X, column)
            .coef_.ravel()
            for column in targets.T
        ]
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-8)
    # At the optimum: liblinear's answer is not lower on the objective.
    ours_objective = _objective(ours, X, targets, C)
    assert np.all(ours_objective <= _objective(reference, X, targets, C) * (1 + 1e-12))


def test_stops_at_the_relative_gradient_tolerance():
    rng = np.random.RandomState(1)
    X = rng.standard_normal((200, 5))
    targets = (X @ rng.standard_normal((5, 4)) + rng.standard_normal((200, 4))) > 0
    C, tol = 1.0, 1e-4
    coef = fit_linear_svms(X, targets, C=C, tol=tol)
    signs = np.where(targets, 1.0, -1.0)
    scores = X @ coef
    gradient = coef + 2 * C * X.T @ np.where(signs * scores < 1, scores - signs, 0)
    initial = 2 * C * X.T @ -signs  # the gradient at w = 0
    assert np.all(
        np.linalg.norm(gradient, axis=0) <= tol * np.linalg.norm(initial, axis=0)
    )


def test_float32_input_is_solved_in_float64():
    # In float32 the gradient's rounding error can exceed the stopping
    # threshold on large data, and the solver then stalls: it works in float64.
    rng = np.random.RandomState(0)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    targets = X[:, :2] + rng.standard_normal((200, 2)) > 0
    coef = fit_linear_svms(X, targets)
    assert coef.dtype == np.float64
    np.testing.assert_array_equal(coef, fit_linear_svms(X.astype(np.float64), targets))
