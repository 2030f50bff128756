import numpy as np
import pytest
from sklearn.datasets import load_digits

from skhash import SpectralHasher
from skhash.classical._spectral import _select_modes
from skhash.codes import unpack_codes


def test_mode_selection_oracle_keeps_the_stable_order_of_an_exact_tie():
    # methods.md: ranges [4, 2], k = 3 -> [1,0], [2,0], [0,1]; [2,0] and [0,1]
    # have the same eigenvalue (pi/2)^2 and enumeration order decides.
    np.testing.assert_array_equal(
        _select_modes([4.0, 2.0], 3), [[1, 0], [2, 0], [0, 1]]
    )


def test_mode_selection_prefers_long_directions():
    modes = _select_modes([10.0, 1.0, 3.0], 6)
    # Eigenvalues (m / R)^2 ascending: 1/10, 2/10, 1/3, 3/10 ... by direction.
    eigen = [(row.max() / [10.0, 1.0, 3.0][row.argmax()]) ** 2 for row in modes]
    assert np.all(np.diff(eigen) >= 0)
    assert ((modes > 0).sum(axis=1) == 1).all()


def slow_sh_codes(X_train, X, n_bits):
    """Spectral hashing written out: PCA, box, modes, products of cosines."""
    centred = X_train - X_train.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / len(X_train))
    n_directions = min(n_bits, X_train.shape[1])
    pc = vectors[:, ::-1][:, :n_directions]
    pc = pc * np.sign(pc[np.abs(pc).argmax(axis=0), np.arange(n_directions)])
    train = X_train @ pc
    eps = np.finfo(float).eps
    mn, mx = train.min(axis=0) - eps, train.max(axis=0) + eps
    modes = _select_modes(mx - mn, n_bits)
    projected = X @ pc - mn
    bits = np.empty((len(X), n_bits), dtype=np.uint8)
    for b, mode in enumerate(modes):
        product = np.prod(np.cos(projected * mode * np.pi / (mx - mn)), axis=1)
        bits[:, b] = product >= 0
    return bits


@pytest.mark.parametrize("n_bits", [1, 7, 13, 70])
def test_codes_match_a_plain_reimplementation(n_bits):
    X, _ = load_digits(return_X_y=True)
    hasher = SpectralHasher(n_bits=n_bits).fit(X[:400])
    codes = hasher.transform(X[400:600])
    assert codes.shape == (200, -(-n_bits // 8))
    np.testing.assert_array_equal(
        unpack_codes(codes, n_bits), slow_sh_codes(X[:400], X[400:600], n_bits)
    )


def test_more_bits_than_features_reuses_directions():
    X = np.random.RandomState(0).standard_normal((300, 3))
    hasher = SpectralHasher(n_bits=10).fit(X)
    assert hasher.components_.shape == (3, 3)
    assert hasher.modes_.shape == (10, 3)
    assert len({tuple(row) for row in hasher.modes_}) == 10


def test_deterministic_and_bad_input():
    X, _ = load_digits(return_X_y=True)
    np.testing.assert_array_equal(
        SpectralHasher(16).fit_transform(X), SpectralHasher(16).fit_transform(X)
    )
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        SpectralHasher(4).fit(X[:1])
    with pytest.raises(ValueError, match="NaN"):
        SpectralHasher(4).fit(np.full((5, 2), np.nan))
