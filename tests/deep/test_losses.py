import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skhash.deep._losses import (  # noqa: E402
    ContrastiveHashLoss,
    TripletRankingLoss,
    WeightedPairwiseCrossEntropy,
    piecewise_threshold,
)

LABELS = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # pairs: (0,1) similar


def test_weighted_pairwise_cross_entropy_by_hand():
    z = torch.tensor([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.2]])
    alpha, beta = 0.7, 2.0
    h = np.tanh(beta * z.numpy())

    def term(i, j, s):
        inner = alpha * float(h[i] @ h[j])
        return math.log1p(math.exp(inner)) - s * inner

    # One similar pair (0,1), two dissimilar (0,2), (1,2): |S|/|S1| = 3, |S|/|S0| = 3/2,
    # averaged over the 3 pairs.
    expected = term(0, 1, 1) + (term(0, 2, 0) + term(1, 2, 0)) / 2
    loss = WeightedPairwiseCrossEntropy(alpha=alpha, beta=beta)(z, LABELS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_weighted_pairwise_cross_entropy_is_finite_for_huge_inner_products():
    z = torch.full((4, 64), 50.0, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    loss = WeightedPairwiseCrossEntropy(alpha=10.0, beta=1.0)(z, labels)
    loss.backward()
    # Dissimilar pairs: softplus(640) = 640 exactly in the linear regime.
    assert torch.isfinite(loss) and loss.item() == pytest.approx(640.0, rel=1e-6)
    assert torch.isfinite(z.grad).all()


def test_contrastive_hash_loss_by_hand():
    b = torch.tensor([[1.0, -1.0], [0.5, -1.5], [1.0, 1.0]])
    margin, alpha = 4.0, 0.1
    d01 = 0.25 + 0.25
    d02 = 0 + 4.0
    d12 = 0.25 + 6.25
    pairwise = (0.5 * d01 + 0.5 * max(margin - d02, 0) + 0.5 * max(margin - d12, 0)) / 3
    regulariser = np.mean([0.0, 0.5 + 0.5, 0.0])
    loss = ContrastiveHashLoss(margin=margin, alpha=alpha)(b, LABELS)
    assert loss.item() == pytest.approx(pairwise + alpha * regulariser, rel=1e-6)


def test_piecewise_threshold():
    s = torch.tensor([0.1, 0.44, 0.5, 0.56, 0.9])
    np.testing.assert_allclose(
        piecewise_threshold(s, 0.05).numpy(), [0.0, 0.0, 0.5, 1.0, 1.0]
    )
    np.testing.assert_allclose(piecewise_threshold(s, 0.5).numpy(), s.numpy())


def test_triplet_ranking_loss_by_hand():
    s = torch.tensor([[0.9, 0.1], [0.8, 0.3], [0.2, 0.7]])
    margin = 1.0
    F = s.numpy()  # epsilon 0.5 leaves s unchanged
    d = ((F[:, None] - F[None]) ** 2).sum(axis=2)
    # Triplets (anchor, positive, negative): (0,1,2) and (1,0,2).
    expected = np.mean(
        [max(0, d[0, 1] - d[0, 2] + margin), max(0, d[1, 0] - d[1, 2] + margin)]
    )
    loss = TripletRankingLoss(margin=margin, epsilon=0.5)(s, LABELS)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_losses_without_pairs_or_triplets_still_backpropagate():
    x = torch.rand(1, 4, requires_grad=True)
    labels = torch.tensor([[1.0]])
    for loss in [
        WeightedPairwiseCrossEntropy(alpha=1.0),
        ContrastiveHashLoss(margin=2.0, alpha=0.0),
        TripletRankingLoss(margin=1.0, epsilon=0.5),
    ]:
        value = loss(x, labels)
        value.backward()
        assert value.item() == 0.0
