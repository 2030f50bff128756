"""Property-based tests of skhash.codes against slow, obvious references.

The references work on bits as NumPy 0/1 arrays: bit ``j`` of a code is bit
``7 - j % 8`` of byte ``j // 8`` (the documented layout), and a Hamming
distance is ``(a != b).sum()`` over unpacked bits.

Profiles (tests/conftest.py): ``ci``, the default, runs a bounded,
derandomized set of examples; ``HYPOTHESIS_PROFILE=long`` thousands of fresh
ones per test.
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import skhash.utils._memory
from skhash.codes import check_codes, hamming_distances, pack_codes, unpack_codes

N_BITS = st.one_of(
    st.integers(1, 1024),
    # Word and byte boundaries, where off-by-one errors live.
    st.sampled_from([1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 511, 512, 1023, 1024]),
)


def reference_pack(bits):
    """Bit j goes to byte j // 8 with weight 2 ** (7 - j % 8); padding zero."""
    bits = np.asarray(bits).astype(np.int64)
    n_rows, n_bits = bits.shape
    n_bytes = (n_bits + 7) // 8
    codes = np.zeros((n_rows, n_bytes), dtype=np.int64)
    for j in range(n_bits):
        codes[:, j // 8] += bits[:, j] << (7 - j % 8)
    return codes.astype(np.uint8)


def reference_unpack(codes, n_bits):
    codes = np.asarray(codes).astype(np.int64)
    j = np.arange(n_bits)
    return ((codes[:, j // 8] >> (7 - j % 8)) & 1).astype(np.uint8)


def reference_distances(A_bits, B_bits):
    return np.array(
        [[int((a != b).sum()) for b in B_bits] for a in A_bits], dtype=np.int64
    ).reshape(len(A_bits), len(B_bits))


@st.composite
def bit_arrays(draw, n_bits=None, min_rows=0, max_rows=12):
    """0/1 arrays of shape (n_rows, n_bits): random, sparse, dense or constant."""
    n_bits = draw(N_BITS) if n_bits is None else n_bits
    n_rows = draw(st.integers(min_rows, max_rows))
    density = draw(st.sampled_from([0.0, 0.03, 0.5, 0.97, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.random((n_rows, n_bits)) < density).astype(np.uint8)


# pack_codes accepts booleans and integers or floats equal to 0 and 1.
BIT_DTYPES = st.sampled_from([bool, np.uint8, np.int64, np.float32, np.float64])


@given(bits=bit_arrays(), dtype=BIT_DTYPES)
def test_pack_matches_the_reference_and_round_trips(bits, dtype):
    n_bits = bits.shape[1]
    codes = pack_codes(bits.astype(dtype))
    assert codes.dtype == np.uint8
    assert codes.shape == (len(bits), (n_bits + 7) // 8)
    np.testing.assert_array_equal(codes, reference_pack(bits))
    # Padding bits (past n_bits in the last byte) are zero.
    n_padding = 8 * codes.shape[1] - n_bits
    assert not np.any(codes[:, -1] & ((1 << n_padding) - 1))
    unpacked = unpack_codes(codes, n_bits)
    assert unpacked.dtype == np.uint8
    np.testing.assert_array_equal(unpacked, bits)
    np.testing.assert_array_equal(check_codes(codes, n_bits=n_bits), codes)
    if len(bits):
        # Python lists of lists pack the same as arrays ([] is 1-D, not 0 rows).
        np.testing.assert_array_equal(pack_codes(bits.tolist()), codes)


def test_pack_and_unpack_at_every_n_bits():
    # Every code length from 1 to 1024 once, with rows that set each bit alone
    # (so a misplaced bit cannot hide behind a neighbour), all ones and noise.
    rng = np.random.default_rng(0)
    for n_bits in range(1, 1025):
        bits = np.concatenate(
            [
                np.eye(n_bits, dtype=np.uint8)[rng.permutation(n_bits)[:8]],
                np.ones((1, n_bits), dtype=np.uint8),
                rng.integers(0, 2, (2, n_bits), dtype=np.uint8),
            ]
        )
        codes = pack_codes(bits)
        np.testing.assert_array_equal(codes, reference_pack(bits), err_msg=n_bits)
        np.testing.assert_array_equal(unpack_codes(codes, n_bits), bits)


@given(bits=bit_arrays(min_rows=1), data=st.data())
def test_check_codes_accepts_exactly_zero_padding(bits, data):
    codes = reference_pack(bits)
    n_bytes = codes.shape[1]
    # Any claimed code length that fits the same number of bytes: valid iff
    # every bit past it is zero (the reference reads the bits one by one).
    claimed = data.draw(st.integers(8 * n_bytes - 7, 8 * n_bytes), label="claimed")
    all_bits = reference_unpack(codes, 8 * n_bytes)
    if all_bits[:, claimed:].any():
        with pytest.raises(ValueError, match="non-zero padding bits"):
            check_codes(codes, n_bits=claimed)
        with pytest.raises(ValueError, match="non-zero padding bits"):
            unpack_codes(codes, claimed)
    else:
        np.testing.assert_array_equal(check_codes(codes, n_bits=claimed), codes)
        np.testing.assert_array_equal(
            unpack_codes(codes, claimed), all_bits[:, :claimed]
        )
    # A code length needing another number of bytes is always an error.
    other = data.draw(
        st.one_of(st.integers(1, 8 * n_bytes - 8), st.integers(8 * n_bytes + 1, 2048))
        if n_bytes > 1
        else st.integers(9, 2048),
        label="other",
    )
    with pytest.raises(ValueError, match="bytes wide"):
        check_codes(codes, n_bits=other)


@given(bits=bit_arrays(min_rows=1), data=st.data())
def test_one_padding_bit_set_is_rejected(bits, data):
    n_bits = bits.shape[1]
    n_padding = -n_bits % 8
    codes = reference_pack(bits)
    if n_padding == 0:
        # No padding: every byte value is a valid code.
        np.testing.assert_array_equal(check_codes(codes, n_bits=n_bits), codes)
        return
    row = data.draw(st.integers(0, len(codes) - 1), label="row")
    bit = data.draw(st.integers(0, n_padding - 1), label="padding bit")
    codes[row, -1] |= np.uint8(1 << bit)
    with pytest.raises(ValueError, match="non-zero padding bits"):
        check_codes(codes, n_bits=n_bits)
    with pytest.raises(ValueError, match="non-zero padding bits"):
        unpack_codes(codes, n_bits)


@given(
    bits=bit_arrays(min_rows=1),
    bad=st.sampled_from([2, -1, 0.5, 255, np.nan]),
    data=st.data(),
)
def test_pack_rejects_values_other_than_zero_and_one(bits, bad, data):
    bits = bits.astype(np.float64)
    row = data.draw(st.integers(0, len(bits) - 1), label="row")
    column = data.draw(st.integers(0, bits.shape[1] - 1), label="column")
    bits[row, column] = bad
    with pytest.raises(ValueError, match="only 0 and 1"):
        pack_codes(bits)


@given(
    n_bits=N_BITS,
    same=st.booleans(),
    block=st.one_of(st.none(), st.integers(1, 200)),
    data=st.data(),
)
def test_hamming_distances_match_the_reference(n_bits, same, block, data):
    A_bits = data.draw(bit_arrays(n_bits, max_rows=40), label="A bits")
    B_bits = A_bits if same else data.draw(bit_arrays(n_bits, max_rows=40), label="B")
    # A tiny budget (``block`` words) forces hamming_distances to slice both
    # axes.
    memory = skhash.utils._memory
    budget = memory.WORKING_MEMORY if block is None else 8 * block
    with mock.patch.object(memory, "WORKING_MEMORY", budget):
        got = (
            hamming_distances(pack_codes(A_bits))
            if same
            else hamming_distances(pack_codes(A_bits), pack_codes(B_bits))
        )
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, reference_distances(A_bits, B_bits))


@given(A_bits=bit_arrays(), B_bits=bit_arrays())
def test_hamming_distances_of_different_widths_is_an_error(A_bits, B_bits):
    A, B = reference_pack(A_bits), reference_pack(B_bits)
    if A.shape[1] == B.shape[1]:
        assert hamming_distances(A, B).shape == (len(A), len(B))
    else:
        with pytest.raises(ValueError, match="same code width"):
            hamming_distances(A, B)
