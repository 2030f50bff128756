"""Per-class target codes and their bit weights (NumPy only, no torch)."""

import numpy as np
import pytest
from scipy.linalg import hadamard

from skhash.deep._centres import (
    _n_informative_bits,
    balanced_bit_weights,
    class_codes,
)


def _distances(codes):
    return (codes.shape[1] - codes @ codes.T) / 2


def _hadamard_row(codes, n_bits):
    """The row of scipy's Hadamard matrix each code is, up to sign (-1: none)."""
    matches = np.abs(codes @ hadamard(n_bits).T) == n_bits
    return np.where(matches.any(axis=1), matches.argmax(axis=1), -1)


def _varying_partitions(codes):
    """Distinct columns, a column and its negation counted once, constant
    columns left out: the partitions of the classes the bits make."""
    columns = {tuple(column * column[0]) for column in codes.T}
    return len(columns - {(1,) * len(codes)})


@pytest.mark.parametrize("seed", range(5))
def test_signed_hadamard_rows_keep_the_distances_and_every_bit_varies(seed):
    codes = class_codes(14, 16, "hadamard", np.random.RandomState(seed))
    rows = _hadamard_row(codes, 16)
    # Distinct rows of H up to sign, never its all-+1 first row: every pair
    # is n_bits / 2 apart (negating rows keeps H Hadamard) and every centre
    # has as many +1 as -1 (each other row is orthogonal to the first).
    assert (rows > 0).all() and len(set(rows)) == 14
    assert set(_distances(codes)[np.triu_indices(14, 1)]) == {8.0}
    np.testing.assert_array_equal(codes.sum(axis=1), 0)
    # Sylvester's first column is +1 in every row: signed rows make it vary,
    # and no two bits split the classes the same way.
    assert _varying_partitions(codes) == 16


def test_longer_centres_are_not_copies_of_shorter_ones():
    # The first 10 rows of Sylvester's H of order 32 depend on the column
    # index modulo 16 only (H[i, j] = (-1) ** popcount(i & j) with i < 16):
    # 16 of its 32 columns repeat the others, one is constant.
    first = hadamard(32)[:10]
    assert _varying_partitions(first) == 15
    codes = class_codes(10, 32, "hadamard", np.random.RandomState(0))
    assert set(_distances(codes)[np.triu_indices(10, 1)]) == {16.0}
    assert _varying_partitions(codes) == 32


def test_three_centres_cannot_do_better():
    # Three orthogonal +-1 rows of 16: up to the sign of each column, a column
    # is (+++) or one of three others, four columns of each (the three inner
    # products vanish), so four columns are constant whatever the signs.
    codes = class_codes(3, 16, "hadamard", np.random.RandomState(0))
    assert set(_distances(codes)[np.triu_indices(3, 1)]) == {8.0}
    assert _varying_partitions(codes) == 3
    assert (np.abs(codes.sum(axis=0)) == 3).sum() == 4


def test_more_classes_than_bits_take_twins():
    codes = class_codes(20, 16, "hadamard", np.random.RandomState(0))
    rows = _hadamard_row(codes, 16)
    # All 16 rows of H (the all-+1 one too), then negations of 4 of them.
    assert sorted(rows[:16]) == list(range(16))
    distances = _distances(codes)
    assert set(distances[np.triu_indices(20, 1)]) == {8.0, 16.0}
    for extra in range(16, 20):
        (twin,) = np.flatnonzero(distances[extra] == 16)
        np.testing.assert_array_equal(codes[extra], -codes[twin])
    # With every row's twin, every column has as many +1 as -1.
    full = class_codes(32, 16, "hadamard", np.random.RandomState(0))
    np.testing.assert_array_equal(full.sum(axis=0), 0)


def test_balanced_random_codes_beyond_hadamard():
    rng = np.random.RandomState(0)
    # More classes than 2 * n_bits, or n_bits not a power of two.
    for n_classes, n_bits in [(40, 16), (5, 12)]:
        codes = class_codes(n_classes, n_bits, "hadamard", rng)
        assert codes.shape == (n_classes, n_bits)
        np.testing.assert_array_equal(codes.sum(axis=1), 0)
        assert len(np.unique(codes, axis=0)) == n_classes


def test_same_seed_same_centres():
    a = class_codes(14, 16, "hadamard", np.random.RandomState(7))
    b = class_codes(14, 16, "hadamard", np.random.RandomState(7))
    np.testing.assert_array_equal(a, b)


def test_informative_bits_by_hand():
    codes = np.array([[1, 1, -1, 1], [1, -1, 1, 1], [-1, 1, 1, 1]], dtype=np.int8)
    # Columns (1,1,-1), (1,-1,1), (-1,1,1), (1,1,1): the last is constant and
    # the others are three different partitions.
    assert _n_informative_bits(codes) == 3
    codes[:, 2] = -codes[:, 0]  # the same partition as column 0
    assert _n_informative_bits(codes) == 2
    assert _n_informative_bits(codes[:1]) == 0


def test_balanced_bit_weights_by_hand():
    codes = np.array([[1, 1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1]])
    # Bit 0: three +1 of four, weights 4 / (2 * 3) and 4 / (2 * 1); bit 2 has
    # one value only and keeps weight 1.
    expected = [[2 / 3, 2 / 3, 1], [2, 2, 1]]
    np.testing.assert_allclose(balanced_bit_weights(codes), expected)
    # Counts: the last row five times (total 8): bit 0 has 3 of +1 and 5 of -1.
    expected = [[8 / 6, 8 / 14, 1], [8 / 10, 8 / 2, 1]]
    np.testing.assert_allclose(balanced_bit_weights(codes, [1, 1, 1, 5]), expected)


def test_balanced_bit_weights_give_both_values_half_the_weight():
    rng = np.random.RandomState(0)
    codes = np.where(rng.rand(50, 12) < 0.8, 1.0, -1.0)
    counts = rng.randint(1, 10, 50)
    weights = balanced_bit_weights(codes, counts)
    per_term = np.where(codes > 0, weights[0], weights[1]) * counts[:, None]
    for bit in range(12):
        positive = codes[:, bit] > 0
        assert per_term[positive, bit].sum() == pytest.approx(counts.sum() / 2)
        assert per_term[~positive, bit].sum() == pytest.approx(counts.sum() / 2)
