import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skhash import GreedyHashHasher  # noqa: E402
from skhash.deep._pointwise import GreedyHashLoss  # noqa: E402
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


def _loss():
    loss = GreedyHashLoss(n_bits=2, n_labels=2, alpha=0.1)
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.5]]))
    return loss


def test_greedy_hash_loss_and_its_straight_through_gradient_by_hand():
    h = torch.tensor([[0.5, -2.0]], requires_grad=True)
    value = _loss()(h, torch.tensor([[1.0, 0.0]]))
    # b = sign(h) = [1, -1]; logits W b = [1 + 1, 0.5 - 0.5] = [2, 0];
    # cross-entropy log(e^2 + 1) - 2 = 2.126928 - 2 = 0.126928.
    # Penalty: mean(|0.5 - 1|^3, |2 - 1|^3) = (0.125 + 1) / 2 = 0.5625.
    assert value.item() == pytest.approx(0.126928 + 0.1 * 0.5625, abs=1e-6)
    value.backward()
    # Through the sign unchanged: W^T (softmax - y) = W^T [-0.119203, 0.119203]
    # = [-0.119203 + 0.059601, 0.119203 + 0.059601] = [-0.059601, 0.178804].
    # Penalty: 0.1 * 3 (|h| - 1)^2 sign(|h| - 1) sign(h) / 2 = [-0.0375, -0.15].
    expected = [-0.059601 - 0.0375, 0.178804 - 0.15]
    np.testing.assert_allclose(h.grad.numpy()[0], expected, atol=2e-6)


def test_several_labels_share_the_softmax_target():
    h = torch.tensor([[0.5, -2.0]])
    value = _loss()(h, torch.tensor([[1.0, 1.0]]))
    # Logits [2, 0]: log-softmax [-0.126928, -2.126928]; target [1/2, 1/2] gives
    # (0.126928 + 2.126928) / 2 = 1.126928, plus the penalty 0.1 * 0.5625.
    assert value.item() == pytest.approx(1.126928 + 0.05625, abs=1e-6)


def test_the_log_prior_shifts_the_logits():
    loss = GreedyHashLoss(
        n_bits=2, n_labels=2, alpha=0.1, log_prior=np.log([0.25, 0.75])
    )
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.5]]))
    h = torch.tensor([[0.5, -2.0]], requires_grad=True)
    value = loss(h, torch.tensor([[1.0, 0.0]]))
    # Logits [2, 0] + [log 0.25, log 0.75] = [0.613706, -0.287682]; the
    # cross-entropy log(1 + exp(-0.901388)) = 0.340753, plus the penalty.
    assert value.item() == pytest.approx(0.340753 + 0.1 * 0.5625, abs=1e-6)
    value.backward()
    # softmax - y = [-0.288765, 0.288765]; W^T of it = [-0.144383, 0.433148],
    # plus the penalty's [-0.0375, -0.15] (as above).
    expected = [-0.144383 - 0.0375, 0.433148 - 0.15]
    np.testing.assert_allclose(h.grad.numpy()[0], expected, atol=2e-6)


@pytest.mark.parametrize("logit_adjustment", [True, False])
def test_untrained_classifier_predicts_the_label_prior(digits, logit_adjustment):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y < 8]).astype(int)
    hasher = GreedyHashHasher(16, logit_adjustment=logit_adjustment, random_state=0)
    hasher.set_params(**{**FAST, "max_epochs": 1}).fit(X, Y)
    log_prior = hasher.net_.criterion_.log_prior
    # With zero weights the logits are the offsets: the softmax is the mean
    # softmax target (labels divided by their number), or uniform without.
    prior = (Y / Y.sum(axis=1, keepdims=True)).mean(axis=0)
    if not logit_adjustment:
        prior = np.full(11, 1 / 11)
    np.testing.assert_allclose(torch.softmax(log_prior, 0).numpy(), prior, rtol=1e-5)


def test_learns_single_and_multi_label(digits):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    random_codes = np.random.RandomState(0).randint(0, 256, (600, 2), dtype=np.uint8)
    for labels in (y, Y):
        hasher = GreedyHashHasher(16, random_state=0, **FAST).fit(X, labels)
        trained = mean_average_precision(hasher.transform(X), None, labels)
        # Measured after 5 epochs: 0.651 (single-label), 0.750 (multi-label);
        # random codes 0.108 and 0.304.
        assert trained > mean_average_precision(random_codes, None, labels) + 0.1


def test_same_seed_same_codes_pickling_and_the_callers_seed(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 2}
    a = GreedyHashHasher(16, random_state=3, **params).fit(X, y)
    b = GreedyHashHasher(16, random_state=3, **params).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    # Loading rebuilds the loss and its classifier without drawing from the
    # caller's generator.
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    restored = pickle.loads(pickle.dumps(a))
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(restored.transform(X), a.transform(X))
