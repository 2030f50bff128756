import pytest
import torch
from torch import nn

from skhash.deep._modules import AveragePoolTo


@pytest.mark.parametrize("size", [1, 3, 4])
@pytest.mark.parametrize("height, width", [(7, 7), (8, 5), (3, 11), (4, 4)])
def test_average_pool_matches_adaptive_pooling(size, height, width):
    x = torch.randn(2, 3, height, width, requires_grad=True)
    ours = AveragePoolTo(size)(x)
    torch.testing.assert_close(ours, nn.AdaptiveAvgPool2d(size)(x))
    (gradient,) = torch.autograd.grad(ours.square().sum(), x)
    (expected,) = torch.autograd.grad(nn.AdaptiveAvgPool2d(size)(x).square().sum(), x)
    torch.testing.assert_close(gradient, expected)
