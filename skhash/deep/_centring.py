"""A layer that centres features over the batch, for DNNH's encoding layer.

Imported only when a deep hasher is fitted (it imports torch).
"""

import torch
from torch import nn


class BatchCentring(nn.Module):
    """Subtract each feature's mean: the batch's while training, a running
    average of them at inference (``BatchNorm1d`` without the scaling and the
    affine part).

    Unlike ``BatchNorm1d`` it accepts a training batch of one sample (the last
    mini-batch of an epoch can be one), which it centres by the running mean.
    The running mean is the plain average of the first ``1 / momentum``
    batches' means, then an exponential one: started from zero, it would lag
    far behind features whose mean is large next to their spread, the very
    case this layer is for.
    """

    def __init__(self, n_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(n_features))
        self.register_buffer("n_batches", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        if self.training and len(x) > 1:
            mean = x.mean(dim=0)
            with torch.no_grad():
                self.n_batches += 1
                weight = max(self.momentum, 1 / self.n_batches.item())
                # Under autocast the batch's mean may be bfloat16 or float16.
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), weight)
            return x - mean
        return x - self.running_mean
