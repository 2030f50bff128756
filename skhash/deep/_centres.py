"""One binary target code per class: the hash centres and codebooks of the
pointwise deep hashers (CSQ, OrthoHash, DPN), and weights that balance the two
values of each target bit. NumPy only, so the hashers can import it without
torch.
"""

import numpy as np

# Sets of centres drawn: of the balanced random ones (no Hadamard construction
# fits), the one whose closest pair is farthest apart is kept; of the signed
# Hadamard rows, the one with the most informative, then most balanced, bits.
_N_DRAWS = 20


def class_codes(n_classes, n_bits, method, random_state):
    """``(n_classes, n_bits)`` codes in {-1, +1}, one row per class.

    ``"hadamard"`` (CSQ's hash centres): with ``n_bits`` a power of two,
    rows of the Hadamard matrix ``H`` (pairwise distance ``n_bits / 2``), then
    negations of some of them when more classes need them (distance
    ``n_bits`` to their twin; see :func:`_hadamard_centres`); with more than
    ``2 * n_bits`` classes, or ``n_bits`` not a power of two, balanced random
    codes (``n_bits / 2`` bits of each sign, the authors' Bernoulli centres),
    the best of a few draws by minimum distance.
    ``"bernoulli"``: every bit an independent fair coin (OrthoHash's default
    codebook; DPN's sign of a Gaussian is the same distribution).
    """
    if method == "bernoulli":
        return np.where(random_state.rand(n_classes, n_bits) < 0.5, -1.0, 1.0)
    is_power_of_two = n_bits & (n_bits - 1) == 0
    if is_power_of_two and n_classes <= 2 * n_bits:
        return _hadamard_centres(n_classes, n_bits, random_state)
    return _balanced_codes(n_classes, n_bits, random_state)


def _sylvester_rows(rows, n_bits):
    """Rows ``rows`` of Sylvester's Hadamard matrix of order ``n_bits``
    (scipy's ``hadamard``): ``H[i, j] = (-1) ** popcount(i & j)``, as int8.
    Only the rows needed are built (``H`` is 16 MiB of int8 at 4096 bits)."""
    index = np.uint16 if n_bits <= 2**16 else np.uint32  # small: m x n of them
    columns = np.arange(n_bits, dtype=index)
    parity = np.bitwise_count(np.asarray(rows, index)[:, None] & columns) % 2
    return 1 - 2 * parity.astype(np.int8)


def _n_informative_bits(codes):
    """Columns that tell some classes apart, a column and its negation (the
    same partition of the classes) counted once."""
    varying = codes[:, (codes != codes[:1]).any(axis=0)]
    # Each column as one opaque record of bytes: much faster to sort than
    # np.unique(axis=1), which compares records field by field.
    columns = np.ascontiguousarray((varying * varying[:1]).T, dtype=np.int8)
    return len(np.unique(columns.view(f"V{len(codes)}")))


def _balance(codes):
    """Sum over the columns of the entropy (bits) of their share of +1."""
    share = (codes > 0).mean(axis=0)
    share = share[(share > 0) & (share < 1)]
    return -(share * np.log2(share) + (1 - share) * np.log2(1 - share)).sum()


def _hadamard_centres(n_classes, n_bits, random_state):
    """Rows of Sylvester's ``H``, each negated at random (``D H`` with ``D`` a
    random diagonal of signs is a Hadamard matrix too: rows still
    ``n_bits / 2`` apart); beyond ``n_bits`` classes, the negations of
    randomly chosen ones (``n_bits`` from their twin, ``n_bits / 2`` from
    the rest).

    Sylvester's first row and first column are all +1. The authors take the
    first ``n_classes`` rows unsigned, so their first bit is +1 in every
    centre: a constant bit, in every code the network learns; and with
    ``n_classes <= n_bits / 2`` the first rows repeat their columns, so 32-bit
    centres of 10 classes are two copies of the 16-bit ones. Here rows are
    drawn at random, the all-+1 row only when every row is needed, and the
    random signs make column 0 vary. Signs unbalance the columns, though: the
    sum of their squared sums is ``n_classes * n_bits`` whatever the signs
    (the rows are orthogonal), all of it in column 0 without signs. Of a few
    draws the one with the most informative bits (:func:`_n_informative_bits`:
    no constant or repeated column wherever that is possible), then the most
    balanced columns, is kept.
    """
    n_rows = min(n_classes, n_bits)
    pool = np.arange(n_bits) if n_classes >= n_bits else np.arange(1, n_bits)
    # At most 2 ** (n_classes - 1) - 1 partitions of the classes in two, and
    # at most one bit of entropy per column.
    perfect = (min(n_bits, 2 ** (n_classes - 1) - 1), float(n_bits))
    best, best_score = None, None
    for _ in range(_N_DRAWS):
        rows = random_state.permutation(pool)[:n_rows]
        signs = np.where(random_state.rand(n_rows) < 0.5, -1, 1).astype(np.int8)
        codes = _sylvester_rows(rows, n_bits) * signs[:, None]
        twins = random_state.permutation(n_bits)[: n_classes - n_rows]
        codes = np.vstack([codes, -codes[twins]])
        score = (_n_informative_bits(codes), _balance(codes))
        if best_score is None or score > best_score:
            best, best_score = codes, score
        if best_score == perfect:
            break
    return best.astype(float)


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


def balanced_bit_weights(codes, counts=None):
    """Weights of the values +1 and -1 of each bit of target ``codes``, each
    row counted ``counts`` times (default once): ``total / (2 * count)``, as
    scikit-learn's ``class_weight="balanced"`` for each bit taken as a
    two-class problem, so that both values weigh half of the total and the
    mean weight is 1. A bit with one value only keeps weight 1. Returns shape
    ``(2, n_bits)``: the weights of +1, then of -1.
    """
    counts = np.ones(len(codes)) if counts is None else np.asarray(counts, float)
    total = counts.sum()
    positive = counts @ (np.asarray(codes) > 0)
    occurrences = np.stack([positive, total - positive])
    weights = np.ones_like(occurrences)
    both = (occurrences > 0).all(axis=0)
    np.divide(total, 2 * occurrences, out=weights, where=both)
    return weights
