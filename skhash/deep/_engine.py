"""The shared machinery of the deep hashers: a skorch net inside an estimator.

A deep hasher is a scikit-learn estimator (it passes the common checks) that
composes a skorch ``NeuralNet`` as ``net_``; skorch runs the training loop,
devices, callbacks and the epoch table. The loss of every method takes the
network outputs and the batch's labels, so pairs and triplets are formed inside
each mini-batch by the loss itself and skorch's own ``get_loss`` serves as is.
torch and skorch are imported only when a deep hasher is fitted.
"""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ..base import BaseHasher

_OPTIMIZERS = {"adam": "Adam", "sgd": "SGD"}


def _resolve_device(device):
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@contextmanager
def deterministic_cudnn():
    """Have cuDNN pick deterministic kernels while training, then restore its
    settings: with its fastest kernels the same seed gives different codes."""
    from torch.backends import cudnn

    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


def label_matrix(y):
    """Labels as a float32 indicator matrix (one-hot for 1-D class labels)."""
    if y.ndim == 1:
        return (y[:, None] == np.unique(y)[None, :]).astype(np.float32)
    return y.astype(np.float32)


class BaseDeepHasher(BaseHasher):
    """Base of the deep hashers: backbone choice, training parameters, skorch.

    Subclasses write ``_criterion()`` (the loss module) and
    ``_outputs_to_projection`` (network outputs -> values whose sign is the
    bit), and may override ``_head(in_features)`` (default: a linear layer to
    ``n_bits`` units), ``_targets(X, y)`` (what the loss gets besides the
    outputs; default: the label indicator matrix) and ``_schedules()``
    (callbacks changing the loss during training).
    """

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "backbone": [StrOptions({"auto", "mlp", "cnn"}), HasMethods(["forward"])],
        "hidden_layer_sizes": ["array-like"],
        "input_shape": ["array-like", None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), callable],
        "device": [str],
        "callbacks": [list, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _check_input_shape(self, n_features):
        if self.input_shape is None:
            return None
        shape = tuple(int(size) for size in self.input_shape)
        if len(shape) != 3 or min(shape) < 1 or np.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={self.input_shape!r} must be (channels, height, width) "
                f"with channels * height * width = n_features = {n_features}."
            )
        return shape

    def _backbone(self, n_features, input_shape):
        from ._modules import MLP, SmallConvNet

        if not isinstance(self.backbone, str):
            return self.backbone
        kind = self.backbone
        if kind == "auto":
            kind = "mlp" if input_shape is None else "cnn"
        if kind == "cnn":
            if input_shape is None:
                raise ValueError('backbone="cnn" needs input_shape=(C, H, W).')
            return SmallConvNet(input_shape[0])
        return MLP(n_features, self.hidden_layer_sizes)

    def _network(self, n_features):
        from ._modules import HashNetwork, output_width

        input_shape = self._check_input_shape(n_features)
        backbone = self._backbone(n_features, input_shape)
        width = output_width(backbone, n_features, input_shape)
        return HashNetwork(backbone, self._head(width), input_shape)

    def _fit(self, X, y):
        import torch
        from skorch.callbacks import ProgressBar

        from ._net import _HashingNet

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        torch.manual_seed(seed)
        X = X.astype(np.float32)
        self.device_ = _resolve_device(self.device)
        targets = self._targets(X, y)
        callbacks = list(self._schedules())
        if self.verbose:
            callbacks.append(("progress", ProgressBar()))
        callbacks += list(self.callbacks or [])
        self.net_ = _HashingNet(
            module=self._network(X.shape[1]),
            criterion=self._criterion(),
            optimizer=self._optimizer_class(),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=callbacks,
            device=self.device_,
            verbose=int(self.verbose),
            iterator_train__shuffle=True,
        )
        with deterministic_cudnn():
            self.net_.fit(X, targets)
        return self

    def _head(self, in_features):
        from torch import nn

        return nn.Linear(in_features, self.n_bits)

    def _targets(self, X, y):
        return label_matrix(y)

    def _optimizer_class(self):
        import torch

        if isinstance(self.optimizer, str):
            return getattr(torch.optim, _OPTIMIZERS[self.optimizer])
        return self.optimizer

    def _project(self, X):
        outputs = self.net_.forward(X.astype(np.float32), training=False)
        return self._outputs_to_projection(outputs.cpu().numpy())

    def _schedules(self):
        return []
