import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skhash import DPNHasher  # noqa: E402
from skhash.deep._pointwise import PolarizationLoss  # noqa: E402
from skhash.metrics import mean_average_precision  # noqa: E402

FAST = {
    "max_epochs": 5,
    "batch_size": 32,
    "hidden_layer_sizes": (256,),
    "device": "cpu",
}
CODEBOOK = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:600], y[:600]


def test_polarization_loss_by_hand():
    v = torch.tensor([[0.5, -2.0, 0.0], [2.0, 0.5, -1.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Sample 0, code [1, -1, 1]: v t = [0.5, 2, 0], max(0, 1 - v t) = [0.5, 0, 1]: 1.5.
    # Sample 1, code [-1, -1, 1]: v t = [-2, -0.5, -1] -> [3, 1.5, 2]: 6.5.
    loss = PolarizationLoss(CODEBOOK, margin=1.0)
    assert loss(v, labels).item() == pytest.approx((1.5 + 6.5) / 2)


def test_several_labels_add_their_hinges():
    v = torch.tensor([[0.5, -2.0, 0.0]])
    # Code 0: 1.5 as above; code 1: v t = [-0.5, 2, 0] -> [1.5, 0, 1]: 2.5.
    loss = PolarizationLoss(CODEBOOK, margin=1.0)
    assert loss(v, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(4.0)
    # A margin of 0 asks only for the right side of zero: sample 0 has v_2 = 0
    # and one bit on the wrong side of code 1 (v_0 t_0 = -0.5).
    zero = PolarizationLoss(CODEBOOK, margin=0.0)
    assert zero(v, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(0.5)


def test_weighted_hinges_by_hand():
    v = torch.tensor([[0.5, -2.0, 0.0]])
    weights = np.array([[2.0, 3.0, 0.5], [0.5, 0.25, 4.0]])  # of +1, then of -1
    # Code 0 [1, -1, 1]: hinges [0.5, 0, 1] weighted by [2, 0.25, 0.5]: 1.5.
    # Code 1 [-1, -1, 1]: hinges [1.5, 0, 1] weighted by [0.5, 0.25, 0.5]: 1.25.
    loss = PolarizationLoss(CODEBOOK, margin=1.0, bit_weights=weights)
    assert loss(v, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(2.75)


@pytest.mark.parametrize("bit_weight", ["balanced", None])
def test_both_sides_of_every_bit_pull_alike(digits, bit_weight):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    hasher = DPNHasher(16, bit_weight=bit_weight, random_state=0, **FAST)
    hasher.set_params(max_epochs=1).fit(X, Y)
    weights = hasher.net_.criterion_.weights.numpy()  # of each label and bit
    if bit_weight is None:
        np.testing.assert_array_equal(weights, 1)
        return
    # Every label of every sample pulls each bit towards its code: over the
    # training set the pulls towards +1 and towards -1 weigh the same, half
    # of all label occurrences, on every bit where both occur.
    pulls = Y.sum(axis=0)[:, None] * weights
    codebook = hasher.codebook_
    both = (codebook > 0).any(axis=0) & (codebook < 0).any(axis=0)
    for value in (1, -1):
        weight = (pulls * (codebook == value)).sum(axis=0)
        np.testing.assert_allclose(weight[both], Y.sum() / 2, rtol=1e-5)


def test_learns_single_and_multi_label_and_polarizes(digits):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    random_codes = np.random.RandomState(0).randint(0, 256, (600, 2), dtype=np.uint8)
    for labels in (Y, y):
        hasher = DPNHasher(16, random_state=0, **FAST).fit(X, labels)
        trained = mean_average_precision(hasher.transform(X), None, labels)
        assert trained > mean_average_precision(random_codes, None, labels) + 0.1
    # The last fit is on the class labels; digits start 0, 1, ..., 9, so class
    # c has the codebook's row c.
    outputs = hasher.net_.forward(X.astype(np.float32)).numpy()
    # Measured after 5 epochs: 0.86 of the output bits on their class code's
    # side of zero and 0.47 beyond the margin; untrained, 0.49 and none.
    assert (np.sign(outputs) == hasher.codebook_[y]).mean() > 0.75
    assert (np.abs(outputs) >= 1).mean() > 0.3
    assert set(np.unique(hasher.codebook_)) == {-1.0, 1.0}


def test_same_seed_same_codes_and_pickling(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 2}
    a = DPNHasher(16, random_state=3, **params).fit(X, y)
    b = DPNHasher(16, random_state=3, **params).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), a.transform(X))
