"""The search core: exact Hamming search over one database, beneath both
``HammingNeighbors`` classes (as scikit-learn's ``BallTree`` is beneath
``NearestNeighbors``).

A :class:`HammingIndex` holds the codes, their labels and the search engines
built over them (see ``_index.py``), and owns the automatic choice between a
scan and the multi-index tables, with its cost estimates. It is not an
estimator: it answers with the database's own row numbers, takes the rows that
each query must not count explicitly (``exclude``), and knows nothing of
``X=None``, query blocks or shards, which the estimators above it handle.
"""

import threading

import numpy as np
from joblib import effective_n_jobs

from .._supervision import check_labels
from ..codes import check_codes
from ..utils import _csr as csr
from ..utils._param_validation import check_count
from ._index import drop_self, engine_class, resolve
from ._snapshot import Snapshot
from ._threads import max_threads

__all__ = ["HammingIndex"]

ALGORITHMS = ("auto", "brute", "multi_index")


class HammingIndex:
    """Exact k-nearest and radius search over a database of packed codes.

    Parameters
    ----------
    codes : array-like of shape (n_codes, n_bytes), dtype uint8
        The database, used in place (a file mapped with ``np.load(path,
        mmap_mode="r")`` stays on disk); it must not change afterwards.
    labels : array-like of shape (n_codes,) or (n_codes, n_labels), default=None
        Labels of the codes, kept for the estimators' ``predict`` and ``score``.
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        As in :class:`skhash.HammingNeighbors`; each search may override it.
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        The scan's engine, as in :class:`skhash.HammingNeighbors`.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of the ``"torch"`` backend.
    n_jobs : int, default=None
        Threads of each search (joblib's convention); each search may
        override it.

    Attributes
    ----------
    codes : ndarray of shape (n_codes, n_bytes), dtype uint8
        The database.
    labels : ndarray or None
        Their labels.
    backend, device : str
        The backend and device resolved on this machine.

    See Also
    --------
    skhash.HammingNeighbors : The estimator over it.

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> from skhash.neighbors import HammingIndex
    >>> index = HammingIndex(pack_codes([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]]))
    >>> distances, indices = index.kneighbors(pack_codes([[0, 0, 1, 1]]), 2)
    >>> distances, indices
    (array([[1, 2]], dtype=int32), array([[2, 0]]))
    >>> index.kneighbors(index.codes, 1, exclude=[0, 1, 2])[1].ravel()
    array([2, 2, 0])
    """

    def __init__(
        self,
        codes,
        labels=None,
        *,
        algorithm="auto",
        backend="auto",
        device="auto",
        n_jobs=None,
    ):
        self.algorithm = _check_algorithm(algorithm)
        self.codes = check_codes(codes)
        if len(self.codes) == 0:
            raise ValueError("A HammingIndex needs at least one code.")
        if labels is not None:
            labels = check_labels(labels)
            if len(labels) != len(self.codes):
                raise ValueError(
                    f"X has {len(self.codes)} codes but y has {len(labels)} labels."
                )
        self.labels = labels
        self.backend, self.device = resolve(backend, device)
        self.n_jobs = n_jobs
        self._start()

    def _start(self):
        """What is derived from the codes and never saved."""
        # Engines are built on first use; the lock lets threads searching at
        # once build each just once.
        self._engines = {}
        self._lock = threading.Lock()
        self._snapshot = Snapshot(self.codes)

    @property
    def n_codes(self):
        return len(self.codes)

    @property
    def n_bits(self):
        return 8 * self.codes.shape[1]

    @property
    def nbytes(self):
        """Bytes held: codes, labels and every engine's arrays built so far."""
        arrays = [self.codes, self.labels]
        for engine in list(self._engines.values()):
            arrays.extend(vars(engine).values())
        return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))

    def check_queries(self, queries):
        """Queries as C-contiguous uint8 codes as wide as the database's."""
        if queries is not self.codes and not is_plain_codes(
            queries, self.codes.shape[1]
        ):
            queries = check_codes(queries, name="X")
            if queries.shape[1] != self.codes.shape[1]:
                raise ValueError(
                    f"X has {queries.shape[1]} features, but the index is "
                    f"expecting {self.codes.shape[1]} features as input."
                )
        return queries

    def kneighbors(self, queries, k, *, exclude=None, algorithm=None, n_jobs=None):
        """The ``k`` nearest codes of each query, ordered by (distance, row).

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes; the database's own ``codes`` for a self-search.
        k : int
            Neighbours per query, at most the codes a query may count.
        exclude : array-like of shape (n_queries,), default=None
            A database row per query that it must not count (its own code
            when the queries are database codes), or None.
        algorithm, n_jobs : default=None
            Overrides of the index's own.

        Returns
        -------
        distances : ndarray of shape (n_queries, k), dtype int32
        indices : ndarray of shape (n_queries, k), dtype intp
        """
        queries, exclude = self._start_search(queries, exclude)
        available = self.n_codes - (exclude is not None)
        if check_count(k, "k") > available:
            raise ValueError(f"k must be from 1 to {available}, got {k}.")
        found = self._kneighbors(
            queries, k + (exclude is not None), self._algorithm(algorithm),
            self._threads(n_jobs),
        )  # fmt: skip
        return found if exclude is None else drop_self(*found, exclude)

    def _kneighbors(self, queries, k, algorithm, n_jobs):
        scan = self._engine(self.backend)
        if not self.may_use_tables(algorithm):
            return scan.kneighbors(queries, k, n_jobs=n_jobs)
        index = self._engine("multi_index")
        if algorithm == "multi_index":
            return index.kneighbors(queries, k, n_jobs=n_jobs)
        if not index.has_tables and self._scan_is_cheaper(queries, k, index, scan):
            return scan.kneighbors(queries, k, n_jobs=n_jobs)
        distances, indices, left = index.kneighbors_or_leave(
            queries, k, n_jobs=n_jobs, budget=index.scan_cost()
        )
        rows = np.flatnonzero(left)
        if len(rows) == len(left):
            return scan.kneighbors(queries, k, n_jobs=n_jobs)
        if len(rows):  # the queries multi-index found too costly
            found = scan.kneighbors(queries[rows], k, n_jobs=n_jobs)
            distances[rows], indices[rows] = found
        return distances, indices

    def _scan_is_cheaper(self, queries, k, index, scan):
        """Whether a k-nearest search under "auto" should scan rather than
        build the tables: decided on a sample of the queries, whose k-th
        distances a scan finds (see ``MultiIndex.prefers_scan``)."""
        if k >= index.scan_from_k:
            return True
        sample = queries[: index.knn_sample]
        distances, _ = scan.kneighbors(sample, k, n_jobs=self._threads(None))
        return index.prefers_scan(distances[:, -1], k)

    def radius_neighbors(
        self, queries, radius, *, exclude=None, sort=False, algorithm=None, n_jobs=None
    ):
        """The codes within ``radius`` of each query, as a CSR triple.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes.
        radius : int
            Codes at distance ``<= radius`` are found.
        exclude : array-like of shape (n_queries,), default=None
            As in :meth:`kneighbors`.
        sort : bool, default=False
            Each query's neighbours by (distance, row), else by row.
        algorithm, n_jobs : default=None
            Overrides of the index's own.

        Returns
        -------
        distances : ndarray of shape (n_found,), dtype int32
        indices : ndarray of shape (n_found,), dtype intp
        indptr : ndarray of shape (n_queries + 1,), dtype int64
            Query ``i``'s neighbours are ``indices[indptr[i]:indptr[i + 1]]``.
        """
        queries, exclude = self._start_search(queries, exclude)
        # No two codes differ in more bits than a code has: a larger radius
        # means every code, and must cost no more than that.
        radius = min(check_count(radius, "radius", minimum=0), self.n_bits)
        name = self.backend
        n_jobs = self._threads(n_jobs)
        if self.uses_multi_index(radius, self._algorithm(algorithm), n_jobs):
            name = "multi_index"
        found = self._engine(name).radius_neighbors(
            queries, radius, n_jobs=n_jobs, by_dist=sort
        )
        return found if exclude is None else drop_rows(*found, exclude)

    def may_use_tables(self, algorithm=None):
        """Whether searches may go through the multi-index tables: always with
        ``"multi_index"``, and under ``"auto"`` with the compiled kernels
        (whose engine the tables are; the other backends always scan)."""
        algorithm = self._algorithm(algorithm)
        return algorithm == "multi_index" or (
            algorithm == "auto" and self.backend == "numba"
        )

    def uses_multi_index(self, radius, algorithm=None, n_jobs=None):
        """Whether a radius search goes through the multi-index tables (under
        ``"auto"``, the first table is built, or mapped tables checked, on
        ``n_jobs`` threads to decide)."""
        algorithm = self._algorithm(algorithm)
        if algorithm != "auto":
            return algorithm == "multi_index"
        return self.may_use_tables(algorithm) and (
            self._engine("multi_index").cheaper_than_scan(
                radius, n_jobs=self._threads(n_jobs)
            )
        )

    def search_costs(self):
        """Estimated costs of one query, in scanned words (see
        ``MultiIndex.estimated_cost``): the radius search at each radius
        ``0..n_bits``, the k-nearest search whose k-th neighbour is at each
        of these distances, and a scan. Under ``"auto"`` either search scans
        when the index would cost more; an index that never uses its tables
        scans at every radius."""
        scan = float(self.n_codes * -(-self.codes.shape[1] // 8))
        if not self.may_use_tables():
            every = np.full(self.n_bits + 1, scan)
            return every, every.copy(), scan
        index = self._engine("multi_index")
        radius = np.array([index.estimated_cost(r)[0] for r in range(self.n_bits + 1)])
        knn = index.knn_over_radius * radius
        if self.algorithm == "auto":
            radius, knn = np.minimum(radius, scan), np.minimum(knn, scan)
        return radius, knn, scan

    def prepare(self):
        """Compile the kernels and fill the tables that searches may use, now
        rather than in the first search (a Dask shard does it on its worker).
        The engines are searched directly, so the automatic choices stay
        untouched."""
        probe = self.codes[:1]
        names = [self.backend, *(["multi_index"] if self.may_use_tables() else [])]
        for name in names:
            engine = self._engine(name)
            engine.kneighbors(probe, 1, n_jobs=1)
            engine.radius_neighbors(probe, 0, n_jobs=1, by_dist=False)
        return self

    def _tables_to_save(self):
        """The multi-index engine whose tables are saved with the codes (see
        ``MultiIndex.write_tables``): when searches may use the tables or some
        are built already; otherwise None. Builds nothing."""
        if "multi_index" not in self._engines and not self.may_use_tables():
            return None
        return self._engine("multi_index")

    def _map_tables(self, offsets, ids, per_probe=None):
        """Search with multi-index tables mapped from files rather than built;
        each is checked on its first use (see ``MultiIndex.map_tables``)."""
        engine = engine_class("multi_index")(self.codes)
        engine.map_tables(offsets, ids, per_probe)
        with self._lock:
            self._engines["multi_index"] = engine
            self._snapshot.watch(offsets)
            self._snapshot.watch(ids)

    def _start_search(self, queries, exclude):
        """A search's validated queries and excluded rows, once the codes are
        known to be those the engines were derived from (checked once a
        search, not once an engine)."""
        queries = self.check_queries(queries)
        exclude = self._check_exclude(exclude, len(queries))
        self._snapshot.check(self.codes)
        return queries, exclude

    def _engine(self, name):
        """The engine ``name``, built on first use, then kept."""
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._lock:
            if name not in self._engines:
                params = {"device": self.device} if name == "torch" else {}
                self._engines[name] = engine_class(name)(self.codes, **params)
            return self._engines[name]

    def _algorithm(self, algorithm):
        """A search's algorithm: the index's own unless overridden."""
        return self.algorithm if algorithm is None else _check_algorithm(algorithm)

    def _threads(self, n_jobs):
        # The scans are compute-bound: threads beyond the processors only wait.
        n_jobs = self.n_jobs if n_jobs is None else n_jobs
        return min(effective_n_jobs(n_jobs), max_threads())

    def _check_exclude(self, exclude, n_queries):
        if exclude is None:
            return None
        exclude = np.asarray(exclude)
        if exclude.shape != (n_queries,) or exclude.dtype.kind not in "iu":
            raise ValueError("exclude must hold one integer row per query.")
        return exclude

    def __getstate__(self):
        # Engines are rebuilt rather than saved (FAISS indexes and CUDA tensors
        # do not pickle portably), except the multi-index tables: 1 to 3 s per
        # 10^7 codes to build, so a large service restarts with them.
        state = dict(vars(self))
        for derived in ("_engines", "_lock", "_snapshot"):
            del state[derived]
        multi_index = self._engines.get("multi_index")
        if multi_index is not None and multi_index.built.any():
            state["multi_index_tables"] = multi_index.saved_tables()
        return state

    def __setstate__(self, state):
        # The state may come from a damaged or crafted file (skops loads the
        # arrays of any file whose types are trusted), and the compiled
        # kernels index with it unchecked: it must be consistent, or loading
        # fails here rather than a search later.
        state = dict(state)
        tables = state.pop("multi_index_tables", None)
        try:
            codes = state["codes"]
            if not (isinstance(codes, np.ndarray) and codes.dtype == np.uint8):
                raise ValueError("a database that is not packed codes")
            if codes.ndim != 2 or 0 in codes.shape:
                raise ValueError(f"a database of shape {codes.shape}")
            labels = state["labels"]
            if labels is not None:
                if not isinstance(labels, np.ndarray) or len(labels) != len(codes):
                    raise ValueError("labels that do not fit the codes")
                check_labels(labels)
            if state["algorithm"] not in ALGORITHMS:
                raise ValueError(f"algorithm={state['algorithm']!r}")
            if (state["backend"], state["device"]) not in _RESOLVED:
                raise ValueError(f"backend={state['backend']!r}")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(_DAMAGED.format(error)) from error
        state["codes"] = np.ascontiguousarray(codes)
        vars(self).update(state)
        self._start()
        if tables is not None:
            self._engines["multi_index"] = engine_class("multi_index")(
                self.codes, tables
            )


_DAMAGED = "The saved HammingIndex has {}; the file is damaged or was altered."
# (backend, device) pairs that resolve() can give.
_RESOLVED = {
    ("numba", "cpu"), ("numpy", "cpu"), ("faiss", "cpu"),
    ("torch", "cpu"), ("torch", "cuda"),
}  # fmt: skip


def _check_algorithm(algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
    return algorithm


def drop_rows(distances, indices, indptr, exclude):
    """A radius search's CSR triple less each query's ``exclude`` row."""
    keep = indices != exclude[csr.query_of(indptr)]
    return csr.keep_entries(distances, indices, indptr, keep)


def is_plain_codes(X, n_bytes):
    """Whether X is a C-ordered uint8 array of queries that validation would
    pass unchanged. Validating costs ~0.3 ms a call, more than a small radius
    search: such queries skip it, anything else goes through it."""
    return (
        type(X) is np.ndarray
        and X.dtype == np.uint8
        and X.ndim == 2
        and X.shape[0] > 0
        and X.shape[1] == n_bytes
        and X.flags.c_contiguous
    )
