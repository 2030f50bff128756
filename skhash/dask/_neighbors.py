"""Exact Hamming search over a database sharded across Dask workers."""

import warnings

import dask
import dask.array as da
import numpy as np
from dask import delayed
from dask.base import is_dask_collection
from sklearn.base import _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted

from .._supervision import check_labels
from ..codes import check_codes, check_codes_dtype
from ..neighbors._base import NeighborsBase, split_runs, vote
from ..neighbors._index import drop_self, resolve
from . import _shards
from ._collections import aligned_labels, as_row_blocks
from ._placement import build_shards

__all__ = ["HammingNeighbors"]

# Database codes sampled at fit, and how many neighbours each: the rounds of
# kneighbors are planned for k up to this (and the constructor's n_neighbors).
_SAMPLE_SIZE = 128
_SAMPLE_K = 64
# What one more round of tasks costs (scheduling, transfers), in scanned
# words (0.3 ns each, on one core): a round took 10 to 20 ms on a
# LocalCluster of 2 workers, each of them idle meanwhile.
_ROUND_COST = 2.0**26


class HammingNeighbors(NeighborsBase):
    """:class:`skhash.HammingNeighbors` over a database sharded across workers.

    The row blocks of the codes given to :meth:`fit` make one
    ``skhash.HammingNeighbors`` shard per worker, of consecutive blocks,
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
            labels = _label_blocks(
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
        self._shards = shards
        self._row_chunks = row_chunks
        self._fit_lazy = is_dask_collection(X)
        self._labels = described[0]["labels"]  # (shape of one row, dtype) or None
        if y is not None and self._labels[0] == ():
            self.classes_ = np.unique(np.concatenate([d["classes"] for d in described]))
        # What the k-nearest rounds are planned from (see _radii).
        self._costs = [d["costs"] for d in described]
        self._sample = self._sample_kneighbors(max(_SAMPLE_K, self.n_neighbors))
        return self

    def _sample_kneighbors(self, k):
        """Distances of a sample of the database codes to their ``k`` nearest
        others, over the database and in each shard (one array per shard,
        fewer columns in a small shard); ``None`` when no radius search can
        beat the scan. The rounds of :meth:`kneighbors` are planned for
        queries like these.

        The sample rows are spread evenly over the database; each is searched
        by a scan in every shard, and drops itself from the answers.
        """
        k = min(k, self.n_samples_fit_ - 1)
        if k < 1 or all(np.all(radius >= scan) for radius, _, scan in self._costs):
            return None
        rows = np.linspace(0, self.n_samples_fit_ - 1, _SAMPLE_SIZE).astype(np.intp)
        rows = np.unique(rows)
        offsets = self.shard_offsets_
        blocks = []
        for s, shard in enumerate(self._shards):
            local = rows[(rows >= offsets[s]) & (rows < offsets[s + 1])] - offsets[s]
            if len(local):
                blocks.append(delayed(_shards.shard_rows)(shard, local))
        sample = delayed(_shards.stack)(*blocks)
        parts = dask.compute(
            *[
                delayed(_shards.sample_kneighbors)(shard, sample, k + 1, int(offset))
                for shard, offset in zip(self._shards, offsets, strict=False)
            ]
        )
        merged = _shards.merge_kneighbors(k + 1, *[(*part, None) for part in parts])
        per_shard = [drop_self(*part, rows)[0] for part in parts]
        return drop_self(*merged[:2], rows)[0], per_shard

    def _query_blocks(self, X):
        """The queries as blocks ``(codes, own, n_rows)`` and whether lazy.

        ``codes`` is an array or a delayed block. ``X=None`` gives the
        database's row blocks, each taken from the shard that holds it:
        ``own`` is then that shard and the block's first row in it.
        """
        check_is_fitted(self)
        if X is None:
            blocks, offsets = [], self.shard_offsets_
            starts = np.concatenate([[0], np.cumsum(self._row_chunks)])
            for start, size in zip(starts, self._row_chunks, strict=False):
                if size == 0:
                    blocks.append((None, None, 0))
                    continue
                s = int(np.searchsorted(offsets, start, side="right")) - 1
                own_start = int(start - offsets[s])
                rows = slice(own_start, own_start + size)
                codes = delayed(_shards.shard_rows)(self._shards[s], rows)
                blocks.append((codes, (s, own_start), size))
            return blocks, self._fit_lazy
        lazy = is_dask_collection(X)
        codes = as_row_blocks(X, "X") if lazy else check_codes(X, name="X")
        if codes.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {codes.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if codes.shape[0] == 0:
            raise ValueError(
                "Found array with 0 sample(s) while a minimum of 1 is required."
            )
        if not lazy:
            # Delayed once, so that the tasks of every shard share one copy.
            return [(delayed(codes), None, len(codes))], False
        check_codes_dtype(codes.dtype, "X")
        # Their values are checked where they are searched, by the shards.
        blocks = codes.to_delayed().ravel()
        return [
            (b, None, n) for b, n in zip(blocks, codes.chunks[0], strict=True)
        ], True

    def _search(self, blocks, search, merge):
        """Per query block, ``merge(parts, n_rows)`` of the parts
        ``search(shard, codes, offset, own_start)`` of every shard (see
        :meth:`_parts`): a list of delayed results, ``None`` for an empty
        block.

        The parts go to ``merge`` as separate arguments: in a list, Dask
        (2026.8) leaves the persisted shards' futures out of the graph (see
        dask/dask#12055), and a lazy answer would lose its shards with the
        estimator.
        """
        merged = []
        for codes, own, n_rows in blocks:
            if n_rows == 0:
                merged.append(None)
                continue
            parts = [
                search(shard, codes, offset, own_start)
                for shard, offset, own_start in self._shard_arguments(own)
            ]
            merged.append(merge(parts, n_rows))
        return merged

    def _parts(self, codes, own, function, *args):
        """Delayed ``function(shard, codes, offset, own_start, *args)`` of
        every shard; ``own_start`` is the queries' first row in the shard
        ``own`` that holds them (see :meth:`_query_blocks`), else ``None``."""
        return [
            delayed(function)(shard, codes, offset, own_start, *args)
            for shard, offset, own_start in self._shard_arguments(own)
        ]

    def _shard_arguments(self, own):
        own_shard, own_start = (None, None) if own is None else own
        for s, shard in enumerate(self._shards):
            offset = int(self.shard_offsets_[s])
            yield shard, offset, own_start if s == own_shard else None

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest codes of each query.

        As :meth:`skhash.HammingNeighbors.kneighbors`.

        Parameters
        ----------
        X : array-like or dask array of shape (n_queries, n_bytes), default=None
            Query codes, dtype uint8. ``None``: every database code queries
            the others, not counting itself.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray or dask array of shape (n_queries, n_neighbors)
            Hamming distances, int32, ascending; only when
            ``return_distance=True``.
        neigh_ind : ndarray or dask array of shape (n_queries, n_neighbors)
            Global database indices; equal distances in index order.
        """
        blocks, lazy = self._query_blocks(X)
        distances, indices, _ = self._kneighbors(X, blocks, n_neighbors, False)
        if lazy:
            return (distances, indices) if return_distance else indices
        distances, indices = dask.compute(distances, indices)
        return (distances, indices) if return_distance else indices

    def _kneighbors(self, X, blocks, n_neighbors, with_labels):
        """Lazy (distances, indices, neighbour labels) of the query blocks."""
        n_queries = sum(n for _, _, n in blocks)
        k = self._check_n_neighbors(n_neighbors, n_queries, X is None)

        merged, plans = [], {}  # plans: the radii for each block size
        for codes, own, n_rows in blocks:
            if n_rows and n_rows not in plans:
                plans[n_rows] = self._radii(k, n_rows)
            merged.append(
                self._kneighbors_block(
                    codes, own, n_rows, k, with_labels, plans[n_rows]
                )
                if n_rows
                else None
            )
        label_tail, label_dtype = self._labels if with_labels else ((), None)
        outputs = [((k,), np.int32), ((k,), np.intp), ((k, *label_tail), label_dtype)]
        results = [
            _rows([_item(p, i) for p in merged], blocks, tail, dtype)
            for i, (tail, dtype) in enumerate(outputs[: 3 if with_labels else 2])
        ]
        return (*results, None) if not with_labels else tuple(results)

    def _kneighbors_block(self, codes, own, n_rows, k, with_labels, radii):
        """Delayed (distances, indices, labels) of one query block, in rounds:
        radius searches at ``radii``, each settling the rows with ``k`` codes
        within its radius, then the shards' ``k`` nearest for the rows left
        (see Notes)."""
        state, rows = (), None  # rows still pending; None: all of them
        for radius in radii:
            parts = self._parts(
                codes, own, _shards.shard_within, rows, radius, k, with_labels
            )
            state, rows = delayed(_shards.merge_within, nout=2)(
                k, radius, n_rows, state, rows, *parts
            )
        parts = self._parts(codes, own, _shards.shard_kneighbors, rows, k, with_labels)
        return delayed(_shards.merge_last, nout=3)(k, n_rows, state, rows, *parts)

    def _radii(self, k, n_rows):
        """Radii of the rounds of a block of ``n_rows`` queries for ``k``
        nearest: those of least expected cost (see :func:`plan_radii`) for
        queries like the database sample; none when ``k`` is larger than the
        sample's neighbours."""
        if self._sample is None or k > self._sample[0].shape[1]:
            return []
        kth, per_shard = self._sample
        # Each sample query's cost in the last round: each shard's k nearest,
        # as dear as its radius search at its own k-th distance.
        last = sum(
            knn[shard_kth[:, k - 1]] if k <= shard_kth.shape[1] else scan
            for (_, knn, scan), shard_kth in zip(self._costs, per_shard, strict=True)
        )
        return plan_radii(
            kth[:, k - 1],
            last,
            sum(radius for radius, _, _ in self._costs),
            sum(scan for _, _, scan in self._costs),
            _ROUND_COST / n_rows,
        )

    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        """Find the codes within a Hamming radius of each query.

        As :meth:`skhash.HammingNeighbors.radius_neighbors`.

        Parameters
        ----------
        X : array-like or dask array of shape (n_queries, n_bytes), default=None
            Query codes, dtype uint8. ``None``: every database code queries
            the others.
        radius : int, default=None
            Codes at distance ``<= radius``; defaults to the constructor's.
        return_distance : bool, default=True
            Whether to return the distances.
        sort_results : bool, default=False
            Sort each query's neighbours by (distance, index); otherwise they
            are in index order.

        Returns
        -------
        neigh_dist : ndarray or dask array of shape (n_queries,), dtype object
            Per query, an int32 array of distances; only when
            ``return_distance=True``.
        neigh_ind : ndarray or dask array of shape (n_queries,), dtype object
            Per query, an array of global database indices.
        """
        self._check_sort(sort_results, return_distance)
        blocks, lazy = self._query_blocks(X)
        merged = self._radius_neighbors(blocks, radius, sort_results)
        if not lazy:
            distances, indices, indptr = self._gather_csr(merged)
            indices = split_runs(indices, indptr)
            if not return_distance:
                return indices
            return split_runs(distances, indptr), indices
        results = [
            _rows([_objects(p, i) for p in merged], blocks, (), object) for i in (0, 1)
        ]
        return tuple(results) if return_distance else results[1]

    def _radius_neighbors(self, blocks, radius, sort_results):
        radius = self._check_radius(radius)

        def search(shard, codes, offset, own_start):
            return delayed(_shards.shard_radius)(
                shard, codes, radius, offset, sort_results, own_start
            )

        def merge(parts, n_rows):
            return delayed(_shards.merge_radius)(n_rows, sort_results, *parts)

        return self._search(blocks, search, merge)

    def _gather_csr(self, merged):
        """One CSR triple of every query block, computed."""
        parts = dask.compute(*[part for part in merged if part is not None])
        indptr, offset = [np.zeros(1, np.int64)], 0
        for _, _, part_indptr in parts:  # empty blocks add no rows
            indptr.append(part_indptr[1:] + offset)
            offset += part_indptr[-1]
        return (
            np.concatenate([part[0] for part in parts]),
            np.concatenate([part[1] for part in parts]),
            np.concatenate(indptr),
        )

    @staticmethod
    def _compute(*answers):
        return dask.compute(*answers)

    def _radius_csr(self, X, radius, sort_results):
        blocks, _ = self._query_blocks(X)
        return self._gather_csr(self._radius_neighbors(blocks, radius, sort_results))

    def predict(self, X):
        """Labels voted by the ``n_neighbors`` nearest database codes.

        As :meth:`skhash.HammingNeighbors.predict`: the most frequent class
        (ties to the smallest), or for indicator matrices each label that more
        than half of the neighbours have.

        Parameters
        ----------
        X : array-like or dask array of shape (n_queries, n_bytes), dtype uint8
            Query codes.

        Returns
        -------
        y_pred : ndarray or dask array of shape (n_queries,) or (n_queries, n_labels)
        """
        self._check_fitted_with_y("predict")
        blocks, lazy = self._query_blocks(X)
        _, _, labels = self._kneighbors(X, blocks, None, True)
        classes = getattr(self, "classes_", None)
        dtype = self._labels[1] if classes is None else classes.dtype
        meta = np.empty((0,) * (labels.ndim - 1), dtype)
        predicted = labels.map_blocks(vote, classes, drop_axis=1, meta=meta)
        return predicted if lazy else predicted.compute()

    def score(self, X, y):
        """Mean average precision of the queries against the whole database.

        Equal to :meth:`skhash.HammingNeighbors.score` (stable ties by global
        index, queries with nothing relevant count as 0), computed from
        per-shard histograms without gathering the database (see Notes).

        Parameters
        ----------
        X : array-like or dask array of shape (n_queries, n_bytes), dtype uint8
            Query codes.
        y : array-like or dask array of shape (n_queries,) or (n_queries, n_labels)
            Labels of the queries.

        Returns
        -------
        score : float
            MAP, between 0 and 1.
        """
        self._check_fitted_with_y("score")
        if X is None:
            raise ValueError("score() needs query codes X.")
        blocks, _ = self._query_blocks(X)
        labels = _label_blocks(
            y,
            [n for _, _, n in blocks],
            "{n_codes} query codes but {n_labels} query labels.",
            database=self._labels[0],
        )
        n_bins = 8 * self.n_features_in_ + 1
        sums, n_relevant = [], []
        for (codes, _, n_rows), block_labels in zip(blocks, labels, strict=True):
            if n_rows == 0:
                continue
            block_labels = delayed(block_labels)  # one copy for all the tasks
            histograms = [
                delayed(_shards.shard_histograms)(shard, codes, block_labels, n_bins)
                for shard in self._shards
            ]
            ranks, relevant = delayed(_shards.rank_offsets, nout=2)(*histograms)
            sums.append(
                [
                    delayed(_shards.shard_precision_sums)(
                        shard, codes, block_labels, ranks[s]
                    )
                    for s, shard in enumerate(self._shards)
                ]
            )
            n_relevant.append(relevant)
        sums, n_relevant = dask.compute(sums, n_relevant)
        average_precision = [
            np.where(r > 0, sum(s) / np.maximum(r, 1), 0.0)
            for s, r in zip(sums, n_relevant, strict=True)
        ]
        return float(np.mean(np.concatenate(average_precision)))

    def _has_labels(self):
        return self._labels is not None


def plan_radii(kth, last, costs, scan, round_cost):
    """Radii of the k-nearest rounds of least expected cost per query.

    A round at radius ``r`` costs ``costs[r]`` for each query still pending
    (its k-th distance over the previous radius) and ``round_cost``; the last
    round, the shards' k nearest, costs what each query left costs there.
    Queries are expected to be like the sample queries, and one more: a query
    that no radius settles (every code but within ``8 * n_bytes``) and that
    costs a ``scan`` in the last round, so that the plan never counts on
    what the sample did not see. Minimised by dynamic programming over the
    last radius searched.

    Parameters
    ----------
    kth : ndarray of shape (n_sample,)
        k-th neighbour distances of the sample queries.
    last : ndarray of shape (n_sample,)
        Their costs in the last round.
    costs : ndarray of shape (n_bits + 1,)
        Cost of one query's radius search at each radius.
    scan : float
        Cost of one query's scan of the database.
    round_cost : float
        Cost of one more round, per query.

    Returns
    -------
    radii : list of int
        Increasing radii; empty when the last round alone costs least.
    """
    n_radii = len(costs)
    # State j: the radii up to j - 1 searched (j = 0: none yet).
    pending = kth[:, None] > np.arange(-1, n_radii)
    share = (pending.sum(axis=0) + 1) / (len(kth) + 1)
    best = (last @ pending + scan) / (len(kth) + 1)  # expected cost, ending now
    share[-1] = best[-1] = 0.0  # within 8 * n_bytes of a query: every code
    following = np.full(n_radii + 1, -1)
    for j in range(n_radii - 1, -1, -1):
        options = share[j] * costs[j:] + round_cost + best[j + 1 :]
        radius = j + int(np.argmin(options))
        if options[radius - j] < best[j]:
            best[j], following[j] = options[radius - j], radius
    radii, j = [], 0
    while following[j] >= 0:
        radii.append(int(following[j]))
        j = radii[-1] + 1
    return radii


def _label_blocks(y, row_chunks, mismatch, database=None):
    """Labels as one block (an array, or a delayed block) per row chunk.

    ``mismatch`` is the message for a wrong number of labels, formatted with
    ``n_codes`` and ``n_labels``; ``database`` is the shape of one database
    label row, which query labels must match.
    """
    if is_dask_collection(y):
        labels = aligned_labels(y, row_chunks)
        if labels.ndim == 2 and labels.shape[1] == 1:
            # What check_labels does, before the blocks reach the workers.
            warnings.warn(
                "A column-vector y was passed when a 1-D array was expected; it "
                "is read as class labels. Pass y.ravel() to avoid this warning.",
                DataConversionWarning,
                stacklevel=3,
            )
            labels = labels.ravel().rechunk((row_chunks,))
        shape, blocks = labels.shape[1:], list(labels.to_delayed().ravel())
    else:
        labels = check_labels(y)
        if len(labels) != sum(row_chunks):
            raise ValueError(
                mismatch.format(n_codes=sum(row_chunks), n_labels=len(labels))
            )
        shape = labels.shape[1:]
        blocks = np.split(labels, np.cumsum(row_chunks)[:-1])
    if database is not None and len(shape) != len(database):
        raise ValueError(
            "Query and database labels must both be 1-D class labels or both be "
            f"2-D indicator matrices, got {len(shape) + 1}-D and "
            f"{len(database) + 1}-D."
        )
    if database is not None and shape != database:
        raise ValueError(
            f"Query and database labels have {shape[0]} and {database[0]} label "
            "columns; they must match."
        )
    return blocks


def _rows(values, blocks, tail, dtype):
    """One Dask array of the delayed per-block ``values``, with the blocks'
    row chunks (``None`` for an empty block)."""
    row_chunks = tuple(n for _, _, n in blocks)
    array = da.concatenate(
        [
            da.from_delayed(value, (n, *tail), dtype=dtype)
            for value, n in zip(values, row_chunks, strict=True)
            if n
        ]
    )
    # Concatenation drops empty blocks; put them back, so that the answer's
    # chunks are the queries' (an alias per block, no copy).
    return array.rechunk((row_chunks, *((size,) for size in tail)))


def _item(part, i):
    return None if part is None else part[i]


def _objects(part, i):
    """Per-query object array of item ``i`` of a merged CSR triple."""
    return None if part is None else delayed(split_runs)(part[i], part[2])
