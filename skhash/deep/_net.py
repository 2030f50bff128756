"""The skorch net every deep hasher trains (imported only when one is fitted)."""

from skorch import NeuralNet


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
