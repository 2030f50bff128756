"""Float vectors beside the codes: their checks and exact distances, shared by
rescoring, recall and the verification of near-duplicate pairs.

One definition of each distance, smaller is closer everywhere:

- ``"euclidean"``: ``||q - v||``;
- ``"cosine"``: ``1 - q.v / (||q|| ||v||)``, a zero vector being at distance 1
  from everything (its cosine taken as 0, as scikit-learn does);
- ``"inner_product"``: ``-q.v``, the negated similarity, so that the best
  match comes first as with the other two.

All three are computed from dot products and norms in float64, whatever the
vectors' dtype and memory layout (a pair's sum runs in the same order for a
C- or Fortran-ordered copy of the same numbers), in row blocks of the
working memory: a memory-mapped matrix of vectors is read a block at a time,
never whole.
"""

import numpy as np

from ._memory import rows_within

__all__ = [
    "METRICS",
    "candidate_distances",
    "check_metric",
    "check_vectors",
    "distance_matrix",
    "nearest_first",
    "paired_distances",
    "rounding_bound",
    "squared_norms",
]

METRICS = ("cosine", "euclidean", "inner_product")


def check_vectors(vectors, *, n_rows=None, name="vectors"):
    """A 2-D array of finite floats, used in place when it already is float32
    or float64 (a ``np.memmap`` stays on disk); ``n_rows`` is the number of
    codes it must line up with.

    >>> check_vectors([[0.0, 1.0], [2.0, 3.0]]).dtype
    dtype('float64')
    >>> check_vectors([[0.0, float("nan")]])
    Traceback (most recent call last):
    ...
    ValueError: vectors has 1 row(s) with NaN or infinite values, the first at row 0.
    """
    if not isinstance(vectors, np.ndarray) or vectors.dtype not in (
        np.float32,
        np.float64,
    ):
        vectors = np.asarray(vectors)
        if vectors.dtype.kind not in "fiub":
            raise ValueError(f"{name} must be real numbers, got dtype {vectors.dtype}.")
        vectors = vectors.astype(np.float64)
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D array with at least one feature, got shape "
            f"{vectors.shape}."
        )
    if n_rows is not None and len(vectors) != n_rows:
        raise ValueError(
            f"{name} has {len(vectors)} row(s) but there are {n_rows} code(s): "
            "the vectors must line up with the codes, row for row."
        )
    bad = np.concatenate(
        [
            start + np.flatnonzero(~np.isfinite(block).all(axis=1))
            for start, block in _blocks(vectors)
        ]
        or [np.empty(0, np.intp)]
    )
    if len(bad):
        raise ValueError(
            f"{name} has {len(bad)} row(s) with NaN or infinite values, the first "
            f"at row {bad[0]}."
        )
    return vectors


def check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
    return metric


def squared_norms(vectors):
    """Squared Euclidean norm of each row, in float64."""
    return np.concatenate(
        [np.einsum("ij,ij->i", block, block) for _, block in _blocks(vectors)]
        or [np.empty(0)]
    )


def distance_matrix(queries, vectors, metric, *, vector_norms=None):
    """Distances of every query to every vector, shape (n_queries, n_vectors).

    ``vector_norms`` are the vectors' :func:`squared_norms`, when already known.

    >>> distance_matrix([[3.0, 4.0]], np.array([[0.0, 0.0], [3.0, 0.0]]), "euclidean")
    array([[5., 4.]])
    """
    queries = _float64(queries)
    if vector_norms is None:
        vector_norms = squared_norms(vectors)
    dots = np.concatenate(
        [queries @ block.T for _, block in _blocks(vectors, len(queries))], axis=1
    )
    return _from_dots(dots, squared_norms(queries)[:, None], vector_norms, metric)


def candidate_distances(queries, vectors, candidates, metric, *, vector_norms=None):
    """Distances of each query to its own candidate rows of ``vectors``:
    ``candidates`` is an int array of shape (n_queries, n_candidates)."""
    queries = _float64(queries)
    candidates = np.asarray(candidates)
    if vector_norms is None:
        vector_norms = None if metric == "inner_product" else squared_norms(vectors)
    distances = np.empty(candidates.shape)
    step = rows_within(8 * vectors.shape[1] * max(1, candidates.shape[1]))
    for start in range(0, len(queries), step):
        block, rows = queries[start : start + step], candidates[start : start + step]
        gathered = _float64(vectors[rows.ravel()])
        dots = np.einsum("qd,qcd->qc", block, gathered.reshape(*rows.shape, -1))
        distances[start : start + step] = _from_dots(
            dots,
            squared_norms(block)[:, None],
            None if vector_norms is None else vector_norms[rows],
            metric,
        )
    return distances


def paired_distances(a, b, metric):
    """Distance of each row of ``a`` to the same row of ``b``.

    >>> paired_distances([[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [2.0, 2.0]], "cosine")
    array([1., 0.])
    """
    a, b = _float64(a), _float64(b)
    dots = np.einsum("ij,ij->i", a, b)
    return _from_dots(dots, squared_norms(a), squared_norms(b), metric)


def _from_dots(dots, query_norms, vector_norms, metric):
    """The distances from dot products and squared norms (broadcast)."""
    if metric == "inner_product":
        return -dots
    if metric == "euclidean":
        # Rounding can make a distance of zero a tiny negative square.
        return np.sqrt(np.maximum(query_norms + vector_norms - 2 * dots, 0))
    scale = np.sqrt(query_norms * vector_norms)
    cosine = np.divide(dots, scale, out=np.zeros_like(dots), where=scale > 0)
    # Rounding can take a cosine just past 1 (a vector and itself), and a
    # distance below 0; clipped as scikit-learn's cosine_distances does.
    return 1 - np.clip(cosine, -1, 1)


def _blocks(vectors, n_queries=1):
    """(first row, float64 block) of ``vectors``, blocks within the working
    memory (with ``n_queries`` dot products a row)."""
    step = rows_within(8 * (vectors.shape[1] + n_queries))
    for start in range(0, len(vectors), step):
        yield start, _float64(vectors[start : start + step])


def _float64(array):
    """C-ordered float64: einsum's order of summation follows the layout."""
    return np.ascontiguousarray(array, dtype=np.float64)


def rounding_bound(query_norms, vector_norm, n_features, metric):
    """Per query, a bound on how far :func:`distance_matrix` and
    :func:`candidate_distances` can differ on the same pair: they compute the
    same formula but sum the dot product in different orders (BLAS blocks it;
    the per-pair sum does not depend on which or how many pairs are computed
    together).

    ``query_norms`` are the queries' :func:`squared_norms`, ``vector_norm``
    the largest squared norm among the vectors. Any order of summing ``d``
    products errs by at most ``gamma_d |q||v|`` (``gamma_d = d u / (1 - d u)``,
    Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, sec. 3.1),
    so two orders differ by at most twice that; the bounds below take twice
    again, for the roundings of the formula around the dot product.
    """
    unit = np.finfo(np.float64).eps / 2
    gamma = n_features * unit / (1 - n_features * unit)
    query_norms = np.asarray(query_norms, dtype=np.float64)
    if metric == "cosine":  # the same norms divide both dot products
        return np.full(query_norms.shape, 4 * gamma + 16 * unit)
    if metric == "inner_product":
        return (4 * gamma + 16 * unit) * np.sqrt(query_norms * vector_norm)
    # Squared distances differ by twice the dot products' difference plus the
    # roundings of the sum, each within 2u(|q|^2 + |v|^2); the square root
    # turns a difference e of squares into at most sqrt(e), however small.
    squares = (8 * gamma + 16 * unit) * (query_norms + vector_norm)
    return 2 * np.sqrt(squares)


def nearest_first(distances, indices, n_neighbors=None):
    """Each row's entries ordered by (distance, index), the first
    ``n_neighbors`` of them: the one order of neighbours everywhere, ties
    going to the smaller index.

    >>> nearest_first(np.array([[0.5, 0.2, 0.5]]), np.array([[4, 9, 1]]))
    (array([[0.2, 0.5, 0.5]]), array([[9, 1, 4]]))
    """
    order = np.lexsort((indices, distances), axis=-1)[:, :n_neighbors]
    return (
        np.take_along_axis(distances, order, axis=1),
        np.take_along_axis(indices, order, axis=1),
    )
