"""Linear L2-loss SVMs for many binary targets at once (STH's out-of-sample step)."""

import numpy as np

# Conjugate gradients stop when the residual is this fraction of the gradient
# (an inexact Newton step, as in liblinear's trust-region Newton solver).
_CG_RELATIVE_RESIDUAL = 0.1
_MAX_CG_ITERATIONS = 100
_MAX_HALVINGS = 30


def fit_linear_svms(X, targets, *, C=1.0, tol=1e-3, max_iter=100):
    """Weights of one linear SVM per column of `targets`, without intercept.

    Each column ``b`` solves the primal L2-loss SVM (liblinear's problem
    behind ``-s 1`` and ``-s 2``) ::

        min_w  w.w / 2 + C sum_i max(0, 1 - y_ib w.x_i)^2,   y_ib = +-1,

    a strongly convex problem with one solution, which liblinear's dual
    solver reaches too. All columns take their Newton steps together, so the
    work is a few matrix products with ``X`` per step; liblinear would copy
    ``X`` into its own format once per column, which costs more than its
    solve on dense data.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Computed in float64.
    targets : ndarray of shape (n_samples, n_targets), dtype bool
        True is the positive class.
    C : float, default=1.0
        Weight of the squared hinge losses.
    tol : float, default=1e-3
        Stop when every column's gradient norm is at most `tol` times its
        value at ``w = 0``.
    max_iter : int, default=100
        Newton steps at most.

    Returns
    -------
    coef : ndarray of shape (n_features, n_targets)
        ``X @ coef >= 0`` predicts the positive class.
    """
    # Float64 whatever the input: in float32 the gradient, a sum over all
    # rows, carries a rounding error that on 69,000 Fashion-MNIST rows exceeds
    # `tol` times the small initial gradient of some columns; their Newton
    # steps then make no progress and the solver runs all its iterations
    # (over 17 minutes for STH's 32 bits instead of 30 seconds).
    X = np.asarray(X, dtype=np.float64)
    signs = np.where(targets, 1.0, -1.0)
    coef = np.zeros((X.shape[1], signs.shape[1]), dtype=X.dtype)
    scores = np.zeros_like(signs)  # X @ coef, kept up to date

    # The Hessian of column b is I + 2C X_A^T X_A over its active samples A;
    # I + 2C (|A| / n) X^T X approximates it, and its inverse, through one
    # eigendecomposition of X^T X (n_features^2 in size), preconditions the
    # conjugate gradients: several times fewer matrix products with X.
    gram_values, gram_vectors = np.linalg.eigh(X.T @ X)

    def objective(coef, scores):
        hinge = np.maximum(1 - signs * scores, 0)
        return 0.5 * np.sum(coef**2, axis=0) + C * np.sum(hinge**2, axis=0)

    for iteration in range(max_iter):
        active = signs * scores < 1  # samples inside their margin
        gradient = coef + 2 * C * (X.T @ np.where(active, scores - signs, 0))
        gradient_norm = np.linalg.norm(gradient, axis=0)
        if iteration == 0:
            initial_norm = gradient_norm
        if np.all(gradient_norm <= tol * initial_norm):
            break
        inverse = 1 / (1 + 2 * C * np.outer(gram_values, active.mean(axis=0)))

        def precondition(vectors, inverse=inverse):
            return gram_vectors @ (inverse * (gram_vectors.T @ vectors))

        step = _newton_step(X, active, gradient, gradient_norm, C, precondition)
        step_scores = X @ step
        # Backtracking (Armijo) line search, column by column: the active set
        # changes along the step, so the full Newton step can overshoot.
        start, slope = objective(coef, scores), np.sum(gradient * step, axis=0)
        length = np.ones(signs.shape[1], dtype=X.dtype)
        for _ in range(_MAX_HALVINGS):
            trial = objective(coef + length * step, scores + length * step_scores)
            decreased = trial <= start + 0.01 * length * slope
            if decreased.all():
                break
            length = np.where(decreased, length, length / 2)
        coef += length * step
        scores += length * step_scores
    return coef


def _newton_step(X, active, gradient, gradient_norm, C, precondition):
    """Solve ``(I + 2C X_A^T X_A) step = -gradient`` per column by
    preconditioned conjugate gradients, ``A`` being that column's active
    samples."""
    step = np.zeros_like(gradient)
    residual = -gradient
    preconditioned = precondition(residual)
    direction = preconditioned.copy()
    inner = np.sum(residual * preconditioned, axis=0)
    target = (_CG_RELATIVE_RESIDUAL * gradient_norm) ** 2
    for _ in range(_MAX_CG_ITERATIONS):
        running = np.sum(residual**2, axis=0) > target
        if not running.any():
            break
        curvature = direction + 2 * C * (X.T @ (active * (X @ direction)))
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(running, inner / np.sum(direction * curvature, axis=0), 0)
        step += alpha * direction
        residual = residual - alpha * curvature
        preconditioned = precondition(residual)
        new_inner = np.sum(residual * preconditioned, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(running, new_inner / inner, 0)
        direction = preconditioned + beta * direction
        inner = new_inner
    return step
