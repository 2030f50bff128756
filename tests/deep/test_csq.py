import pickle

import numpy as np
import pytest
from scipy.linalg import hadamard
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skhash import CSQHasher  # noqa: E402
from skhash.deep._centres import class_codes  # noqa: E402
from skhash.deep._csq import sample_centres  # noqa: E402
from skhash.deep._pointwise import CentralSimilarityLoss  # noqa: E402
from skhash.metrics import mean_average_precision  # noqa: E402

FAST = {
    "max_epochs": 5,
    "batch_size": 32,
    "hidden_layer_sizes": (256,),
    "device": "cpu",
}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:600], y[:600]


def test_central_similarity_loss_by_hand():
    z = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    centres = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    # h = tanh(z) = [[0.462117, -0.761594], [0, 0.964028]];
    # p = (h + 1) / 2 = [[0.731059, 0.119203], [0.5, 0.982014]];
    # targets (c + 1) / 2 = [[1, 0], [0, 1]].
    # Cross-entropies: -log 0.731059 = 0.313262, -log 0.880797 = 0.126928,
    # -log 0.5 = 0.693147, -log 0.982014 = 0.018150; mean 1.151487 / 4 = 0.287872.
    # (|h| - 1)^2: 0.289318, 0.056837, 1, 0.001294; mean 1.347449 / 4 = 0.336862.
    expected = 0.287872 + 0.1 * 0.336862
    loss = CentralSimilarityLoss(quantization=0.1)(z, centres)
    assert loss.item() == pytest.approx(expected, abs=2e-6)


def test_central_similarity_loss_is_finite_when_tanh_saturates():
    z = torch.tensor([[40.0, -40.0]], requires_grad=True)
    loss = CentralSimilarityLoss(quantization=0.0)(z, torch.tensor([[-1.0, 1.0]]))
    loss.backward()
    # Both bits wrong by 2 * 40 in logits: the cross-entropy is 80 per bit.
    assert loss.item() == pytest.approx(80.0) and torch.isfinite(z.grad).all()


def test_hadamard_centres_then_their_negation_then_balanced_random_ones():
    rng = np.random.RandomState(0)
    ten = class_codes(10, 16, "hadamard", rng)
    distances = (16 - ten @ ten.T) / 2
    # Rows of a Hadamard matrix: every pair exactly half the bits apart.
    assert set(distances[np.triu_indices(10, 1)]) == {8.0}
    twenty = class_codes(20, 16, "hadamard", rng)
    np.testing.assert_array_equal(twenty, np.vstack([hadamard(16), -hadamard(16)])[:20])
    distances = (16 - twenty @ twenty.T) / 2
    assert set(distances[np.triu_indices(20, 1)]) == {8.0, 16.0}
    # More classes than 2 * n_bits, or n_bits not a power of two: balanced codes.
    for n_classes, n_bits in [(40, 16), (5, 12)]:
        codes = class_codes(n_classes, n_bits, "hadamard", rng)
        assert codes.shape == (n_classes, n_bits)
        np.testing.assert_array_equal(codes.sum(axis=1), 0)
        assert len(np.unique(codes, axis=0)) == n_classes


def test_multi_label_centre_is_the_binarised_centroid():
    centres = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1]], dtype=float)
    random_bits = np.array([-1.0, -1.0, 1.0, 1.0])
    labels = np.array([[0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=float)
    got = sample_centres(labels, centres, random_bits)
    # [0,1,0]: its own centre. [1,1,0]: sum [2, 0, 2, 0], the zeros from the
    # random bits. [1,1,1]: sum [3, 1, 1, -1]. No label: the random bits.
    expected = [[1, -1, 1, -1], [1, -1, 1, 1], [1, 1, 1, -1], [-1, -1, 1, 1]]
    np.testing.assert_array_equal(got, expected)


def test_learns_codes_near_the_centres_single_and_multi_label(digits):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    random_codes = np.random.RandomState(0).randint(0, 256, (600, 2), dtype=np.uint8)
    for labels in (Y, y):
        hasher = CSQHasher(16, random_state=0, **FAST).fit(X, labels)
        codes = hasher.transform(X)
        trained = mean_average_precision(codes, None, labels)
        assert trained > mean_average_precision(random_codes, None, labels) + 0.1
    # Single-label: centres from the Hadamard matrix, 8 bits apart; most
    # training codes end within 2 bits of their class's centre (measured: 0.71
    # after 5 epochs, 0.002 for random codes).
    bits = np.unpackbits(hasher.transform(X), axis=1)[:, :16] * 2 - 1.0
    # Centres follow the classes' first appearance: digits start 0, 1, ..., 9.
    own = hasher.centres_[y]
    assert ((16 - (bits * own).sum(axis=1)) / 2 <= 2).mean() > 0.6


def test_same_seed_same_codes_and_pickling(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 2}
    a = CSQHasher(16, random_state=3, **params).fit(X, y)
    b = CSQHasher(16, random_state=3, **params).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), a.transform(X))
    np.testing.assert_array_equal(restored.centres_, a.centres_)
