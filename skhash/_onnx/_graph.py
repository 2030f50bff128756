"""Building blocks shared by the converters: graph builder, bits, packing."""

import itertools
from dataclasses import dataclass

import numpy as np

from ..codes import n_bytes_for

# The opset of torch's ONNX exporter (its torchlib is written for 18); the
# classical graphs use the same one so every model reads alike.
OPSET = 18
INPUT, OUTPUT, BATCH = "X", "codes", "n_samples"
# Prefix of every name the converters make, so that they cannot collide with
# the names of a graph exported by torch.
_PREFIX = "skhash/"


@dataclass(frozen=True)
class Tensor:
    """A value of the graph: its name and its NumPy dtype."""

    name: str
    dtype: np.dtype


def tensor_type(dtype):
    """ONNX element type of a NumPy dtype."""
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class GraphBuilder:
    """Nodes and initializers of a graph under construction, uniquely named."""

    def __init__(self):
        self.nodes, self.initializers = [], []
        self._counter = itertools.count()

    def _name(self, stem):
        return f"{_PREFIX}{stem}_{next(self._counter)}"

    def constant(self, array):
        """Add an initializer holding ``array`` (dtype kept) and return its name."""
        from onnx import numpy_helper

        name = self._name("constant")
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type, *inputs, output=None, **attributes):
        """Add a node with one output and return the output's name."""
        from onnx import helper

        output = output or self._name(op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [output], **attributes)
        )
        return output

    def cast(self, tensor, dtype):
        """``tensor.astype(dtype)``; no node when the dtype is already right."""
        dtype = np.dtype(dtype)
        if tensor.dtype == dtype:
            return tensor
        return Tensor(self.node("Cast", tensor.name, to=tensor_type(dtype)), dtype)

    def numpy_op(self, op_type, tensor, value):
        """``tensor <op> value`` with NumPy's type promotion.

        NumPy computes ``X - mean_`` in the wider of the two dtypes and
        ``float32_array / python_float`` in float32 (NEP 50); doing the same
        here keeps every intermediate bit-identical to the hasher's.
        """
        dtype = np.result_type(tensor.dtype, value)
        tensor = self.cast(tensor, dtype)
        constant = self.constant(np.asarray(value, dtype=dtype))
        return Tensor(self.node(op_type, tensor.name, constant), dtype)


def threshold(graph, projection):
    """Add the node of ``projection >= 0`` and return the name of its bits."""
    zero = graph.constant(np.zeros((), dtype=projection.dtype))
    return graph.node("GreaterOrEqual", projection.name, zero)


def append_packing(graph, projection, n_bits):
    """Add the nodes of ``pack_codes(projection >= 0)``, output ``"codes"``."""
    append_bit_packing(graph, threshold(graph, projection), n_bits, n_bits)


def append_bit_packing(graph, bits, n_columns, n_bits):
    """Add the nodes that pack boolean ``bits`` into codes of ``n_bits``.

    ``bits`` has ``n_columns`` columns, at most ``n_bits``: zero bits pad them
    to whole bytes, and the bits are grouped by eight and weighted 128, 64,
    ..., 1: :func:`numpy.packbits`'s order. The weighting runs in int32
    because onnxruntime has no uint8 kernels for Mul and ReduceSum. Output
    ``"codes"``.
    """
    from onnx import TensorProto

    bits = graph.node("Cast", bits, to=TensorProto.INT32)
    n_bytes = n_bytes_for(n_bits)
    n_padding = 8 * n_bytes - n_columns
    if n_padding:
        pads = graph.constant(np.array([0, 0, 0, n_padding], dtype=np.int64))
        bits = graph.node("Pad", bits, pads)
    # 0 keeps the batch size of the input, whatever it is (even 0 rows).
    shape = graph.constant(np.array([0, n_bytes, 8], dtype=np.int64))
    groups = graph.node("Reshape", bits, shape)
    weights = graph.constant((1 << np.arange(7, -1, -1)).astype(np.int32))
    weighted = graph.node("Mul", groups, weights)
    axis = graph.constant(np.array([2], dtype=np.int64))
    codes = graph.node("ReduceSum", weighted, axis, keepdims=0)
    graph.node("Cast", codes, to=TensorProto.UINT8, output=OUTPUT)


def code_length(hasher):
    """Bits per code: ``n_bits``, or ``n_bits_`` where fit fixes it (None)."""
    return getattr(hasher, "n_bits_", hasher.n_bits)


def input_info(dtype, n_features):
    """Declaration of the input ``X``: rows of ``n_features``, any batch size."""
    from onnx import helper

    return helper.make_tensor_value_info(INPUT, tensor_type(dtype), [BATCH, n_features])


def output_info(n_bits):
    """Declaration of the output ``codes``: uint8, one row per input row."""
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(
        OUTPUT, TensorProto.UINT8, [BATCH, n_bytes_for(n_bits)]
    )


def make_model(graph, hasher, dtype, n_features):
    """A checked model from a builder whose nodes read ``X`` and write ``codes``."""
    from onnx import helper

    body = helper.make_graph(
        graph.nodes,
        type(hasher).__name__,
        [input_info(dtype, n_features)],
        [output_info(code_length(hasher))],
        initializer=graph.initializers,
    )
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)])
    return finish(model, hasher)


def enclose(model, graph, n_leading, hasher, dtype):
    """A skhash model around ``model``, a graph made elsewhere (torch, skl2onnx).

    The first ``n_leading`` nodes of ``graph`` read ``X`` and feed ``model``'s
    nodes, which the rest of ``graph`` follows up to ``codes``: the order
    ONNX requires (each node after those whose outputs it reads).
    """
    body = model.graph
    nodes = [*graph.nodes[:n_leading], *body.node, *graph.nodes[n_leading:]]
    del body.node[:]
    body.node.extend(nodes)
    body.initializer.extend(graph.initializers)
    del body.input[:]
    body.input.append(input_info(dtype, hasher.n_features_in_))
    del body.output[:]
    body.output.append(output_info(code_length(hasher)))
    body.name = type(hasher).__name__
    return finish(model, hasher)


def finish(model, hasher):
    """Name the producer, record the hasher in the metadata and check."""
    import onnx

    from .. import __version__

    if not model.functions:
        # The oldest IR version that knows the opset (onnx and torch write
        # their newest): the model then loads in every onnxruntime that runs
        # the opset. Local functions may need newer IR features: kept as is.
        model.ir_version = onnx.helper.find_min_ir_version_for(model.opset_import)
    n_bits = code_length(hasher)
    model.producer_name, model.producer_version = "skhash", __version__
    model.doc_string = (
        f"Packed binary codes of {type(hasher).__name__}(n_bits={n_bits}), "
        "as its transform(X) computes them."
    )
    onnx.helper.set_model_props(
        model, {"skhash.estimator": type(hasher).__name__, "n_bits": str(n_bits)}
    )
    onnx.checker.check_model(model)
    return model
