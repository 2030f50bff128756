"""Rescoring on Dask: the Hamming candidates of :class:`HammingNeighbors`,
rescored where the vectors are, with the answers of the single-machine
:class:`skhash.neighbors.RescoringNeighbors`."""

from functools import partial

import dask
import dask.array as da
import numpy as np
from dask import delayed
from dask.base import is_dask_collection
from sklearn.base import _fit_context
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ..base import fits_from_rows
from ..metrics._recall import exact_neighbors, recall_at_k
from ..neighbors._base import split_runs
from ..neighbors._rescoring_base import RescoringBase, rescore, within
from ..utils._memory import rows_within
from ..utils._vectors import check_vectors, nearest_first
from ._collections import as_row_blocks
from ._fit import fit as fit_on_dask
from ._neighbors import HammingNeighbors
from ._transform import transform

__all__ = ["RescoringNeighbors"]


class RescoringNeighbors(RescoringBase):
    """:class:`skhash.neighbors.RescoringNeighbors` over vectors held by a cluster.

    The vectors given to :meth:`fit` stay on the workers, in their row
    blocks (persisted); their codes make a :class:`HammingNeighbors`, sharded
    across the workers. A search asks it for each query's ``n_candidates``
    nearest codes, sends the queries and their candidates to every block of
    vectors, where the candidates that fall in the block are rescored, and
    merges the blocks' distances by (distance, index). No vector leaves its
    worker, and every answer is the one the single-machine class gives,
    fitted with the same hasher on the same vectors: same distances, to the
    bit, same indices, ties by index.

    The parameters, methods and their arguments are those of
    :class:`skhash.neighbors.RescoringNeighbors`, and its answers are given
    as :class:`HammingNeighbors` gives them: NumPy queries get NumPy answers;
    Dask queries lazy Dask arrays with the queries' row chunks; ``X=None``
    answers as the vectors given to :meth:`fit` came. :meth:`score` is a
    float, computed on the cluster (the exact neighbours included).

    Parameters
    ----------
    hasher : estimator, default=None
        A skhash hasher, cloned and fitted on the vectors by
        :func:`skhash.dask.fit`, exactly from sums over the blocks (LSH, ITQ,
        CCA-ITQ, :class:`~skhash.classical.SignHasher` with a zero or mean
        threshold). Any other hasher (or ``Pipeline``) is fitted by the user,
        for instance ``skhash.dask.fit(hasher, X, n_samples=...)`` on rows
        drawn at random, and passed as ``FrozenEstimator(hasher)``. ``None``:
        :class:`~skhash.classical.SignHasher`.
    n_neighbors, n_candidates, oversample, radius, metric
        As in :class:`skhash.neighbors.RescoringNeighbors`.
    algorithm, backend, device, n_jobs
        As in :class:`skhash.neighbors.RescoringNeighbors`: those of the
        Hamming shards, on their workers.

    Attributes
    ----------
    hasher_ : estimator
        The fitted hasher.
    neighbors_ : skhash.dask.HammingNeighbors
        The Hamming search over the codes, which gives the candidates.
    vectors_ : dask array of shape (n_samples_fit, n_features)
        The database vectors, persisted in their row blocks (float32 or
        float64; other dtypes converted to float64).
    n_features_in_ : int
        Number of features of the vectors.
    n_samples_fit_ : int
        Number of database vectors.

    See Also
    --------
    skhash.neighbors.RescoringNeighbors : The same search in one process.
    skhash.dask.HammingNeighbors : The Hamming search alone.

    Notes
    -----
    Each pair's distance is computed alone, in float64 (see
    :func:`skhash.metrics.exact_neighbors`), so the blocks' distances are
    those of the single-machine class whichever block computes them; workers
    of different CPUs (vector instruction sets) may differ in the last bit.

    A block receives every query of a query block with its candidates, and
    answers with the distances of those that fall in it (zero elsewhere);
    the blocks' answers are summed, in a tree, which leaves each distance
    exactly as its block computed it, and each query's neighbours are taken
    by (distance, index). :meth:`predict` is not
    offered: labels would have to be gathered from every block.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skhash.dask import RescoringNeighbors
    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.standard_normal((2000, 8)) @ rng.standard_normal((8, 64))
    >>> database = da.from_array(vectors, chunks=500)
    >>> search = RescoringNeighbors(n_neighbors=10).fit(database)
    >>> distances, indices = search.kneighbors(vectors[:3] + 0.1)
    >>> indices[:, 0]
    array([0, 1, 2])
    """

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Persist the vectors' row blocks, fit the hasher and index the codes.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
            Database vectors, chunked along rows (a NumPy array makes one
            block).
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Labels, for a supervised hasher.

        Returns
        -------
        self : RescoringNeighbors
            The fitted estimator.
        """
        hasher = self._new_hasher()
        frozen = isinstance(hasher, FrozenEstimator)
        if not (frozen or fits_from_rows(hasher)):
            raise ValueError(
                f"{type(hasher).__name__} is not fitted from sums over blocks; fit "
                "it yourself (skhash.dask.fit(hasher, X, n_samples=...) fits it on "
                "rows drawn at random) and pass FrozenEstimator(hasher)."
            )
        vectors = _as_floats(as_row_blocks(X, "X"))
        if vectors.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={vectors.shape}) while a "
                "minimum of 1 is required by RescoringNeighbors."
            )
        vectors = vectors.persist()
        bad = ~da.isfinite(vectors).all(axis=1)
        n_bad = int(bad.sum().compute())
        if n_bad:  # found again, only to tell where
            raise ValueError(
                f"X has {n_bad} row(s) with NaN or infinite values, the first at "
                f"row {np.flatnonzero(bad.compute())[0]}."
            )
        if not frozen:
            hasher = fit_on_dask(hasher, vectors, y)
        self.n_features_in_, self.n_samples_fit_ = vectors.shape[1], vectors.shape[0]
        params = ("algorithm", "backend", "device", "n_jobs")
        self.neighbors_ = HammingNeighbors(
            self._count_candidates(self.n_neighbors, False, check=False),
            **{name: getattr(self, name) for name in params},
        ).fit(transform(hasher, vectors))
        self.hasher_, self.vectors_ = hasher, vectors
        self._starts = np.cumsum((0,) + vectors.chunks[0][:-1])
        self._fit_lazy = is_dask_collection(X)
        return self

    def _queries(self, X):
        """The queries as a row-chunked Dask array, and whether the answer is
        lazy. NumPy queries are checked here; Dask ones by the hasher's
        ``transform``, where they are encoded."""
        check_is_fitted(self)
        if X is None:
            return self.vectors_, self._fit_lazy
        lazy = is_dask_collection(X)
        queries = _as_floats(as_row_blocks(X)) if lazy else check_vectors(X, name="X")
        if queries.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {queries.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if not lazy:
            step = rows_within(64 * queries.shape[1])
            queries = da.from_array(queries, chunks=(step, -1))
        return queries, lazy

    def _rescored(self, X, queries, n_candidates):
        """Lazy (distances, candidates), each of shape (n_queries,
        n_candidates): every query's Hamming candidates and exact distances."""
        codes = None if X is None else transform(self.hasher_, queries)
        candidates = self.neighbors_.kneighbors(codes, n_candidates, False)
        starts = da.from_array(self._starts, chunks=1)
        # (query, vector block, candidate): each block's distances, zero for
        # the candidates other blocks hold, so that their sum is exactly the
        # one block's (a minimum over infinities would do, but Dask's reshapes
        # empty blocks).
        parts = da.blockwise(
            _distances_in_block, "qbc",
            queries, "qd", candidates, "qc", self.vectors_, "bd", starts, "b",
            metric=self.metric, dtype=np.float64, align_arrays=False,
            adjust_chunks={"b": 1}, concatenate=True,
        )  # fmt: skip
        return parts.sum(axis=1), candidates

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        queries, lazy = self._queries(X)
        k = self._check_n_neighbors(n_neighbors, queries.shape[0], X is None)
        found = self._rescored(X, queries, self._count_candidates(k, X is None))
        distances, indices = da.apply_gufunc(
            partial(nearest_first, n_neighbors=k), "(c),(c)->(k),(k)", *found,
            output_sizes={"k": k}, output_dtypes=(np.float64, np.intp),
        )  # fmt: skip
        if not lazy:
            distances, indices = dask.compute(distances, indices)
        return (distances, indices) if return_distance else indices

    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        self._check_sort(sort_results, return_distance)
        radius = self._check_radius(radius)
        queries, lazy = self._queries(X)
        if not lazy:
            found = self._radius_csr(X, radius, sort_results)
            return self._split_csr(found, return_distance)
        found = self._rescored(X, queries, self._radius_candidates(X))
        runs = [
            da.map_blocks(
                _runs, *found, radius, sort_results, item, drop_axis=1, dtype=object
            )
            for item in (0, 1)
        ]
        return tuple(runs) if return_distance else runs[1]

    def _radius_candidates(self, X):
        return self._count_candidates(self.n_neighbors, X is None, check=False)

    def _radius_csr(self, X, radius, sort_results):
        queries, _ = self._queries(X)
        found = self._rescored(X, queries, self._radius_candidates(X))
        return within(*dask.compute(*found), radius, sort_results)

    @staticmethod
    def _compute(*answers):
        return dask.compute(*answers)

    def predict(self, X):
        raise NotImplementedError(
            "skhash.dask.RescoringNeighbors does not predict; fit "
            "skhash.neighbors.RescoringNeighbors with labels, or vote with "
            "kneighbors' indices."
        )

    def score(self, X, y=None):
        if X is None:
            raise ValueError("score() needs query vectors X.")
        queries, _ = self._queries(X)
        k = min(self.n_neighbors, self.n_samples_fit_)
        distances, indices = self.kneighbors(queries, k)
        # The exact neighbours: each block's k nearest, merged.
        query_blocks = queries.to_delayed().ravel()
        parts = [
            delayed(_exact_in_block)(block, start, k, self.metric, *query_blocks)
            for block, start in zip(
                self.vectors_.to_delayed().ravel(), self._starts, strict=True
            )
        ]
        true = delayed(_merge)(k, *parts)
        true, distances, indices = dask.compute(true, distances, indices)
        return recall_at_k(
            true[1], indices, true_distances=true[0], distances=distances
        )

    def _has_labels(self):
        return False


def _as_floats(X):
    """A Dask array of real numbers as float32 or float64, as ``check_vectors``
    takes them."""
    if X.dtype in (np.float32, np.float64):
        return X
    if X.dtype.kind not in "iub":
        raise ValueError(f"X must be real numbers, got dtype {X.dtype}.")
    return X.astype(np.float64)


def _distances_in_block(queries, candidates, vectors, start, *, metric):
    """Distances of the candidates held by a block of vectors (rows ``start``
    on), zero for the others; shape (n_queries, 1, n_candidates)."""
    start = int(start[0])
    held = (candidates >= start) & (candidates < start + len(vectors))
    distances = np.zeros(candidates.shape)
    query_of, place = np.nonzero(held)
    # Pairs in steps, so that their gathered query vectors fit the memory.
    step = rows_within(16 * vectors.shape[1])
    for first in range(0, len(query_of), step):
        pairs = slice(first, first + step)
        rows, columns = query_of[pairs], place[pairs]
        local = candidates[rows, columns, None] - start
        distances[rows, columns] = rescore(queries[rows], vectors, local, metric)[:, 0]
    return distances[:, None, :]


def _runs(distances, candidates, radius, sort_results, item):
    """Per query, item 0 (distances) or 1 (indices) of its candidates within
    the radius, as an object array."""
    triple = within(distances, candidates, radius, sort_results)
    return split_runs(triple[item], triple[2])


def _exact_in_block(vectors, start, k, metric, *query_blocks):
    """Each query's exact k nearest in a block of vectors (rows ``start`` on),
    padded past the block's size with infinite distances."""
    queries = np.concatenate(query_blocks)
    found = min(k, len(vectors))
    distances = np.full((len(queries), k), np.inf)
    indices = np.full((len(queries), k), np.iinfo(np.intp).max)
    if found:
        distances[:, :found], indices[:, :found] = exact_neighbors(
            queries, vectors, found, metric=metric
        )
        indices[:, :found] += start
    return distances, indices


def _merge(k, *parts):
    """The k nearest of the blocks' k nearest, by (distance, index)."""
    return nearest_first(
        np.concatenate([d for d, _ in parts], axis=1),
        np.concatenate([i for _, i in parts], axis=1),
        k,
    )
