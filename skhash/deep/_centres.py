"""One binary target code per class: the hash centres and codebooks of the
pointwise deep hashers (CSQ, OrthoHash, DPN). NumPy only, so the hashers can
import it without torch.
"""

import numpy as np

# Sets of balanced random centres drawn when no Hadamard construction fits;
# the one whose closest pair is farthest apart is kept.
_N_DRAWS = 20


def class_codes(n_classes, n_bits, method, random_state):
    """``(n_classes, n_bits)`` codes in {-1, +1}, one row per class.

    ``"hadamard"`` (CSQ's hash centres): with ``n_bits`` a power of two, the
    rows of the Hadamard matrix ``H`` (pairwise distance ``n_bits / 2``), then
    those of ``-H`` when more classes need them (the authors' tutorial); with
    more than ``2 * n_bits`` classes, or ``n_bits`` not a power of two,
    balanced random codes (``n_bits / 2`` bits of each sign, the authors'
    Bernoulli centres), the best of a few draws by minimum distance.
    ``"bernoulli"``: every bit an independent fair coin (OrthoHash's default
    codebook; DPN's sign of a Gaussian is the same distribution).
    """
    if method == "bernoulli":
        return np.where(random_state.rand(n_classes, n_bits) < 0.5, -1.0, 1.0)
    is_power_of_two = n_bits & (n_bits - 1) == 0
    if is_power_of_two and n_classes <= 2 * n_bits:
        return _hadamard_rows(n_classes, n_bits)
    return _balanced_codes(n_classes, n_bits, random_state)


def _hadamard_rows(n_rows, n_bits):
    """The first ``n_rows`` rows of ``[H; -H]``, ``H`` Sylvester's Hadamard
    matrix of order ``n_bits`` (scipy's): ``H[i, j] = (-1) ** popcount(i & j)``.
    Only the rows needed are built (``H`` itself is 128 MiB at 4096 bits)."""
    rows = np.arange(n_rows)[:, None]
    parity = np.bitwise_count((rows % n_bits) & np.arange(n_bits)) % 2
    codes = 1.0 - 2.0 * parity
    codes[n_bits:] *= -1
    return codes


def _balanced_codes(n_classes, n_bits, random_state):
    best, best_distance = None, -1
    for _ in range(_N_DRAWS):
        codes = np.ones((n_classes, n_bits))
        for row in codes:
            row[random_state.permutation(n_bits)[: n_bits // 2]] = -1
        inner = codes @ codes.T
        np.fill_diagonal(inner, -n_bits)  # a row is not its own neighbour
        closest = (n_bits - inner.max()) / 2 if n_classes > 1 else n_bits
        if closest > best_distance:
            best, best_distance = codes, closest
    return best
