"""Exact Hamming search over a database sharded across Dask workers: the
estimator, a facade over the rooms beside it (query blocks, the k-nearest
rounds, the score, and the shards' own functions)."""

import dask
import numpy as np
from dask import delayed
from dask.base import is_dask_collection
from sklearn.base import _fit_context
from sklearn.utils.validation import check_is_fitted

from ..neighbors._base import NeighborsBase, vote
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
from ._placement import attach, attached, build_shards

__all__ = ["HammingNeighbors"]


class HammingNeighbors(NeighborsBase):
    """:class:`skhash.HammingNeighbors` over a database sharded across workers.

    The row blocks of the codes given to :meth:`fit` make one
    :class:`skhash.neighbors.HammingIndex` shard per worker, of consecutive blocks,
    built and kept on that worker (persisted, with its kernels compiled and
    multi-index tables filled there); the database is never gathered on one
    node. Every answer is the one ``skhash.HammingNeighbors`` gives when
    fitted on all the codes at once: same distances, same global indices,
    ties by index.

    The parameters, methods and their arguments are those of
    :class:`skhash.HammingNeighbors`; see it for their meaning. NumPy queries
    get NumPy answers; Dask queries get lazy Dask arrays with the queries' row
    chunks; ``X=None`` (the database queries itself) answers as the codes
    given to :meth:`fit` came, with their row chunks. Graphs are SciPy
    matrices and :meth:`score` a float, whatever the queries.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours of :meth:`kneighbors` and :meth:`predict`.
    radius : int, default=2
        Hamming radius of :meth:`radius_neighbors`.
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        Search method of every shard, chosen per shard under ``"auto"``.
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        Search engine of every shard.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of the ``"torch"`` backend, on each worker.
    n_jobs : int, default=None
        Threads of each shard's searches, on its worker.

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
    shard_offsets_ : ndarray of shape (n_shards + 1,)
        Shard ``s`` holds the global rows ``shard_offsets_[s]`` to
        ``shard_offsets_[s + 1] - 1``.

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
    ``n_jobs`` threads: set it to the worker's threads.

    The k nearest of a query are the best of the shards' candidates, merged
    by (distance, global index), in rounds. A shard holding a fraction of the
    database has its own k nearest far away, where its multi-index search
    gives up and scans, while the query's k nearest overall may be a few bits
    away. So the shards first search increasing radii: a query with ``k``
    codes within a radius over all shards is settled (every code at distance
    ``<=`` the radius is known, ties included) and only the others go on to
    the next round; the last round asks each shard for its ``k`` nearest.
    The radii are those of least expected cost, from the shards' estimated
    search costs and, at :meth:`fit`, the nearest neighbours of a sample of
    128 database codes (queries are expected to be like them): neighbours far
    apart (random codes) or shards whose own k nearest are cheap plan no
    radius. Without ``X``, a database code is in its own shard, which
    excludes its row (not every code equal to it) as
    ``skhash.HammingNeighbors`` does. Radius neighbours are the shards' runs
    side by side. :meth:`predict` votes with the labels the shards send with
    their candidates.

    :meth:`score` is the MAP over the whole database, in two passes that move
    only per-query histograms over the ``8 * n_bytes + 1`` distances: the
    shards count their items and relevant items at each distance; from these
    counts each shard learns how many items rank before its own at each
    distance (smaller distances anywhere, the same distance in earlier shards)
    and sums the precisions at its relevant items.

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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build one shard per worker, of consecutive row blocks, on that worker.

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
        backend, device = resolve(self.backend, self.device)
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
        shards, starts = build_shards(codes, labels, params)
        # Persisted: the shards stay where they were built (futures under
        # distributed); only their descriptions come back.
        shards = list(dask.persist(*shards))
        described = dask.compute(*[delayed(_shards.describe)(s) for s in shards])

        self.backend_, self.device_ = backend, device
        self.n_features_in_ = codes.shape[1]
        self.n_samples_fit_ = codes.shape[0]
        self.shard_offsets_ = np.array([*starts, codes.shape[0]], np.intp)
        self._persisted = shards
        self._row_chunks = row_chunks
        self._fit_lazy = is_dask_collection(X)
        self._labels = described[0]["labels"]  # (shape of one row, dtype) or None
        if y is not None and self._labels[0] == ():
            self.classes_ = np.unique(np.concatenate([d["classes"] for d in described]))
        # What the k-nearest rounds are planned from (see _rounds.py).
        self._costs = [d["costs"] for d in described]
        self._sample = _rounds.sample_neighbours(
            shards, self.shard_offsets_, self._costs,
            max(_rounds.SAMPLE_K, self.n_neighbors),
        )  # fmt: skip
        return self

    def __setstate__(self, state):
        super().__setstate__(state)
        # Bound at once to this process's client, if it holds the shards, so
        # that they outlive the pickled original.
        if hasattr(self, "_persisted"):
            attach(self._persisted)

    @property
    def _shards(self):
        """The persisted shards, checked to be on a cluster of this process."""
        check_is_fitted(self)
        return attached(self._persisted)

    def _blocks(self, X):
        """The queries as :class:`QueryBlock` s, and whether they are lazy.
        ``X=None`` gives the database's row blocks, each from its shard."""
        check_is_fitted(self)
        if X is None:
            blocks = own_blocks(self._shards, self.shard_offsets_, self._row_chunks)
            return blocks, self._fit_lazy
        return query_blocks(X, self.n_features_in_, type(self).__name__)

    def _fan_out(self, block, function, rows=None, **task):
        """Delayed ``function(shard, codes, task, rows)`` of every shard for a
        query block, each with its :class:`_shards.Task`.

        The parts go to their merge as separate arguments: in a list, Dask
        (2026.8) leaves the persisted shards' futures out of the graph (see
        dask/dask#12055), and a lazy answer would lose its shards with the
        estimator.
        """
        return [
            delayed(function)(
                shard,
                block.codes,
                _shards.Task(int(offset), block.own_start_in(s), **task),
                rows,
            )
            for s, (shard, offset) in enumerate(
                zip(self._shards, self.shard_offsets_, strict=False)
            )
        ]

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
                    self._fan_out, block, k, with_labels, plans[block.n_rows]
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
                *self._fan_out(
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
        return _score.mean_average_precision(self._shards, blocks, labels, n_bins)

    def _has_labels(self):
        return self._labels is not None
