"""Losses of the pointwise deep hashers (CSQ, OrthoHash, GreedyHash, DPN).

Each sample is pulled towards a code of its own labels, so no pairs or
triplets are formed. The losses take the network outputs and, like those of
:mod:`skhash.deep._losses`, a float label matrix (CSQ: each sample's hash
centre). Imported only when such a hasher is fitted (it imports torch).
"""

import torch
import torch.nn.functional as F
from torch import nn


def _value_weights(codes, weights):
    """``weights[0]`` where ``codes`` is +1 and ``weights[1]`` where it is -1
    (``weights`` of shape (2, n_bits), one pair per bit); 1 for ``None``."""
    if weights is None:
        return torch.ones_like(codes)
    weights = torch.as_tensor(weights, dtype=torch.float32)
    return torch.where(torch.as_tensor(codes) > 0, weights[0], weights[1])


def _soft_cross_entropy(logits, labels):
    """Softmax cross-entropy against each row's labels divided by their
    number (one-hot for one label), averaged over rows; a row without any
    label has no target and adds nothing."""
    targets = labels / labels.sum(dim=1, keepdim=True).clamp(min=1)
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class CentralSimilarityLoss(nn.Module):
    """CSQ: binary cross-entropy of ``(h + 1) / 2`` against ``(c + 1) / 2``,
    ``h = tanh(z)`` and ``c`` the sample's hash centre, averaged over samples
    and bits, plus ``quantization`` times the mean of ``(|h| - 1) ** 2``.

    ``bit_weights`` (shape (2, n_bits), or ``None`` for 1): each term of the
    cross-entropy weighted by ``bit_weights[0, b]`` where the centre's bit
    ``b`` is +1 and ``bit_weights[1, b]`` where it is -1.
    """

    def __init__(self, quantization, bit_weights=None):
        super().__init__()
        self.quantization = quantization
        if bit_weights is not None:
            bit_weights = torch.as_tensor(bit_weights, dtype=torch.float32)
        self.register_buffer("bit_weights", bit_weights)

    def forward(self, z, centres):
        # (tanh(z) + 1) / 2 = sigmoid(2 z): the same cross-entropy, computed
        # without log(0) when tanh saturates.
        weight = None
        if self.bit_weights is not None:
            weight = _value_weights(centres, self.bit_weights)
        central = F.binary_cross_entropy_with_logits(
            2 * z, (centres + 1) / 2, weight=weight
        )
        h = torch.tanh(z)
        return central + self.quantization * ((h.abs() - 1) ** 2).mean()


class CosineMarginLoss(nn.Module):
    """OrthoHash: cross-entropy of scaled cosine logits against a codebook.

    ``logit_c = scale * (cos(v, o_c) - margin * y_c)``; the target is the
    sample's labels divided by their number (one-hot for a single label;
    label smoothing over several), plus ``quantization`` times the mean of
    ``1 - cos(v, sign(v))`` (the sign taken as a constant).
    """

    def __init__(self, codebook, scale, margin, quantization):
        super().__init__()
        codebook = torch.as_tensor(codebook, dtype=torch.float32)
        self.register_buffer("codebook", F.normalize(codebook, dim=1))
        self.scale, self.margin, self.quantization = scale, margin, quantization

    def forward(self, v, labels):
        cosine = F.normalize(v, dim=1) @ self.codebook.T
        logits = self.scale * (cosine - self.margin * labels)
        loss = _soft_cross_entropy(logits, labels)
        if self.quantization:
            sign = v.detach().sign()
            loss = (
                loss
                + self.quantization * (1 - F.cosine_similarity(v, sign, dim=1)).mean()
            )
        return loss


class _SignStraightThrough(torch.autograd.Function):
    """``sign`` forward, the identity backward (GreedyHash's hash layer)."""

    @staticmethod
    def forward(ctx, h):
        return torch.sign(h)

    @staticmethod
    def backward(ctx, grad):
        return grad


def sign_straight_through(h):
    return _SignStraightThrough.apply(h)


class GreedyHashLoss(nn.Module):
    """GreedyHash: a linear classifier without bias on ``b = sign(h)``, whose
    gradient reaches ``h`` unchanged, plus ``alpha`` times the mean of
    ``| |h| - 1 | ** 3``.

    Softmax cross-entropy against the sample's labels divided by their
    number: the usual cross-entropy for one label, OrthoHash's label
    smoothing for several. ``log_prior`` (one value per label, or ``None``
    for 0) is added to the logits, a fixed offset (logit adjustment). The
    classifier's weights are learned with the network (skorch trains the
    criterion's parameters too).
    """

    def __init__(self, n_bits, n_labels, alpha, log_prior=None):
        super().__init__()
        self.classifier = nn.Linear(n_bits, n_labels, bias=False)
        self.alpha = alpha
        if log_prior is None:
            log_prior = torch.zeros(n_labels)
        self.register_buffer(
            "log_prior", torch.as_tensor(log_prior, dtype=torch.float32)
        )

    def forward(self, h, labels):
        logits = self.classifier(sign_straight_through(h)) + self.log_prior
        fit = _soft_cross_entropy(logits, labels)
        return fit + self.alpha * ((h.abs() - 1).abs() ** 3).mean()


class PolarizationLoss(nn.Module):
    """DPN: ``sum over bits of max(0, margin - v_b t_b)`` for the target code
    ``t`` of each of the sample's labels, summed over its labels and averaged
    over samples.

    ``bit_weights`` (shape (2, n_bits), or ``None`` for 1): the hinge of bit
    ``b`` weighted by ``bit_weights[0, b]`` where the target bit is +1 and
    ``bit_weights[1, b]`` where it is -1.
    """

    def __init__(self, codebook, margin, bit_weights=None):
        super().__init__()
        codebook = torch.as_tensor(codebook, dtype=torch.float32)
        self.register_buffer("codebook", codebook)
        self.register_buffer("weights", _value_weights(codebook, bit_weights))
        self.margin = margin

    def forward(self, v, labels):
        # hinge[i, c, b] = max(0, margin - v[i, b] * codebook[c, b])
        hinge = F.relu(self.margin - v[:, None, :] * self.codebook[None])
        return ((hinge * self.weights).sum(dim=2) * labels).sum(dim=1).mean()


class CodeBatchNorm(nn.BatchNorm1d):
    """OrthoHash's batch normalisation of the codes (zero-mean bits, hence
    balanced ones), which uses its running statistics for a training batch of
    one sample, where batch statistics do not exist."""

    def forward(self, x):
        if self.training and len(x) == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                training=False, eps=self.eps,
            )  # fmt: skip
        return super().forward(x)
