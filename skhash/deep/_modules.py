"""Networks of the deep hashers: backbones and hash heads."""

import math

import torch
from torch import nn


class MLP(nn.Sequential):
    """Fully connected ReLU layers for feature vectors."""

    def __init__(self, n_features, hidden_layer_sizes):
        layers, width = [], n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        super().__init__(*layers)
        self.out_features = width


class AveragePoolTo(nn.Module):
    """``nn.AdaptiveAvgPool2d(size)``, written as two small matrix products.

    CUDA's adaptive pooling accumulates its gradient with atomic additions, in
    no fixed order, so the same seed would give different codes from one fit
    to the next; matrix products have deterministic kernels.
    """

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        rows = _pooling_matrix(x.shape[-2], self.size, x)
        columns = _pooling_matrix(x.shape[-1], self.size, x)
        return rows @ x @ columns.T


def _pooling_matrix(length, size, like):
    """Averaging weights of adaptive pooling: output i covers inputs
    floor(i L / size) to ceil((i + 1) L / size) - 1."""
    matrix = torch.zeros(size, length, dtype=like.dtype, device=like.device)
    for i in range(size):
        start, stop = (i * length) // size, -(-(i + 1) * length // size)
        matrix[i, start:stop] = 1 / (stop - start)
    return matrix


class SmallConvNet(nn.Module):
    """DSH's network for small images: 3 conv layers (32, 32, 64 filters, 5 x 5),
    pooling, then a 500-unit fully connected layer.

    Adaptive pooling before the fully connected layer accepts any image size.
    """

    def __init__(self, in_channels):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(32, 32, 5, padding=2),
            nn.ReLU(),
            nn.AvgPool2d(3, 2, padding=1),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            AveragePoolTo(3),
            nn.Flatten(),
            nn.Linear(64 * 9, 500),
            nn.ReLU(),
        )
        self.out_features = 500

    def forward(self, x):
        return self.features(x)


class NetworkInNetwork(nn.Module):
    """DNNH's shared sub-network: conv layers each followed by a 1 x 1 conv,
    pooling, a last conv with ``out_channels`` maps and global average pooling.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()

        def block(inputs, outputs, kernel):
            return [
                nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2),
                nn.ReLU(),
                nn.Conv2d(outputs, outputs, 1),
                nn.ReLU(),
            ]

        self.features = nn.Sequential(
            *block(in_channels, 32, 5),
            nn.MaxPool2d(3, 2, padding=1),
            *block(32, 64, 5),
            nn.AvgPool2d(3, 2, padding=1),
            *block(64, out_channels, 3),
            AveragePoolTo(1),
            nn.Flatten(),
        )
        self.out_features = out_channels

    def forward(self, x):
        return self.features(x)


class DivideAndEncode(nn.Module):
    """DNNH's head: ``n_bits`` slices of the features, each through its own
    ``fc(slice -> 1)`` and a sigmoid ``sigmoid(beta * c)``."""

    def __init__(self, in_features, n_bits, beta=1.0):
        super().__init__()
        if in_features % n_bits:
            raise ValueError(
                f"{in_features} features do not split into {n_bits} equal slices."
            )
        self.n_bits, self.beta = n_bits, beta
        slice_size = in_features // n_bits
        bound = 1 / math.sqrt(slice_size)
        self.weight = nn.Parameter(
            torch.empty(n_bits, slice_size).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_bits).uniform_(-bound, bound))

    def forward(self, features):
        slices = features.view(len(features), self.n_bits, -1)
        return torch.sigmoid(
            self.beta * ((slices * self.weight).sum(dim=2) + self.bias)
        )


class HashNetwork(nn.Module):
    """Backbone then head; rows of ``n_features`` are reshaped to images first
    when ``input_shape`` is given, so inputs stay 2-D for scikit-learn."""

    def __init__(self, backbone, head, input_shape=None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.input_shape = None if input_shape is None else tuple(input_shape)
        # Set while a frozen backbone's features, computed once, stand in for
        # the inputs during fit: only the head runs then.
        self.takes_features = False

    def forward(self, x):
        if self.takes_features:
            return self.head(x)
        if self.input_shape is not None:
            x = x.view(len(x), *self.input_shape)
        return self.head(self.backbone(x))


def is_frozen(backbone):
    """Whether a backbone has parameters and none of them is trained."""
    parameters = list(backbone.parameters())
    return bool(parameters) and not any(p.requires_grad for p in parameters)


def output_width(backbone, n_features, input_shape):
    """Features a backbone produces, from its ``out_features`` or a dry run.

    The dry run is in eval mode: in training mode it would move batch-norm
    statistics (those of a frozen backbone, which nothing else changes) and
    fail on a batch of one. Each submodule's mode is restored after.
    """
    if hasattr(backbone, "out_features"):
        return backbone.out_features
    shape = (1, n_features) if input_shape is None else (1, *input_shape)
    tensors = [*backbone.parameters(), *backbone.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    modes = [(module, module.training) for module in backbone.modules()]
    backbone.eval()
    try:
        with torch.no_grad():
            return backbone(torch.zeros(shape, device=device)).reshape(1, -1).shape[1]
    finally:
        for module, training in modes:
            module.training = training
