"""Losses of the deep hashers, as ``nn.Module``s taking (outputs, labels).

``labels`` is a float indicator matrix (one-hot for single-label data), so two
samples of a batch are similar when their rows share a label. Pairs are the
``i < j`` pairs of the batch; triplets are every (anchor, positive, negative)
of the batch.
"""

import torch
import torch.nn.functional as F
from torch import nn


def batch_similarity(labels):
    """(batch, batch) bool: rows share at least one label."""
    return (labels @ labels.T) > 0


def squared_distances(x):
    """(batch, batch) squared Euclidean distances, with exact zeros on the
    diagonal and finite gradients everywhere (unlike ``cdist(x, x) ** 2``)."""
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(dim=2)


def _upper_pairs(matrix):
    rows, cols = torch.triu_indices(len(matrix), len(matrix), offset=1)
    return matrix[rows, cols]


class WeightedPairwiseCrossEntropy(nn.Module):
    """HashNet's loss on ``h = tanh(beta * z)`` over the pairs of a batch.

    ``c_ij * (log(1 + exp(alpha <h_i, h_j>)) - alpha s_ij <h_i, h_j>)`` with
    weights ``|S| / |S_1|`` for similar and ``|S| / |S_0|`` for dissimilar pairs,
    averaged over pairs: the mean over similar pairs plus the mean over
    dissimilar ones. ``softplus`` keeps large inner products finite.
    """

    def __init__(self, alpha, beta=1.0):
        super().__init__()
        self.alpha = alpha
        self.beta = beta

    def forward(self, z, labels):
        h = torch.tanh(self.beta * z)
        inner = self.alpha * _upper_pairs(h @ h.T)
        similar = _upper_pairs(batch_similarity(labels)).float()
        losses = F.softplus(inner) - similar * inner
        total = (z * 0).sum()  # keeps the graph when a batch has no pair
        for mask in (similar, 1 - similar):
            if mask.sum() > 0:
                total = total + (losses * mask).sum() / mask.sum()
        return total


class ContrastiveHashLoss(nn.Module):
    """DSH's loss: pairwise contrastive term plus the |(|b| - 1)| regulariser.

    ``1/2 s D + 1/2 (1 - s) max(margin - D, 0)`` with ``D = ||b_i - b_j||^2``
    over the pairs of the batch, plus ``alpha`` times the mean over samples of
    ``|| |b| - 1 ||_1``. The pair terms are averaged according to
    ``pair_weights``: ``"uniform"``, over all pairs (the paper);
    ``"balanced"``, over the similar and the dissimilar pairs separately, then
    the mean of the two (HashNet's weights ``|S| / |S_1|`` and
    ``|S| / |S_0|``, halved to keep the scale); ``"auto"``, uniform unless
    similar pairs are the majority of the batch, then balanced (the two agree
    when both kinds are equally many).
    """

    def __init__(self, margin, alpha, pair_weights="uniform"):
        super().__init__()
        self.margin = margin
        self.alpha = alpha
        self.pair_weights = pair_weights

    def forward(self, b, labels):
        distances = _upper_pairs(squared_distances(b))
        similar = _upper_pairs(batch_similarity(labels)).float()
        terms = 0.5 * similar * distances + 0.5 * (1 - similar) * torch.clamp(
            self.margin - distances, min=0
        )
        regulariser = (b.abs() - 1).abs().sum(dim=1).mean()
        balanced = self.pair_weights == "balanced" or (
            self.pair_weights == "auto" and 2 * similar.sum() > len(similar)
        )
        if balanced:
            kinds = [mask for mask in (similar, 1 - similar) if mask.sum() > 0]
            pair_term = sum((terms * mask).sum() / mask.sum() for mask in kinds)
            pair_term = pair_term / len(kinds)
        else:
            pair_term = terms.mean() if len(terms) else (b * 0).sum()
        return pair_term + self.alpha * regulariser


def piecewise_threshold(s, epsilon):
    """DNNH's g(s): 0 below 0.5 - eps, 1 above 0.5 + eps, s in between."""
    return torch.where(
        s < 0.5 - epsilon,
        torch.zeros_like(s),
        torch.where(s > 0.5 + epsilon, torch.ones_like(s), s),
    )


class TripletRankingLoss(nn.Module):
    """DNNH's triplet ranking loss on thresholded sigmoid outputs.

    ``max(0, ||F - F+||^2 - ||F - F-||^2 + margin)`` averaged over every
    triplet of the batch (anchor i, positive j != i similar to i, negative k
    dissimilar to i), with ``F = g(s)`` the piece-wise threshold of the
    sigmoid outputs ``s`` at the current ``epsilon``.
    """

    def __init__(self, margin, epsilon):
        super().__init__()
        self.margin = margin
        self.epsilon = epsilon

    def forward(self, s, labels):
        codes = piecewise_threshold(s, self.epsilon)
        squared = squared_distances(codes)
        similar = batch_similarity(labels)
        positive = similar & ~torch.eye(len(s), dtype=torch.bool, device=s.device)
        negative = ~similar
        # violation[i, j, k] = d(i, j) - d(i, k) + margin
        violation = squared[:, :, None] - squared[:, None, :] + self.margin
        valid = positive[:, :, None] & negative[:, None, :]
        if not valid.any():
            return (s * 0).sum()
        return torch.clamp(violation[valid], min=0).mean()
