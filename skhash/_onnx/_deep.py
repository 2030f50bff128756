"""Converter of the deep hashers: torch's exporter, then threshold and packing.

The network (with the hasher's ``_outputs_to_projection``) goes through
``torch.export`` and torch's ONNX exporter; the nodes that turn the
projection into packed codes are the ones every converter shares.
"""

import copy
import logging
import warnings
from contextlib import contextmanager

from ._graph import (
    BATCH,
    INPUT,
    OPSET,
    GraphBuilder,
    Tensor,
    append_packing,
    enclose,
)

_NET_INPUT, _NET_OUTPUT = "skhash/network_input", "skhash/projection"


def _projection_module(hasher):
    """The hasher's network followed by its ``_outputs_to_projection``.

    A copy, on the CPU and in eval mode, so that exporting changes nothing in
    the fitted hasher (whose network may live on a GPU).
    """
    import torch

    class Projection(torch.nn.Module):
        def __init__(self, network, to_projection):
            super().__init__()
            self.network, self.to_projection = network, to_projection

        def forward(self, X):
            return self.to_projection(self.network(X))

    network = copy.deepcopy(hasher.net_.module_).to("cpu")
    return Projection(network, hasher._outputs_to_projection).eval()


class _DropTorchvisionNotice(logging.Filter):
    def filter(self, record):
        return "torchvision is not installed" not in record.getMessage()


@contextmanager
def _quiet_exporter():
    """Silence what torch's exporter says about itself on every call.

    torch 2.13 warns about its own use of deprecated pytree APIs (an error
    under ``-W error::FutureWarning``) and logs four lines when torchvision,
    whose detection operators it would register, is not installed: nothing
    a caller can act on. Other warnings and errors pass.
    """
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    notice = _DropTorchvisionNotice()
    logger.addFilter(notice)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # A forward that sets eval mode on a submodule, as the frozen
            # pretrained backbone does, draws a page-long list of "side
            # effects"; the copy is in eval mode already, so they change
            # nothing.
            warnings.filterwarnings(
                "ignore", "While compiling, we found certain side effects"
            )
            yield
    finally:
        logger.removeFilter(notice)


def _export(module, n_features):
    import torch

    example = torch.zeros((2, n_features), dtype=torch.float32)
    batch = ({0: torch.export.Dim(BATCH)},)
    with _quiet_exporter():
        # strict=True: torch.export's default (non-strict) tracing turns
        # ``len(x)``, which HashNetwork uses to reshape rows into images, into
        # the example's batch size, and torch.onnx.export given the module
        # itself then quietly falls back to a fixed batch; Dynamo's tracing
        # keeps the batch size symbolic.
        program = torch.export.export(
            module, (example,), dynamic_shapes=batch, strict=True
        )
        exported = torch.onnx.export(
            program,
            (example,),
            dynamo=True,
            input_names=[_NET_INPUT],
            output_names=[_NET_OUTPUT],
            opset_version=OPSET,
            verbose=False,
        )
    return exported.model_proto


def convert(hasher, X_sample):
    """The model of a fitted deep hasher for inputs of ``X_sample``'s dtype."""
    from onnx import TensorProto, helper

    hasher._check_exportable()
    model = _export(_projection_module(hasher), hasher.n_features_in_)
    (exported_output,) = model.graph.output
    element_type = exported_output.type.tensor_type.elem_type
    projection = Tensor(_NET_OUTPUT, helper.tensor_dtype_to_np_dtype(element_type))
    builder = GraphBuilder()
    # _project hands the network float32 rows whatever the input dtype.
    builder.node("Cast", INPUT, to=TensorProto.FLOAT, output=_NET_INPUT)
    append_packing(builder, projection, hasher.n_bits)
    return enclose(model, builder, 1, hasher, X_sample.dtype)
