"""The skorch nets every deep hasher trains (imported only when one is fitted)."""

from skorch import NeuralNet
from skorch.hf import AccelerateMixin
from torch import nn

from ._images import StreamedData
from ._modules import is_frozen


class _HashingNet(NeuralNet):
    """skorch's ``NeuralNet``, made to unpickle a CUDA fit on a CPU-only machine.

    The hashers hand skorch their network and loss as ready instances, so the
    parameters ``module`` and ``criterion`` are the very trained objects, on the
    training device. skorch saves only ``module_``, ``criterion_`` and
    ``optimizer_`` through its device-mapping path; plain pickle would carry
    the parameters' CUDA tensors and fail to load without CUDA.
    """

    def initialize(self):
        super().initialize()
        self.cuda_dependent_attributes_ = [
            *self.cuda_dependent_attributes_,
            "module",
            "criterion",
        ]
        return self

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
