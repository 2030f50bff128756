"""A self-supervised contrastive term beside a supervised hashing loss.

Training also encodes two randomly shifted views of each image and asks each
view's output to be nearer its partner than the batch's views of images with
other labels (SimCLR's NT-Xent, the labels' false negatives removed). Features
that tell apart images, not only classes, are what codes need for classes the
labels never named; images that share a label are left to the supervised loss,
which the term would otherwise fight.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._modules import HashNetwork


def random_shifts(images, max_shift):
    """Each image of an ``(n, C, H, W)`` batch moved by its own random whole
    number of pixels, from ``-max_shift`` to ``max_shift`` along each axis;
    the uncovered border is zero."""
    n, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), device=device)
    rows = torch.arange(height, device=device) + offsets[0][:, None]
    columns = torch.arange(width, device=device) + offsets[1][:, None]
    return padded[
        torch.arange(n, device=device)[:, None, None, None],
        torch.arange(channels, device=device)[None, :, None, None],
        rows[:, None, :, None],
        columns[:, None, None, :],
    ]


def contrastive_loss(first, second, temperature, labels=None):
    """NT-Xent: the cross-entropy of picking, for each of the ``2n`` views,
    its partner among the ``2n - 1`` others by cosine similarity divided by
    ``temperature``. With ``labels`` (an ``(n, n_labels)`` indicator matrix),
    the views of other images that share a label with it are not among the
    candidates: they are no negatives."""
    views = F.normalize(torch.cat([first, second]), dim=1)
    similarity = views @ views.T / temperature
    n = len(first)
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(views.device)
    excluded = torch.eye(2 * n, dtype=torch.bool, device=views.device)
    if labels is not None:
        labels = torch.cat([labels, labels]).float()
        excluded |= labels @ labels.T > 0
        excluded[torch.arange(2 * n, device=views.device), partners] = False
    similarity = similarity.masked_fill(excluded, float("-inf"))
    return F.cross_entropy(similarity, partners)


class ShiftedViewsNetwork(HashNetwork):
    """A hash network that, in training, also encodes two randomly shifted
    views of its batch: it returns ``(outputs, view, view)`` then, and the
    outputs alone in evaluation (encoding is unchanged)."""

    def __init__(self, backbone, head, input_shape, max_shift):
        super().__init__(backbone, head, input_shape)
        self.max_shift = max_shift

    def forward(self, x):
        outputs = super().forward(x)
        if not self.training:
            return outputs
        images = x.view(len(x), *self.input_shape)
        first = super().forward(random_shifts(images, self.max_shift))
        second = super().forward(random_shifts(images, self.max_shift))
        return outputs, first, second


class WithContrastive(nn.Module):
    """``loss(outputs, labels) + weight * NT-Xent(view, view, labels)`` on
    what a :class:`ShiftedViewsNetwork` returns in training; ``labels`` is the
    label indicator matrix."""

    def __init__(self, loss, weight, temperature):
        super().__init__()
        self.loss, self.weight, self.temperature = loss, weight, temperature

    def forward(self, outputs, labels):
        outputs, first, second = outputs
        return self.loss(outputs, labels) + self.weight * contrastive_loss(
            first, second, self.temperature, labels
        )
