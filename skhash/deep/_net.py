"""The skorch nets every deep hasher trains (imported only when one is fitted).

Besides skorch's loop, the nets run the hashers' device settings: mixed
precision (``torch.autocast``, with a gradient scaler for float16), the
channels-last memory format and ``torch.compile``. The trained network
``module_`` itself stays a plain float32 module in every case: the compiled
module is a wrapper sharing its parameters, and autocast changes the
computation, not the weights; so saving, loading and ONNX export read it as
they read any other.
"""

import contextlib
import warnings
from collections.abc import Mapping

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator, to_tensor
from torch import nn

from ._images import StreamedData
from ._modules import is_frozen


def autocast(device_type, precision):
    """A ``torch.autocast`` context of ``precision`` on ``device_type``
    (a null context for float32). Raises ``ValueError`` where torch would
    disable it (a warning, then float32 all along): the device type has no
    autocast, or none in that precision."""
    if precision == "float32":
        return contextlib.nullcontext()
    alternative = "bfloat16" if precision == "float16" else "float32"
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(
            f"precision={precision!r}: torch has no automatic mixed precision "
            f"(autocast) on {device_type!r} devices; use precision='float32' "
            "there, or train on CUDA or the CPU."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        context = torch.autocast(device_type, dtype=getattr(torch, precision))
    if caught or not getattr(context, "_enabled", True):
        said = "; ".join(str(warning.message) for warning in caught)
        raise ValueError(
            f"precision={precision!r} is not supported on {device_type!r} by "
            f"this torch ({torch.__version__}): {said or 'autocast disabled'}. "
            f"Use precision={alternative!r}."
        )
    return context


def float32(outputs):
    """Floating outputs (a tensor, or a tuple of them) cast up to float32:
    codes are the signs of float32 values whatever the precision."""
    if isinstance(outputs, tuple):
        return tuple(float32(output) for output in outputs)
    if isinstance(outputs, torch.Tensor) and outputs.is_floating_point():
        return outputs.float()
    return outputs


def channels_last_batch(x, input_shape=None):
    """A batch of images in the channels-last memory format: rows of
    ``input_shape`` (C, H, W) viewed as images first; other batches (2-D
    feature rows) as they are."""
    if x.dim() == 2 and input_shape is not None and len(input_shape) == 3:
        x = x.view(len(x), *input_shape)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _compile_failure(error):
    """``error`` as the hasher's: torch.compile could not build its code."""
    return RuntimeError(
        "compile=True: torch.compile could not compile the network "
        f"({type(error).__name__}: {str(error).strip().splitlines()[0]}). "
        "Its default backend (inductor) needs a working C++ compiler (g++ or "
        "clang, found on the PATH or named by the CXX environment variable) "
        "on the CPU, and Triton on CUDA. Install them, or use compile=False."
    )


class EncodingBackbone(nn.Module):
    """A backbone run as the hasher's network runs it: its batches in the
    channels-last format, its forward under autocast, its features cast up
    to float32. What computes a frozen backbone's features once; its
    settings are part of what the feature cache knows the features by."""

    def __init__(self, backbone, *, precision="float32", channels_last=False):
        super().__init__()
        self.backbone = backbone
        self.precision, self.channels_last = precision, channels_last

    def forward(self, x):
        if self.channels_last:
            x = channels_last_batch(x)
        with autocast(x.device.type, self.precision):
            return float32(self.backbone(x))


class _HashingNet(NeuralNet):
    """skorch's ``NeuralNet``, made to unpickle a CUDA fit on a CPU-only machine.

    The hashers hand skorch their network and loss as ready instances, so the
    parameters ``module`` and ``criterion`` are the very trained objects, on the
    training device. skorch saves only ``module_``, ``criterion_`` and
    ``optimizer_`` through its device-mapping path; plain pickle would carry
    the parameters' CUDA tensors and fail to load without CUDA.

    ``precision``, ``channels_last`` and ``compile_network`` are the hasher's
    ``precision``, ``channels_last`` and ``compile`` (skorch's own ``compile``
    would put the compiled wrapper in ``module_``, whose weights are what the
    hasher saves and exports).
    """

    grad_scaler_ = None  # with precision="float16", from initialize_optimizer
    compiled_ = None  # (module_, its compiled wrapper), made when first used

    def __init__(
        self,
        *args,
        precision="float32",
        channels_last=False,
        compile_network=False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.channels_last = channels_last
        self.compile_network = compile_network

    def initialize(self):
        super().initialize()
        self.cuda_dependent_attributes_ = [
            *self.cuda_dependent_attributes_,
            "module",
            "criterion",
        ]
        return self

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        self.grad_scaler_ = None
        if self.precision == "float16":
            # Float16 gradients underflow without a scaled loss; the scaler
            # skips the steps whose gradients overflow and lowers its scale.
            self.grad_scaler_ = torch.amp.GradScaler(self._device_type())
        return self

    def initialize_module(self):
        super().initialize_module()
        if self.channels_last:
            # Converts the 4-D parameters (convolution weights) only.
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def _device_type(self):
        return torch.device(self.device or "cpu").type

    def _autocast(self):
        return autocast(self._device_type(), self.precision)

    def _forward_module(self):
        """``module_``, or its compiled wrapper with ``compile_network``
        (compiled again should ``module_`` be replaced, as an accelerator
        does)."""
        if not self.compile_network:
            return self.module_
        if self.compiled_ is None or self.compiled_[0] is not self.module_:
            self.compiled_ = (self.module_, torch.compile(self.module_))
        return self.compiled_[1]

    def infer(self, x, **fit_params):
        # skorch's, with the batch in channels-last format, the forward under
        # autocast and the outputs in float32: training and encoding alike.
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping):
            return super().infer(x, **fit_params)
        if self.channels_last and not getattr(self.module, "takes_features", False):
            x = channels_last_batch(x, getattr(self.module, "input_shape", None))
        module = self._forward_module()
        with self._autocast():
            try:
                outputs = module(x, **fit_params)
            except torch._dynamo.exc.BackendCompilerFailed as error:
                if not self.compile_network:
                    raise  # the user's module compiles itself
                raise _compile_failure(error) from error
        return float32(outputs)

    def train_step_single(self, batch, **fit_params):
        # skorch's, with the loss under autocast too and scaled for float16.
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        with self._autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaled = loss if self.grad_scaler_ is None else self.grad_scaler_.scale(loss)
        scaled.backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        scaler = self.grad_scaler_
        if scaler is None:
            return super().train_step(batch, **fit_params)
        # skorch's step without the closure (GradScaler.step takes none); the
        # gradients are unscaled before callbacks (gradient clipping) see them.
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        for optimizer in optimizers:
            scaler.unscale_(optimizer)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for optimizer in optimizers:
            scaler.step(optimizer)  # skipped when a gradient is inf or nan
        scaler.update()
        return step

    def get_iterator(self, dataset, training=False):
        # Images stream a whole mini-batch per item (see skhash.deep._images).
        if isinstance(dataset, StreamedData):
            prefix = "iterator_train" if training else "iterator_valid"
            batch_size = self.get_params_for(prefix).get("batch_size")
            return dataset.loader(batch_size or self.batch_size, training=training)
        return super().get_iterator(dataset, training=training)

    def _set_training(self, training=True):
        super()._set_training(training)
        # A frozen backbone that runs in training (on augmented images) keeps
        # its batch-normalisation statistics, as when its features are
        # computed once in eval mode.
        backbone = getattr(self.module_, "backbone", None)
        if training and isinstance(backbone, nn.Module) and is_frozen(backbone):
            backbone.eval()


class _AcceleratedHashingNet(AccelerateMixin, _HashingNet):
    """The net of a hasher given an ``accelerator``: skorch's accelerate support.

    It trains only: after ``fit`` the hasher keeps the unwrapped network in a
    plain :class:`_HashingNet`, so that encoding runs in the calling process
    alone (an accelerated net shards and gathers every prediction, which would
    wait forever for processes that do not encode too).
    """

    def _initialize_accelerator(self):
        # On CPUs accelerate wraps every module it prepares in
        # DistributedDataParallel, which refuses a module with nothing to train:
        # a loss without parameters is only moved to the accelerator's device
        # (what accelerate itself does with it on GPUs).
        if self._wrapped_with_accelerator:
            return self
        criteria = self._criteria
        fixed = [name for name in criteria if _fixed(getattr(self, name + "_"))]
        if self.accelerator.device_placement:
            for name in fixed:
                criterion = getattr(self, name + "_").to(self.accelerator.device)
                setattr(self, name + "_", criterion)
        self._criteria = [name for name in criteria if name not in fixed]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria


def _fixed(criterion):
    """Whether ``criterion`` is a module with no parameter to train."""
    return isinstance(criterion, nn.Module) and not any(
        parameter.requires_grad for parameter in criterion.parameters()
    )
