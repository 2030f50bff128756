import numpy as np
import pytest

from skhash.codes import (
    as_words,
    check_codes,
    hamming_distances,
    pack_codes,
    unpack_codes,
)


def slow_hamming(A_bits, B_bits):
    return np.array([[int((a != b).sum()) for b in B_bits] for a in A_bits])


@pytest.mark.parametrize("n_bits", [1, 7, 8, 9, 13, 64, 65, 100, 1024])
def test_pack_unpack_round_trip_and_padding(n_bits):
    rng = np.random.RandomState(n_bits)
    bits = rng.randint(2, size=(11, n_bits))
    codes = pack_codes(bits)
    assert codes.dtype == np.uint8
    assert codes.shape == (11, -(-n_bits // 8))
    np.testing.assert_array_equal(unpack_codes(codes, n_bits), bits)
    # Padding bits are zero, so the byte-level popcount equals the bit count.
    assert np.bitwise_count(codes).sum() == bits.sum()


def test_bit_order_is_numpy_packbits_big_endian():
    codes = pack_codes([[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(codes, [[0b10000000, 0b01000000]])


@pytest.mark.parametrize("n_bits", [3, 8, 13, 64, 100, 257])
def test_hamming_distances_match_bitwise_comparison(n_bits):
    rng = np.random.RandomState(0)
    A_bits = rng.randint(2, size=(9, n_bits))
    B_bits = rng.randint(2, size=(14, n_bits))
    D = hamming_distances(pack_codes(A_bits), pack_codes(B_bits))
    assert D.dtype == np.int32
    np.testing.assert_array_equal(D, slow_hamming(A_bits, B_bits))
    np.testing.assert_array_equal(
        hamming_distances(pack_codes(A_bits)), slow_hamming(A_bits, A_bits)
    )


def test_hamming_distances_is_sliced_with_bounded_blocks(monkeypatch):
    import skhash.utils._memory

    rng = np.random.RandomState(1)
    A = pack_codes(rng.randint(2, size=(37, 70)))
    B = pack_codes(rng.randint(2, size=(53, 70)))
    expected = hamming_distances(A, B)
    # A budget of ten words, less than one row of B, forces slicing along both
    # axes.
    monkeypatch.setattr(skhash.utils._memory, "WORKING_MEMORY", 10 * 8)
    np.testing.assert_array_equal(hamming_distances(A, B), expected)


def test_as_words_pads_to_whole_words():
    codes = pack_codes(np.ones((2, 70), dtype=int))
    words = as_words(codes)
    assert words.dtype == np.uint64 and words.shape == (2, 2)
    assert np.bitwise_count(words).sum() == 140


@pytest.mark.parametrize(
    "codes, n_bits, match",
    [
        (np.zeros((2, 2), dtype=float), None, "dtype uint8"),
        (np.zeros((2, 16), dtype=bool), None, "unpacked bits"),
        (np.zeros(4, dtype=np.uint8), None, "2-D"),
        (np.zeros((2, 0), dtype=np.uint8), None, "at least one byte"),
        (np.zeros((2, 2), dtype=np.uint8), 24, "3 bytes wide"),
        (np.array([[0, 1]], dtype=np.uint8), 9, "padding"),
        (np.zeros((2, 2), dtype=np.uint8), 0, "positive integer"),
        (np.zeros((1, 1), dtype=np.uint8), True, "positive integer"),
    ],
)
def test_check_codes_errors(codes, n_bits, match):
    with pytest.raises(ValueError, match=match):
        check_codes(codes, n_bits=n_bits)


def test_pack_codes_errors():
    with pytest.raises(ValueError, match="only 0 and 1"):
        pack_codes([[0.5, 1.0]])
    with pytest.raises(ValueError, match="2-D"):
        pack_codes([1, 0, 1])
    with pytest.raises(ValueError, match="at least one column"):
        pack_codes(np.zeros((3, 0)))


def test_hamming_distances_width_mismatch():
    with pytest.raises(ValueError, match="same code width"):
        hamming_distances(np.zeros((1, 2), np.uint8), np.zeros((1, 3), np.uint8))


def test_unpacked_bits_are_rejected_by_unpack_codes():
    # Bits that were never packed have the wrong width for their n_bits.
    with pytest.raises(ValueError, match="bytes wide"):
        unpack_codes(np.ones((2, 16), dtype=np.uint8), n_bits=16)
