"""Packed binary codes: the one representation every part of skhash exchanges.

A code of ``n_bits`` bits is stored as ``ceil(n_bits / 8)`` bytes (``uint8``) in
NumPy's :func:`numpy.packbits` default order: bit ``j`` of a code is bit
``7 - j % 8`` (most significant first) of byte ``j // 8``. The unused low-order
bits of the last byte are always zero, so the Hamming distance between two packed
codes is exactly the number of differing bytes' set bits, whatever ``n_bits`` is.
Distances are integer bit counts, never fractions.
"""

import numpy as np

from .utils._memory import rows_within
from .utils._param_validation import check_count

__all__ = ["check_codes", "hamming_distances", "pack_codes", "unpack_codes"]


def n_bytes_for(n_bits):
    """Number of bytes that hold a code of ``n_bits`` bits."""
    return (n_bits + 7) // 8


def pack_codes(bits):
    """Pack an array of bits into codes.

    Parameters
    ----------
    bits : array-like of shape (n_samples, n_bits)
        Bits as booleans or as integers/floats equal to 0 or 1.

    Returns
    -------
    codes : ndarray of shape (n_samples, ceil(n_bits / 8)), dtype uint8
        Packed codes, most significant bit first, padding bits zero.

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> pack_codes([[1, 0, 1, 1, 0, 0, 0, 0, 1]])
    array([[176, 128]], dtype=uint8)
    """
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(
            f"bits must be a 2-D array of shape (n_samples, n_bits), got {bits.ndim}-D."
        )
    if bits.shape[1] == 0:
        raise ValueError("bits must have at least one column (n_bits >= 1).")
    if bits.dtype != bool:
        if not np.isin(bits, (0, 1)).all():
            raise ValueError(
                "bits must contain only 0 and 1 (or booleans); threshold real-valued "
                "projections before packing."
            )
        bits = bits.astype(bool)
    return np.packbits(bits, axis=1)


def unpack_codes(codes, n_bits):
    """Unpack codes into an array of bits.

    Parameters
    ----------
    codes : array-like of shape (n_samples, ceil(n_bits / 8)), dtype uint8
        Packed codes.
    n_bits : int
        Number of bits in each code.

    Returns
    -------
    bits : ndarray of shape (n_samples, n_bits), dtype uint8
        The bits, as 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash.codes import unpack_codes
    >>> unpack_codes(np.array([[176, 128]], dtype=np.uint8), n_bits=9)
    array([[1, 0, 1, 1, 0, 0, 0, 0, 1]], dtype=uint8)
    """
    codes = check_codes(codes, n_bits=n_bits)
    return np.unpackbits(codes, axis=1, count=n_bits)


def check_codes_dtype(dtype, name):
    """Reject a dtype other than packed codes' (also a Dask array's, before
    its values are computed), with a hint at what went wrong."""
    if dtype != np.uint8:
        hint = (
            " These look like unpacked bits: use skhash.codes.pack_codes first."
            if np.dtype(dtype) == np.dtype(bool)
            else " Use a hasher's transform() or skhash.codes.pack_codes."
        )
        raise ValueError(
            f"{name} must be packed binary codes of dtype uint8, got dtype "
            f"{dtype}.{hint}"
        )


def check_codes(codes, *, n_bits=None, name="codes"):
    """Validate packed codes and return them as a C-contiguous uint8 array.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_bytes)
        Packed codes, dtype uint8.
    n_bits : int, default=None
        If given, the codes must be ``ceil(n_bits / 8)`` bytes wide and their
        padding bits must be zero.
    name : str, default="codes"
        Name used in error messages.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_bytes), dtype uint8
    """
    codes = np.asarray(codes)
    check_codes_dtype(codes.dtype, name)
    if codes.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_bytes), "
            f"got {codes.ndim}-D."
        )
    if codes.shape[1] == 0:
        raise ValueError(f"{name} must have at least one byte per code.")
    if n_bits is not None:
        n_bits = check_count(n_bits, "n_bits")
        if codes.shape[1] != n_bytes_for(n_bits):
            raise ValueError(
                f"{name} with n_bits={n_bits} must be {n_bytes_for(n_bits)} bytes "
                f"wide, got {codes.shape[1]}."
            )
        n_padding = 8 * codes.shape[1] - n_bits
        if n_padding and np.any(codes[:, -1] & np.uint8((1 << n_padding) - 1)):
            raise ValueError(
                f"{name} have non-zero padding bits for n_bits={n_bits}; the last "
                f"{n_padding} bit(s) of every code must be zero."
            )
    return np.ascontiguousarray(codes)


def as_words(codes):
    """View packed codes as rows of uint64 words, zero-padding the bytes.

    Popcounts over 64-bit words are about eight times fewer operations than over
    bytes; the zero padding leaves Hamming distances unchanged.
    """
    n_samples, n_bytes = codes.shape
    n_words = -(-n_bytes // 8)
    if n_bytes != 8 * n_words:
        padded = np.zeros((n_samples, 8 * n_words), dtype=np.uint8)
        padded[:, :n_bytes] = codes
        codes = padded
    return np.ascontiguousarray(codes).view(np.uint64)


def hamming_distances(A, B=None):
    """Hamming distances between two sets of packed codes.

    The work is done in slices so that temporary memory stays within the
    working memory (64 MiB) whatever the sizes of ``A`` and ``B``; only the
    result itself is ``len(A) x len(B)``.

    Parameters
    ----------
    A : array-like of shape (n_samples_A, n_bytes), dtype uint8
        Packed codes.
    B : array-like of shape (n_samples_B, n_bytes), dtype uint8, default=None
        Packed codes of the same width. ``None`` means ``A``.

    Returns
    -------
    distances : ndarray of shape (n_samples_A, n_samples_B), dtype int32
        Number of differing bits.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash.codes import hamming_distances
    >>> A = np.array([[0b11110000]], dtype=np.uint8)
    >>> B = np.array([[0b11110000], [0b00001111], [0b01110000]], dtype=np.uint8)
    >>> hamming_distances(A, B)
    array([[0, 8, 1]], dtype=int32)
    """
    A = check_codes(A, name="A")
    B = A if B is None else check_codes(B, name="B")
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"A and B must have the same code width, got {A.shape[1]} and "
            f"{B.shape[1]} bytes."
        )
    return distances_from_words(as_words(A), as_words(B))


def distances_from_words(words_A, words_B):
    """Hamming distances between codes already viewed as words (see `as_words`).

    Callers that search the same database many times convert it once.
    """
    out = np.empty((len(words_A), len(words_B)), dtype=np.int32)
    n_words = words_A.shape[1]
    # The XOR block of words takes the working memory; the output does not.
    cols = max(1, min(len(words_B), rows_within(8 * n_words)))
    rows = rows_within(8 * n_words * cols)
    for i in range(0, len(words_A), rows):
        for j in range(0, len(words_B), cols):
            block = words_A[i : i + rows, None, :] ^ words_B[None, j : j + cols, :]
            out[i : i + rows, j : j + cols] = np.bitwise_count(block).sum(
                axis=2, dtype=np.int32
            )
    return out
