import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import InvalidParameterError

from skhash.classical import SSHHasher
from skhash.codes import unpack_codes


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


def _adjusted_covariance(X, similar, eta):
    """The objective's matrix from its definition: a double sum over pairs."""
    Z = X - X.mean(axis=0)
    n = len(Z)
    S = np.where(similar, 1.0, -1.0)
    label_fit = sum(S[i, j] * np.outer(Z[i], Z[j]) for i in range(n) for j in range(n))
    return label_fit / n**2 + eta * Z.T @ Z / n


def _same_subspace(A, B):
    # Orthonormal columns: equal spans when the projector difference vanishes.
    return np.allclose(A @ A.T, B @ B.T, atol=1e-6)


def test_codes_shape_dtype_and_padding(digits):
    X, y = digits
    codes = SSHHasher(n_bits=10, random_state=0).fit(X, y).transform(X)
    assert codes.shape == (len(X), 2) and codes.dtype == np.uint8
    # The six padding bits of the second byte are zero.
    assert not np.any(codes[:, 1] & 0b00111111)


@pytest.mark.parametrize("params", [{}, {"kernel": "rbf", "n_anchors": 40}])
def test_same_seed_same_codes(digits, params):
    X, y = digits
    fit = [
        SSHHasher(n_bits=8, rotation="itq", random_state=seed, **params).fit(X, y)
        for seed in (3, 3, 4)
    ]
    codes = [hasher.transform(X) for hasher in fit]
    np.testing.assert_array_equal(codes[0], codes[1])
    assert not np.array_equal(codes[0], codes[2])


def test_projections_maximise_the_stated_objective(digits):
    # A slow eigen-solve of J(W) built pair by pair from S = +1 / -1.
    X, y = digits[0][:60, :20], digits[1][:60]
    for eta in (0.0, 0.5, 4.0):
        hasher = SSHHasher(n_bits=5, eta=eta).fit(X, y)
        M = _adjusted_covariance(X, y[:, None] == y[None, :], eta)
        values, vectors = np.linalg.eigh(M)
        np.testing.assert_allclose(hasher.eigenvalues_, values[::-1][:5], atol=1e-9)
        assert _same_subspace(hasher.components_, vectors[:, ::-1][:, :5])
        W = hasher.components_
        np.testing.assert_allclose(np.trace(W.T @ M @ W), values[-5:].sum())


def test_multilabel_objective(digits):
    X = digits[0][:50, :16]
    rng = np.random.default_rng(0)
    Y = (rng.random((50, 4)) < 0.3).astype(int)
    hasher = SSHHasher(n_bits=4, eta=0.2).fit(X, Y)
    M = _adjusted_covariance(X, (Y @ Y.T) > 0, 0.2)
    values, vectors = np.linalg.eigh(M)
    assert _same_subspace(hasher.components_, vectors[:, ::-1][:, :4])


def test_large_eta_gives_pca(digits):
    X, y = digits
    hasher = SSHHasher(n_bits=6, eta=1e8).fit(X, y)
    pca = PCA(n_components=6).fit(X)
    assert _same_subspace(hasher.components_, pca.components_.T)


def test_class_labels_only_move_between_class_directions(digits):
    # eta = 0, two classes: the label term is rank one along the difference
    # of the class means, so the top direction is that difference.
    X, y = digits
    keep = np.isin(y, (0, 1))
    X, y = X[keep], y[keep]
    hasher = SSHHasher(n_bits=1, eta=0.0).fit(X, y)
    difference = X[y == 1].mean(axis=0) - X[y == 0].mean(axis=0)
    cosine = hasher.components_[:, 0] @ difference / np.linalg.norm(difference)
    assert abs(cosine) == pytest.approx(1.0)


def test_rotation_keeps_the_objective_and_lowers_quantisation(digits):
    X, y = digits
    plain = SSHHasher(n_bits=8, eta=1.0).fit(X, y)
    rotated = SSHHasher(n_bits=8, eta=1.0, rotation="itq", random_state=0).fit(X, y)
    np.testing.assert_allclose(plain.components_, rotated.components_)
    R = rotated.rotation_
    np.testing.assert_allclose(R.T @ R, np.eye(8), atol=1e-10)
    assert np.all(np.diff(rotated.quantization_loss_) <= 1e-8)
    np.testing.assert_array_equal(plain.rotation_, np.eye(8))
    # The codes are the signs of the rotated projections.
    V = (X - rotated.mean_) @ rotated.components_ @ R
    bits = unpack_codes(rotated.transform(X), 8)
    np.testing.assert_array_equal(bits, V >= 0)


def test_rbf_features(digits):
    X, y = digits
    hasher = SSHHasher(n_bits=12, kernel="rbf", n_anchors=30, random_state=0)
    hasher.fit(X, y)
    assert hasher.anchors_.shape == (30, X.shape[1])
    assert hasher.components_.shape == (30, 12)
    squared = ((X[:, None, :] - hasher.anchors_[None]) ** 2).sum(-1)
    assert hasher.sigma_ == pytest.approx(squared.mean())
    K = np.exp(-squared / (2 * hasher.sigma_))
    np.testing.assert_allclose(hasher.mean_, K.mean(axis=0))
    bits = unpack_codes(hasher.transform(X), 12)
    np.testing.assert_array_equal(bits, (K - hasher.mean_) @ hasher.components_ >= 0)


def test_too_many_bits(digits):
    X, y = digits
    with pytest.raises(ValueError, match="at most 64"):
        SSHHasher(n_bits=65).fit(X, y)
    with pytest.raises(ValueError, match="at most 20"):
        SSHHasher(n_bits=21, kernel="rbf", n_anchors=20).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [{"eta": -1.0}, {"kernel": "poly"}, {"rotation": "pca"}, {"n_anchors": 0}],
)
def test_bad_parameters(digits, params):
    X, y = digits
    with pytest.raises(InvalidParameterError):
        SSHHasher(n_bits=4, **params).fit(X, y)


def test_labels_are_required_and_checked(digits):
    X, y = digits
    with pytest.raises(ValueError, match="requires y"):
        SSHHasher(n_bits=4).fit(X)
    with pytest.raises(ValueError):
        SSHHasher(n_bits=4).fit(X, y[:-1])
    with pytest.raises(ValueError):
        SSHHasher(n_bits=4).fit(np.where(X > 8, np.nan, X), y)
