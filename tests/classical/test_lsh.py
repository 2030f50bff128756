import numpy as np
import pytest
from sklearn.datasets import load_digits

from skhash.classical import LSHHasher
from skhash.codes import hamming_distances, unpack_codes


def test_codes_are_signs_of_centred_random_projections():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((40, 6))
    hasher = LSHHasher(n_bits=13, random_state=3).fit(X)
    W = np.random.RandomState(3).standard_normal((6, 13))
    expected = ((X - X.mean(axis=0)) @ W >= 0).astype(np.uint8)
    codes = hasher.transform(X)
    assert codes.shape == (40, 2) and codes.dtype == np.uint8
    np.testing.assert_array_equal(unpack_codes(codes, 13), expected)


def test_hamming_distance_estimates_the_angle():
    # P(bit differs) = angle / pi for Gaussian hyperplanes (Charikar 2002).
    x = np.array([[1.0, 0.0], [np.cos(1.0), np.sin(1.0)], [-1.0, 0.0], [1.0, 1.0]])
    hasher = LSHHasher(n_bits=4000, random_state=0).fit(x)
    hasher.mean_ = np.zeros(2)  # measure angles around the origin
    d = hamming_distances(hasher.transform(x[:1]), hasher.transform(x[1:2]))
    assert d[0, 0] / 4000 == pytest.approx(1.0 / np.pi, abs=0.03)


def test_deterministic_under_random_state_and_float32():
    X, _ = load_digits(return_X_y=True)
    a = LSHHasher(n_bits=20, random_state=7).fit_transform(X)
    b = LSHHasher(n_bits=20, random_state=7).fit_transform(X)
    c = LSHHasher(n_bits=20, random_state=8).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert LSHHasher(n_bits=20, random_state=7).fit_transform(
        X.astype(np.float32)
    ).shape == (len(X), 3)


@pytest.mark.parametrize(
    "X, params, match",
    [
        ([[0.0, np.nan]], {}, "NaN"),
        ([1.0, 2.0], {}, "2D array"),
        ([[0.0, 1.0]], {"n_bits": 0}, "n_bits"),
        ([[0.0, 1.0]], {"n_bits": 2.5}, "n_bits"),
    ],
)
def test_bad_input(X, params, match):
    with pytest.raises(ValueError, match=match):
        LSHHasher(**params).fit(X)


def test_transform_checks_feature_count():
    hasher = LSHHasher(n_bits=8, random_state=0).fit(np.ones((3, 4)))
    with pytest.raises(ValueError, match="features"):
        hasher.transform(np.ones((3, 5)))
