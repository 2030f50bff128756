"""Exact Hamming search over a database sharded across Dask workers: the
estimator, a facade over the rooms beside it (query blocks, the k-nearest
rounds, the score, and the shards' own functions)."""

import dask
import numpy as np
from dask import delayed
from dask.base import is_dask_collection
from sklearn.base import _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..neighbors._base import PARAMETER_CONSTRAINTS, NeighborsBase, vote
from ..neighbors._index import resolve
from . import _rounds, _score, _shards
from ._blocks import (
    gather_csr,
    item,
    label_blocks,
    own_blocks,
    query_blocks,
    runs,
    stitch,
)
from ._collections import as_row_blocks
from ._placement import Placement

__all__ = ["HammingNeighbors"]


class HammingNeighbors(NeighborsBase):
    """:class:`skhash.HammingNeighbors` over a database sharded or replicated
    across workers.

    Sharded, the row blocks of the codes given to :meth:`fit` make one
    :class:`skhash.neighbors.HammingIndex` shard per worker, of consecutive
    blocks, built and kept on that worker (persisted, with its kernels
    compiled and multi-index tables filled there); the database is never
    gathered on one node. Replicated, every worker builds and keeps an index
    of the whole database, and the query blocks are shared out between them.
    Every answer is the one ``skhash.HammingNeighbors`` gives when fitted on
    all the codes at once: same distances, same global indices, ties by
    index.

    The parameters, methods and their arguments are those of
    :class:`skhash.HammingNeighbors`; see it for their meaning. NumPy queries
    get NumPy answers; Dask queries get lazy Dask arrays with the queries' row
    chunks; ``X=None`` (the database queries itself) answers as the codes
    given to :meth:`fit` came, with their row chunks. Graphs are SciPy
    matrices and :meth:`score` a float, whatever the queries.

    Parameters
    ----------
    n_neighbors, radius, algorithm, backend, device
        As in :class:`skhash.HammingNeighbors`, for every shard (``"auto"``
        choices made per shard, on its worker).
    n_jobs : int, default=None
        Threads of each shard's searches, on its worker.
    placement : {"auto", "shard", "replicate"}, default="auto"
        ``"shard"``: one shard of the database per worker, every query
        searched by all of them; for databases larger than a worker's memory.
        ``"replicate"``: the whole index on every worker, each query searched
        by one of them; throughput grows with the workers. ``"auto"``
        replicates when there are several workers and a copy (the codes,
        twice as much for the multi-index tables, 8 bytes per label) takes at
        most a quarter of the smallest worker's memory limit, else shards
        (also when the workers have no memory limit).

    Attributes
    ----------
    n_features_in_ : int
        Bytes per code seen during fit.
    n_samples_fit_ : int
        Number of codes in the database.
    classes_ : ndarray of shape (n_classes,)
        Class labels, when fitted with 1-D ``y``.
    backend_ : str
        The backend of the shards, as resolved on the client.
    device_ : str
        The device of the shards, as resolved on the client.
    placement_ : {"shard", "replicate"}
        How the database was placed.
    shard_offsets_ : ndarray of shape (n_shards + 1,)
        Shard ``s`` holds the global rows ``shard_offsets_[s]`` to
        ``shard_offsets_[s + 1] - 1`` (replicated: one shard, ``[0, n]``).

    See Also
    --------
    skhash.HammingNeighbors : The same search in one process.
    skhash.dask.similarity_join : Every pair of codes within a radius.

    Notes
    -----
    Why one shard per worker: a multi-index search costs about as much over
    half the codes as over all of them (its bucket probes do not shrink with
    the database), so every extra shard repeats that cost; with one shard per
    worker, the workers' searches run side by side. The shards are runs of
    whole blocks, about as many codes each, so that their rows stay
    consecutive; each is built on its own worker (the blocks move there
    once) or, if that worker is lost, on another. A local scheduler makes
    one shard. A worker of several threads searches its shard with
    ``n_jobs`` threads: set it to the worker's threads. For the same reason
    a database that fits on every worker is better replicated: each query
    then costs one search of the whole, as in one process, and the workers
    search different query blocks side by side (NumPy queries are cut into
    a block per worker; Dask queries keep their row blocks, handed to the
    workers in turn).

    Sharded, the k nearest of a query are the best of the shards'
    candidates, merged by (distance, global index), in rounds of increasing
    radii planned at :meth:`fit` from a sample of the database (see
    ``skhash/dask/_rounds.py``); :meth:`score` is the MAP over the whole
    database, in two passes that move only per-query histograms over the
    distances. Without ``X``, a database code excludes its own row (not every
    code equal to it), as ``skhash.HammingNeighbors`` does.

    A fitted estimator refers to its shards on the cluster rather than holding
    them: pickled, it works wherever that cluster is reachable (in the same
    session, or sent to a task); loaded where it is not, or after its cluster
    closed, its searches raise a ``RuntimeError``, and skops refuses to save
    it.

    Searches are Dask tasks: a worker lost mid-search has its tasks, and the
    shards it held, recomputed by Dask from their inputs, or the search fails
    with Dask's error (``KilledWorker``); it never returns a partial answer.

    Examples
    --------
    >>> import dask.array as da
    >>> from skhash.codes import pack_codes
    >>> from skhash.dask import HammingNeighbors
    >>> database = da.from_array(
    ...     pack_codes([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1], [0, 1, 1, 1]]),
    ...     chunks=2,
    ... )
    >>> nn = HammingNeighbors(n_neighbors=2).fit(database)
    >>> nn.kneighbors(pack_codes([[0, 0, 1, 1]]))
    (array([[1, 1]], dtype=int32), array([[2, 3]]))
    >>> distances, indices = nn.kneighbors()  # lazy: the database was a Dask array
    >>> indices.compute()
    array([[2, 3],
           [3, 2],
           [0, 3],
           [1, 2]])
    """

    _parameter_constraints: dict = {
        **PARAMETER_CONSTRAINTS,
        "placement": [StrOptions({"auto", "shard", "replicate"})],
    }

    def __init__(
        self,
        n_neighbors=5,
        radius=2,
        *,
        algorithm="auto",
        backend="auto",
        device="auto",
        n_jobs=None,
        placement="auto",
    ):
        super().__init__(
            n_neighbors, radius, algorithm=algorithm, backend=backend,
            device=device, n_jobs=n_jobs,
        )  # fmt: skip
        self.placement = placement

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the index on the workers: one shard of consecutive row blocks
        per worker, or a copy of the whole on each (see ``placement``).

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_bytes), dtype uint8
            Packed codes; a NumPy array makes one shard.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Labels of the codes (Dask or NumPy), needed by :meth:`predict` and
            :meth:`score`.

        Returns
        -------
        self : HammingNeighbors
            The fitted estimator.
        """
        codes = as_row_blocks(X, "X")
        if codes.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={codes.shape}) while a "
                "minimum of 1 is required by HammingNeighbors."
            )
        row_chunks = codes.chunks[0]
        labels = []
        if y is not None:
            labels = label_blocks(
                y, row_chunks, "X has {n_codes} codes but y has {n_labels} labels."
            )
        options = ("algorithm", "backend", "device", "n_jobs")
        params = {name: getattr(self, name) for name in options}
        placement = Placement.build(codes, labels, params, self.placement, y)
        return self._fitted_on(placement, row_chunks, is_dask_collection(X))

    def _fitted_on(self, placement, row_chunks, lazy):
        """Take the shards of ``placement`` as the fitted database, whose
        codes came in ``row_chunks`` (``lazy``: as a Dask collection): at
        fit, and when a saved index is reopened (:func:`load_index`)."""
        # Only the shards' descriptions come back, once every one is built;
        # the copies of a replicated index describe one shard.
        persisted = placement.persisted
        described = dask.compute(*[delayed(_shards.describe)(s) for s in persisted])
        described = described[: len(placement.offsets) - 1]
        self._placement = placement
        self.backend_, self.device_ = resolve(self.backend, self.device)
        self.n_features_in_ = described[0]["n_bytes"]
        self.n_samples_fit_ = int(placement.offsets[-1])
        self.placement_, self.shard_offsets_ = placement.kind, placement.offsets
        if not lazy:  # NumPy answers, from any row blocks: one per copy
            rows = np.arange(self.n_samples_fit_)
            row_chunks = map(len, np.array_split(rows, placement.n_copies))
        self._row_chunks, self._fit_lazy = tuple(row_chunks), lazy
        self._labels = described[0]["labels"]  # (shape of one row, dtype) or None
        if self._labels is not None and self._labels[0] == ():
            self.classes_ = np.unique(np.concatenate([d["classes"] for d in described]))
        # What the k-nearest rounds are planned from (see _rounds.py).
        self._costs = [d["costs"] for d in described]
        self._sample = _rounds.sample_neighbours(
            placement.shards_for(0), self.shard_offsets_, self._costs,
            max(_rounds.SAMPLE_K, self.n_neighbors),
        )  # fmt: skip
        return self

    @property
    def _shards(self):
        """The shards (replicated: one copy), on a cluster of this process."""
        check_is_fitted(self)
        return self._placement.shards_for(0)

    def _blocks(self, X):
        """The queries as :class:`QueryBlock` s, and whether they are lazy.
        ``X=None`` gives the database's row blocks, each from its shard."""
        check_is_fitted(self)
        if X is None:
            shards_for = self._placement.shards_for
            blocks = own_blocks(shards_for, self.shard_offsets_, self._row_chunks)
            return blocks, self._fit_lazy
        n_blocks = self._placement.n_copies
        return query_blocks(X, self.n_features_in_, type(self).__name__, n_blocks)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        blocks, lazy = self._blocks(X)
        distances, indices, _ = self._kneighbors(X, blocks, n_neighbors, False)
        if lazy:
            return (distances, indices) if return_distance else indices
        distances, indices = dask.compute(distances, indices)
        return (distances, indices) if return_distance else indices

    def _kneighbors(self, X, blocks, n_neighbors, with_labels):
        """Lazy (distances, indices, neighbour labels) of the query blocks."""
        n_queries = sum(block.n_rows for block in blocks)
        k = self._check_n_neighbors(n_neighbors, n_queries, X is None)
        answers, plans = [], {}  # plans: the radii for each block size
        for block in blocks:
            if block.n_rows == 0:
                answers.append(None)
                continue
            if block.n_rows not in plans:
                plans[block.n_rows] = self._radii(k, block.n_rows)
            answers.append(
                _rounds.knn_answer(
                    self._placement.fan_out, block, k, with_labels, plans[block.n_rows]
                )
            )
        label_tail, label_dtype = self._labels if with_labels else ((), None)
        outputs = [((k,), np.int32), ((k,), np.intp), ((k, *label_tail), label_dtype)]
        results = [
            stitch([item(answer, i) for answer in answers], blocks, tail, dtype)
            for i, (tail, dtype) in enumerate(outputs[: 3 if with_labels else 2])
        ]
        return (*results, None) if not with_labels else tuple(results)

    def _radii(self, k, n_rows):
        """The radii of the rounds for a block of ``n_rows`` queries."""
        return _rounds.radii(self._sample, self._costs, k, n_rows)

    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        self._check_sort(sort_results, return_distance)
        blocks, lazy = self._blocks(X)
        answers = self._radius_answers(blocks, radius, sort_results)
        if not lazy:
            return self._split_csr(gather_csr(answers), return_distance)
        results = [
            stitch([runs(answer, i) for answer in answers], blocks, (), object)
            for i in (0, 1)
        ]
        return tuple(results) if return_distance else results[1]

    def _radius_answers(self, blocks, radius, sort_results):
        """Per query block, the delayed CSR triple of a radius search."""
        radius = self._check_radius(radius)
        return [
            None
            if block.n_rows == 0
            else delayed(_shards.merge_radius)(
                block.n_rows,
                sort_results,
                *self._placement.fan_out(
                    block, _shards.shard_radius, radius=radius, by_dist=sort_results
                ),
            )
            for block in blocks
        ]

    def _radius_csr(self, X, radius, sort_results):
        blocks, _ = self._blocks(X)
        return gather_csr(self._radius_answers(blocks, radius, sort_results))

    @staticmethod
    def _compute(*answers):
        return dask.compute(*answers)

    def predict(self, X):
        self._check_fitted_with_y("predict")
        blocks, lazy = self._blocks(X)
        _, _, labels = self._kneighbors(X, blocks, None, True)
        classes = getattr(self, "classes_", None)
        dtype = self._labels[1] if classes is None else classes.dtype
        meta = np.empty((0,) * (labels.ndim - 1), dtype)
        predicted = labels.map_blocks(vote, classes, drop_axis=1, meta=meta)
        return predicted if lazy else predicted.compute()

    def score(self, X, y):
        self._check_fitted_with_y("score")
        if X is None:
            raise ValueError("score() needs query codes X.")
        blocks, _ = self._blocks(X)
        labels = label_blocks(
            y,
            [block.n_rows for block in blocks],
            "{n_codes} query codes but {n_labels} query labels.",
            database=self._labels[0],
        )
        n_bins = 8 * self.n_features_in_ + 1
        shards_for = self._placement.shards_for
        return _score.mean_average_precision(shards_for, blocks, labels, n_bins)

    def _has_labels(self):
        return self._labels is not None
