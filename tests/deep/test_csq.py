import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skhash import CSQHasher  # noqa: E402
from skhash.deep._centres import balanced_bit_weights  # noqa: E402
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


def test_weighted_central_similarity_loss_by_hand():
    z = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    centres = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    weights = np.array([[2.0, 0.5], [0.25, 4.0]])  # of +1, then of -1, per bit
    # The cross-entropies above, each weighted by its bit's weight of its
    # centre's value: 2 * 0.313262 + 4 * 0.126928 + 0.25 * 0.693147
    # + 0.5 * 0.018150 = 1.316599, mean over the four terms.
    loss = CentralSimilarityLoss(quantization=0.0, bit_weights=weights)
    assert loss(z, centres).item() == pytest.approx(1.316599 / 4, abs=2e-6)


def test_central_similarity_loss_is_finite_when_tanh_saturates():
    z = torch.tensor([[40.0, -40.0]], requires_grad=True)
    loss = CentralSimilarityLoss(quantization=0.0)(z, torch.tensor([[-1.0, 1.0]]))
    loss.backward()
    # Both bits wrong by 2 * 40 in logits: the cross-entropy is 80 per bit.
    assert loss.item() == pytest.approx(80.0) and torch.isfinite(z.grad).all()


def test_multi_label_centre_is_the_binarised_centroid():
    centres = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1]], dtype=float)
    labels = np.array(
        [[0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=float
    )
    got = sample_centres(labels, centres, np.random.RandomState(0))
    assert set(np.unique(got)) == {-1.0, 1.0}
    # [0,1,0]: its own centre. [1,1,1]: sum [3, 1, 1, -1], no tie.
    np.testing.assert_array_equal(got[0], [1, -1, 1, -1])
    np.testing.assert_array_equal(got[2], [1, 1, 1, -1])
    # [1,1,0]: sum [2, 0, 2, 0], bits 1 and 3 tied, drawn once for the set.
    np.testing.assert_array_equal(got[1, [0, 2]], [1, 1])
    np.testing.assert_array_equal(got[1], got[4])
    # No label: all bits tied, one code for all such samples.
    np.testing.assert_array_equal(got[3], got[5])


def test_tied_bits_are_drawn_for_each_label_set():
    # Label 0's centre is +1 everywhere, the others -1 everywhere: the sets
    # {0, k} tie on all 32 bits, so their centres are their random codes. One
    # code for all (the authors') would make them equal; drawn per set, two
    # of the eleven agree with probability below 55 / 2 ** 32.
    centres = np.vstack([np.ones(32), -np.ones((11, 32))])
    labels = np.zeros((22, 12))
    labels[:, 0] = 1
    labels[np.arange(22), 1 + np.arange(22) % 11] = 1
    got = sample_centres(labels, centres, np.random.RandomState(0))
    assert len(np.unique(got, axis=0)) == 11
    np.testing.assert_array_equal(got[:11], got[11:])  # the same sets again


@pytest.mark.parametrize("bit_weight", ["balanced", None])
def test_the_loss_gets_the_balanced_bit_weights(digits, bit_weight):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    hasher = CSQHasher(16, bit_weight=bit_weight, random_state=0, **FAST)
    hasher.set_params(max_epochs=1).fit(X, Y)
    weights = hasher.net_.criterion_.bit_weights
    if bit_weight is None:
        assert weights is None
        return
    targets = hasher._targets(X, Y)  # the same draws again: the same centres
    np.testing.assert_allclose(weights.numpy(), balanced_bit_weights(targets))
    # Both values of every bit weigh half of the samples (a bit with one
    # value only would keep weight 1).
    per_term = np.where(targets > 0, weights[0].numpy(), weights[1].numpy())
    for value in (1, -1):
        weight = (per_term * (targets == value)).sum(axis=0)
        np.testing.assert_allclose(weight, len(X) / 2, rtol=1e-5)


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
    # training codes end within 2 bits of their class's centre (measured: 0.70
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
