"""Converters of the classical hashers.

Each one rebuilds its hasher's ``_project`` operation by operation, in the
same order and with NumPy's dtypes (see ``GraphBuilder.numpy_op``): folding
``(X - mean_) @ W`` into ``X @ W - mean_ @ W``, say, would round differently
and flip the bits of projections close to zero.
"""

import numpy as np
from sklearn.utils.extmath import row_norms

from ..classical import (
    ITQHasher,
    KSHHasher,
    LSHHasher,
    SignHasher,
    SpectralHasher,
    SSHHasher,
    STHHasher,
)
from ._graph import (
    INPUT,
    GraphBuilder,
    Tensor,
    append_packing,
    code_length,
    make_model,
)


def convert(hasher, X_sample, project):
    """The model of a classical hasher whose projection ``project`` rebuilds."""
    dtype = X_sample.dtype
    graph = GraphBuilder()
    projection = project(hasher, graph, Tensor(INPUT, np.dtype(dtype)))
    append_packing(graph, projection, code_length(hasher))
    return make_model(graph, hasher, dtype, hasher.n_features_in_)


def _lsh(hasher, graph, X):
    centred = graph.numpy_op("Sub", X, hasher.mean_)
    return graph.numpy_op("MatMul", centred, hasher.projection_)


def _itq(hasher, graph, X):
    centred = graph.numpy_op("Sub", X, hasher.mean_)
    projected = graph.numpy_op("MatMul", centred, hasher.components_)
    return graph.numpy_op("MatMul", projected, hasher.rotation_)


def _spectral(hasher, graph, X):
    projected = graph.numpy_op("MatMul", X, hasher.components_)
    offsets = graph.numpy_op("Sub", projected, hasher.min_)
    direction = np.argmax(hasher.modes_ > 0, axis=1)
    frequency = hasher.omegas_[np.arange(hasher.n_bits), direction]
    columns = graph.node(
        "Gather", offsets.name, graph.constant(direction.astype(np.int64)), axis=1
    )
    phases = graph.numpy_op("Mul", Tensor(columns, offsets.dtype), frequency)
    return Tensor(graph.node("Cos", phases.name), phases.dtype)


def _rbf(graph, X, anchors, sigma):
    """``exp(-||x - a||^2 / (2 sigma))`` of float64 rows ``X`` to the anchors.

    scikit-learn's euclidean_distances on float64 rows, step by step:
    -2 X A^T, plus the squared norms of the rows, plus those of the anchors
    (computed here by the very function it uses), clipped at zero.
    """
    squares = graph.node("Mul", X.name, X.name)
    axis = graph.constant(np.array([1], dtype=np.int64))
    row_squares = Tensor(graph.node("ReduceSum", squares, axis, keepdims=1), X.dtype)
    products = graph.numpy_op("MatMul", X, anchors.T)
    distances = graph.numpy_op("Mul", products, -2.0)
    distances = Tensor(graph.node("Add", distances.name, row_squares.name), X.dtype)
    distances = graph.numpy_op("Add", distances, row_norms(anchors, True))
    distances = graph.numpy_op("Max", distances, 0.0)
    negated = Tensor(graph.node("Neg", distances.name), distances.dtype)
    exponents = graph.numpy_op("Div", negated, 2 * sigma)
    return Tensor(graph.node("Exp", exponents.name), exponents.dtype)


def _ksh(hasher, graph, X):
    kernel = _rbf(graph, graph.cast(X, np.float64), hasher.anchors_, hasher.sigma_)
    centred = graph.numpy_op("Sub", kernel, hasher.kernel_mean_)
    return graph.numpy_op("MatMul", centred, hasher.coef_)


def _ssh(hasher, graph, X):
    X = graph.cast(X, np.float64)
    if hasher.kernel == "rbf":
        X = _rbf(graph, X, hasher.anchors_, hasher.sigma_)
    centred = graph.numpy_op("Sub", X, hasher.mean_)
    projected = graph.numpy_op("MatMul", centred, hasher.components_)
    return graph.numpy_op("MatMul", projected, hasher.rotation_)


def _sth(hasher, graph, X):
    centred = graph.numpy_op("Sub", X, hasher.mean_)
    scores = graph.numpy_op("MatMul", centred, hasher.coef_)
    # onnxruntime folds a float32 MatMul followed by a division by a
    # one-element constant into a FusedMatMul that multiplies by the
    # reciprocal, which rounds differently from NumPy's division; a divisor
    # per bit keeps the division (one bit is still folded: a rounding of the
    # size of the matrix product's own).
    dtype = np.result_type(scores.dtype, hasher.scale_)
    divisor = np.full(hasher.n_bits, hasher.scale_, dtype=dtype)
    return graph.numpy_op("Div", scores, divisor)


def _sign(hasher, graph, X):
    if hasher.n_bits_ < hasher.n_features_in_:
        bounds = [np.array([value], dtype=np.int64) for value in (0, hasher.n_bits_)]
        axis = graph.constant(np.array([1], dtype=np.int64))
        kept = graph.node("Slice", X.name, *map(graph.constant, bounds), axis)
        X = Tensor(kept, X.dtype)
    # float64 thresholds: float32 rows are cast to float64 first, as NumPy
    # promotes them, so that each bit is exactly x >= threshold.
    return graph.numpy_op("Sub", X, hasher.threshold_)


# ITQHasher's entry serves CCAITQHasher too: they share _project.
PROJECTIONS = {
    LSHHasher: _lsh,
    ITQHasher: _itq,
    SpectralHasher: _spectral,
    KSHHasher: _ksh,
    SSHHasher: _ssh,
    STHHasher: _sth,
    SignHasher: _sign,
}
