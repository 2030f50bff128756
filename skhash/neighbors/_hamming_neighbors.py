"""Exact nearest-neighbour search in Hamming space over packed codes."""

import threading
from numbers import Integral

import numpy as np
from joblib import effective_n_jobs
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._supervision import check_labels
from ..codes import check_codes_dtype
from ..utils._param_validation import Interval, check_count
from ._index import drop_self, engine_class, resolve
from ._snapshot import Snapshot
from ._threads import max_threads

__all__ = ["HammingNeighbors"]


class HammingNeighbors(BaseEstimator):
    """Exact k-nearest and radius neighbours of packed binary codes.

    Shaped like :class:`sklearn.neighbors.NearestNeighbors`, with the Hamming
    distance between packed codes (see :mod:`skhash.codes`) as an integer number
    of differing bits. Results are exact; neighbours at equal distance are
    ordered by database index.

    Fitted with labels, it also predicts labels by a vote of the neighbours and
    scores retrieval (MAP), so that a ``Pipeline`` of a hasher and
    ``HammingNeighbors`` can be tuned with ``GridSearchCV``.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours of :meth:`kneighbors` and :meth:`predict`.
    radius : int, default=2
        Hamming radius of :meth:`radius_neighbors` (distances ``<= radius``).
    algorithm : {"auto", "brute", "multi_index"}, default="auto"
        Search method, exact in every case. ``"brute"`` scans the whole
        database with the backend. ``"multi_index"`` probes multi-index hash
        tables (compiled, on the CPU, whatever the backend) and checks only
        the codes they return: for a radius, the buckets the pigeonhole
        principle requires; for k nearest, buckets at growing radii until the
        k-th distance is certain. Much faster than a scan when neighbours are
        a few bits away. ``"auto"`` (with the ``"numba"`` backend; otherwise
        it scans) picks multi-index for a radius when its estimated cost is
        below a scan's, and for k nearest tries it on a sample of the queries
        with one scan's cost as budget per query (see Notes).
    backend : {"auto", "numba", "numpy", "faiss", "torch"}, default="auto"
        Search engine, all exact with the same results. ``"numba"``: compiled
        popcount scans (the fastest on CPUs). ``"numpy"``: the simple
        reference implementation. ``"faiss"``: FAISS ``IndexBinaryFlat`` (needs
        ``faiss-cpu``, the ``skhash[faiss]`` extra). ``"torch"``: matrix
        products on ``device``, for GPUs. ``"auto"`` means ``"numba"``, or
        ``"torch"`` when ``device="cuda"``.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Device of the ``"torch"`` backend; ``"auto"`` is CUDA when available.
        ``"cuda"`` with another backend, or without a GPU, is an error.
    n_jobs : int, default=None
        Threads searching query batches in parallel. ``None`` means 1 unless in
        a :obj:`joblib.parallel_backend` context; ``-1`` means all processors.
        More threads than processors are not started. Results do not depend
        on it.

    Attributes
    ----------
    n_features_in_ : int
        Bytes per code seen during fit.
    n_samples_fit_ : int
        Number of codes in the database.
    classes_ : ndarray of shape (n_classes,)
        Class labels, when fitted with 1-D ``y``.
    backend_ : str
        The backend in use: ``"numba"``, ``"numpy"``, ``"faiss"`` or ``"torch"``.
    device_ : str
        The device of the search: ``"cpu"`` or ``"cuda"``.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : The same interface for real vectors.
    skhash.metrics.mean_average_precision : The metric behind :meth:`score`.

    Notes
    -----
    Codes must be ``uint8`` arrays from a hasher's ``transform`` or
    :func:`skhash.codes.pack_codes`, as everywhere in skhash (see
    :func:`skhash.codes.check_codes`). Boolean arrays of bits are rejected
    rather than read as bytes; a ``uint8`` array is always read as packed
    bytes, whatever its values.

    The search keeps memory bounded: no queries x database matrix is built.
    The ``"numba"`` kernels select each query's neighbours during the scan
    (distances are integers ``0..n_bits``, so a histogram of a small
    candidate buffer bounds what can still enter), compile on first use
    (cached on disk by numba, never at import; see
    :func:`skhash.neighbors.warm_up`) and run ``n_jobs`` threads.

    Multi-index hashing [1]_ cuts the ``8 * n_bytes`` bits into ``m``
    substrings of about ``log2(n_samples_fit)`` bits, each indexing a hash
    table; by pigeonhole, a code within radius ``r = m * r' + a`` differs from
    the query by at most ``r'`` bits on one of ``a + 1`` substrings or by at
    most ``r' - 1`` on another, so probing those buckets finds every
    neighbour. Tables are built on first use, kept, and saved with the
    estimator (pickle, joblib, skops); loading checks them against the codes
    (ranges, permutations, a digest) and raises ``ValueError`` for a damaged
    or altered file. The ``"auto"`` rule counts cost in
    scanned words: a scan reads
    ``n_samples_fit * n_words``; multi-index pays 64 per bucket probe and per
    candidate plus the candidate's words, with the candidates per probe
    estimated from the first table's bucket sizes (``sum(size ** 2) /
    n_samples_fit``, so clustered codes count as the expensive case they
    are). It picks multi-index when that is below the scan.

    For k nearest, multi-index search probes every table at 0, 1, 2, ...
    flipped bits; a code not yet found after round ``rho`` differs in more
    than ``rho`` bits on every substring, so once the k-th distance found is
    below that bound the answer, ties included, is certain [2]_. Under
    ``"auto"`` each query may spend one scan's cost (the same units) and is
    scanned instead when it would spend more; when more than a quarter of
    the first 32 queries of a call are, the rest of the call and later calls
    with as large a ``k`` scan directly. Uniform random codes at large ``k``
    are the scan's case; learned codes, whose neighbours are a few bits
    away, are the index's.

    References
    ----------
    .. [1] M. Norouzi, A. Punjani and D. J. Fleet, "Fast search in Hamming
       space with multi-index hashing", CVPR 2012.
    .. [2] M. Norouzi, A. Punjani and D. J. Fleet, "Fast exact search in
       Hamming space with multi-index hashing", IEEE TPAMI 36(6), 2014.

    Examples
    --------
    >>> from skhash import HammingNeighbors, pack_codes
    >>> database = pack_codes([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]])
    >>> nn = HammingNeighbors(n_neighbors=2).fit(database)
    >>> distances, indices = nn.kneighbors(pack_codes([[0, 0, 1, 1]]))
    >>> distances, indices
    (array([[1, 2]], dtype=int32), array([[2, 0]]))
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "radius": [Interval(Integral, 0, None, closed="left")],
        "algorithm": [StrOptions({"auto", "brute", "multi_index"})],
        "backend": [StrOptions({"auto", "numba", "numpy", "faiss", "torch"})],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
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
    ):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.algorithm = algorithm
        self.backend = backend
        self.device = device
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Index a database of codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bytes), dtype uint8
            Packed codes. A database larger than memory can be a file mapped
            with ``np.load(path, mmap_mode="r")``: it is searched in place,
            not copied (codes a multiple of 64 bits wide; the scan of wider
            codes keeps a word-major copy). Only the multi-index tables, of
            indices, take memory. The codes are used in place, not copied:
            they must not change after fit. Each search checks the file's
            size and modification time and a sample of rows, and raises
            ``ValueError`` when they changed; a file truncated during a
            search kills the process (``SIGBUS``), as any mapping does.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Labels of the codes, needed by :meth:`predict` and :meth:`score`.

        Returns
        -------
        self : HammingNeighbors
            The fitted estimator.
        """
        self.backend_, self.device_ = resolve(self.backend, self.device)
        self._fit_X = self._validate_codes(X, reset=True)
        self.n_samples_fit_ = len(self._fit_X)
        self._snapshot = Snapshot(self._fit_X)
        # Search engines over _fit_X (see _index.py), built on first use and
        # never pickled. The lock lets threads searching one fitted object
        # build each just once.
        self._engines = {}
        self._engines_lock = threading.Lock()
        self._fit_y = None
        if y is not None:
            y = check_labels(y)
            if len(y) != self.n_samples_fit_:
                raise ValueError(
                    f"X has {self.n_samples_fit_} codes but y has {len(y)} labels."
                )
            self._fit_y = y
            if y.ndim == 1:
                self.classes_ = np.unique(y)
        return self

    def _validate_codes(self, X, *, reset):
        if reset or not _is_plain_codes(X, self.n_features_in_):
            # No finiteness check: codes are uint8, and NaN in a float array is
            # a dtype error first ("contains NaN" would hide what is wrong).
            X = validate_data(
                self, X, dtype=None, reset=reset, order="C", ensure_all_finite=False
            )
        check_codes_dtype(X.dtype, "X")
        return X

    def _queries(self, X):
        """Validated query codes, or None when the database queries itself."""
        check_is_fitted(self)
        return None if X is None else self._validate_codes(X, reset=False)

    def _engine(self, name):
        """The engine ``name`` over the database, built on first use, then kept.

        Every search gets its engines here, after the check that the database
        still holds the codes of fit (see ``_snapshot.py``).
        """
        self._snapshot.check(self._fit_X)
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._engines_lock:
            if name not in self._engines:
                params = {"device": self.device_} if name == "torch" else {}
                self._engines[name] = engine_class(name)(self._fit_X, **params)
            return self._engines[name]

    def _n_threads(self):
        # The scans are compute-bound: threads beyond the processors only wait.
        return min(effective_n_jobs(self.n_jobs), max_threads())

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """Find the k nearest codes of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes. ``None``: every database code queries the others, not
            counting itself as its own neighbour.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors), dtype int32
            Hamming distances (numbers of differing bits), ascending; only when
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Database indices; equal distances in index order.
        """
        queries = self._queries(X)
        query_is_train = queries is None
        n_queries = self.n_samples_fit_ if query_is_train else len(queries)
        n_neighbors = check_count(
            self.n_neighbors if n_neighbors is None else n_neighbors, "n_neighbors"
        )
        available = self.n_samples_fit_ - query_is_train
        if n_neighbors > available:
            relation = "<" if query_is_train else "<="
            raise ValueError(
                f"Expected n_neighbors {relation} n_samples_fit, but n_neighbors = "
                f"{n_neighbors}, n_samples_fit = {self.n_samples_fit_}, "
                f"n_samples = {n_queries}"
            )
        distances, indices = self._kneighbors(queries, n_neighbors)
        return (distances, indices) if return_distance else indices

    def _kneighbors(self, queries, k):
        n_jobs = self._n_threads()
        scan = self._engine(self.backend_)
        if self.algorithm == "brute" or (
            self.algorithm == "auto" and self.backend_ != "numba"
        ):
            return scan.kneighbors(queries, k, n_jobs=n_jobs)
        index = self._engine("multi_index")
        if self.algorithm == "multi_index":
            return index.kneighbors(queries, k, n_jobs=n_jobs)
        if not index.built.all() and self._scan_is_cheaper(queries, k, index, scan):
            return scan.kneighbors(queries, k, n_jobs=n_jobs)
        distances, indices, left = index.kneighbors_or_leave(
            queries, k, n_jobs=n_jobs, budget=index.scan_cost()
        )
        rows = np.flatnonzero(left)
        if len(rows) == len(left):
            return scan.kneighbors(queries, k, n_jobs=n_jobs)
        if len(rows):  # the queries multi-index found too costly
            if queries is None:
                found = scan.kneighbors(self._fit_X[rows], k + 1, n_jobs=n_jobs)
                found = drop_self(*found, rows)
            else:
                found = scan.kneighbors(queries[rows], k, n_jobs=n_jobs)
            distances[rows], indices[rows] = found
        return distances, indices

    def _scan_is_cheaper(self, queries, k, index, scan):
        """Whether a k-nearest search under "auto" should scan rather than
        build the tables: decided on a sample of the queries, whose k-th
        distances a scan finds (see ``MultiIndex.prefers_scan``)."""
        if k >= index.scan_from_k:
            return True
        n_jobs = self._n_threads()
        if queries is None:
            rows = np.arange(min(self.n_samples_fit_, index.knn_sample))
            found = scan.kneighbors(self._fit_X[rows], k + 1, n_jobs=n_jobs)
            distances = drop_self(*found, rows)[0]
        else:
            sample = queries[: index.knn_sample]
            distances = scan.kneighbors(sample, k, n_jobs=n_jobs)[0]
        return index.prefers_scan(distances[:, -1], k)

    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        """Find the codes within a Hamming radius of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes. ``None``: every database code queries the others.
        radius : int, default=None
            Codes at distance ``<= radius`` are returned; defaults to the
            constructor's.
        return_distance : bool, default=True
            Whether to return the distances.
        sort_results : bool, default=False
            Sort each query's neighbours by (distance, index); otherwise they
            are in index order.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,), dtype object
            Arrays of int32 distances; only when ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries,), dtype object
            Arrays of database indices.
        """
        queries = self._queries(X)
        radius = self._check_radius(radius)
        if sort_results and not return_distance:
            raise ValueError("return_distance must be True if sort_results is True.")

        distances, indices, indptr = self._radius_neighbors(
            queries, radius, sort_results
        )
        indices = _split(indices, indptr)
        if not return_distance:
            return indices
        return _split(distances, indptr), indices

    def _check_radius(self, radius):
        radius = check_count(
            self.radius if radius is None else radius, "radius", minimum=0
        )
        # No two codes differ in more bits than a code has: a larger radius
        # means every code, and must cost no more than that.
        return min(radius, 8 * self.n_features_in_)

    def _uses_multi_index(self, radius):
        """Whether a radius search goes through the multi-index tables."""
        if self.algorithm != "auto":
            return self.algorithm == "multi_index"
        return self.backend_ == "numba" and (
            self._engine("multi_index").cheaper_than_scan(radius)
        )

    def _radius_neighbors(self, queries, radius, by_dist):
        """The CSR triple (distances, indices, indptr) of the radius search."""
        name = "multi_index" if self._uses_multi_index(radius) else self.backend_
        return self._engine(name).radius_neighbors(
            queries, radius, n_jobs=self._n_threads(), by_dist=by_dist
        )

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph of the k nearest neighbours.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes; ``None`` uses the database, excluding each code itself.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the constructor's.
        mode : {"connectivity", "distance"}, default="connectivity"
            Ones, or Hamming distances (explicit zeros are kept).

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix; ``graph[i, j]`` is set when ``j`` is a neighbour of ``i``.
        """
        _check_mode(mode)
        distances, indices = self.kneighbors(X, n_neighbors)
        return knn_graph(distances, indices, self.n_samples_fit_, mode)

    def radius_neighbors_graph(
        self, X=None, radius=None, mode="connectivity", sort_results=False
    ):
        """Sparse graph of the neighbours within a Hamming radius.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8, default=None
            Query codes; ``None`` uses the database, excluding each code itself.
        radius : int, default=None
            Hamming radius; defaults to the constructor's.
        mode : {"connectivity", "distance"}, default="connectivity"
            Ones, or Hamming distances (explicit zeros are kept).
        sort_results : bool, default=False
            Order each row's entries by (distance, index).

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
            CSR matrix.
        """
        _check_mode(mode)
        queries = self._queries(X)
        radius = self._check_radius(radius)
        distances, indices, indptr = self._radius_neighbors(
            queries, radius, sort_results
        )
        return radius_graph(distances, indices, indptr, self.n_samples_fit_, mode)

    def predict(self, X):
        """Labels voted by the ``n_neighbors`` nearest database codes.

        1-D labels: the most frequent class among the neighbours (ties go to
        the smallest class). Multi-label indicators: each label is on when more
        than half of the neighbours have it.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_labels)
        """
        self._check_fitted_with_y("predict")
        indices = self.kneighbors(X, return_distance=False)
        return vote(self._fit_y[indices], getattr(self, "classes_", None))

    def score(self, X, y):
        """Mean average precision of the queries against the fitted database.

        Each query ranks the whole database by Hamming distance (ties by
        index); relevant database codes share a label with it. See
        :func:`skhash.metrics.mean_average_precision` (``k=None``, stable
        ties, queries with nothing relevant count as 0).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bytes), dtype uint8
            Query codes.
        y : array-like of shape (n_queries,) or (n_queries, n_labels)
            Labels of the queries.

        Returns
        -------
        score : float
            MAP, between 0 and 1.
        """
        from ..metrics import mean_average_precision

        self._check_fitted_with_y("score")
        X = self._validate_codes(X, reset=False)
        return mean_average_precision(X, self._fit_X, y, self._fit_y)

    def get_database(self):
        """The fitted database: its codes and their labels.

        Scorers and displays read the database of a fitted search through
        this method, so that they need not know the class.

        Returns
        -------
        codes : ndarray of shape (n_samples_fit, n_bytes), dtype uint8
            The codes given to :meth:`fit`.
        labels : ndarray of shape (n_samples_fit,) or (n_samples_fit, n_labels)
            Their labels, or ``None`` when fitted without ``y``.
        """
        check_is_fitted(self)
        return self._fit_X, self._fit_y

    def _check_fitted_with_y(self, method):
        check_is_fitted(self)
        if self._fit_y is None:
            raise ValueError(
                f"{method}() needs the database labels: fit HammingNeighbors with "
                "fit(codes, y)."
            )

    def __getstate__(self):
        # Engines are rebuilt rather than saved (FAISS indexes and CUDA tensors
        # do not pickle portably), except the multi-index tables: 1 to 3 s per
        # 10^7 codes to build, so a large service restarts with them.
        state = dict(super().__getstate__())  # a copy: never mutate the live object
        state.pop("_engines_lock", None)
        # Taken again from the codes loaded: a file mapped here means nothing
        # where the estimator is loaded (pickle copies mapped codes anyway).
        state.pop("_snapshot", None)
        multi_index = state.get("_engines", {}).get("multi_index")
        if multi_index is not None and multi_index.built.any():
            state["_multi_index_tables"] = multi_index.saved_tables()
        if "_engines" in state:
            state["_engines"] = {}
        return state

    def __setstate__(self, state):
        # The state may come from a damaged or crafted file (skops loads the
        # arrays of any file whose types are trusted), and the compiled
        # kernels index with it unchecked: what is kept must be consistent,
        # or loading fails here rather than a search later.
        state = dict(state)
        tables = state.pop("_multi_index_tables", None)
        super().__setstate__(state)
        if "_fit_X" not in state:
            if tables is not None:
                raise ValueError(_DAMAGED.format("tables without a database"))
            return
        self._check_loaded()
        self._engines = {}
        self._engines_lock = threading.Lock()
        self._snapshot = Snapshot(self._fit_X)
        if tables is not None:
            from ._multi_index import MultiIndex

            self._engines["multi_index"] = MultiIndex(self._fit_X, tables)

    def _check_loaded(self):
        """Raise ValueError unless the fitted attributes agree with each other."""
        X, y = self._fit_X, self._fit_y
        if not (isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim == 2):
            raise ValueError(_DAMAGED.format("a database that is not packed codes"))
        self._fit_X = np.ascontiguousarray(X)
        if not (len(X) >= 1 and X.shape[1] >= 1):
            raise ValueError(_DAMAGED.format("an empty database"))
        if self.n_samples_fit_ != len(X) or self.n_features_in_ != X.shape[1]:
            raise ValueError(
                _DAMAGED.format(
                    f"n_samples_fit_={self.n_samples_fit_!r} and n_features_in_="
                    f"{self.n_features_in_!r} for codes of shape {X.shape}"
                )
            )
        if (self.backend_, self.device_) not in _RESOLVED:
            raise ValueError(_DAMAGED.format(f"backend_={self.backend_!r}"))
        if y is not None:
            if not isinstance(y, np.ndarray) or y.shape[:1] != X.shape[:1]:
                raise ValueError(_DAMAGED.format("labels that do not fit the codes"))
            check_labels(y)
        classes = getattr(self, "classes_", None)
        expected = np.unique(y) if y is not None and y.ndim == 1 else None
        if (classes is None) != (expected is None) or (
            expected is not None and not np.array_equal(classes, expected)
        ):
            raise ValueError(_DAMAGED.format("classes_ that are not the labels'"))


_DAMAGED = (
    "The saved HammingNeighbors state has {}; the file is damaged or was altered."
)
# (backend_, device_) pairs that fit can resolve.
_RESOLVED = {
    ("numba", "cpu"), ("numpy", "cpu"), ("faiss", "cpu"),
    ("torch", "cpu"), ("torch", "cuda"),
}  # fmt: skip


def vote(neighbour_labels, classes):
    """Labels voted by each query's neighbours (``neighbour_labels``, one row
    per query): the most frequent of the sorted ``classes`` (ties to the
    smallest), or, for indicator matrices, each label that more than half of
    the neighbours have."""
    if neighbour_labels.ndim == 3:
        return (neighbour_labels.mean(axis=1) > 0.5).astype(neighbour_labels.dtype)
    class_ids = np.searchsorted(classes, neighbour_labels)
    votes = np.zeros((len(neighbour_labels), len(classes)), dtype=np.intp)
    np.add.at(votes, (np.arange(len(neighbour_labels))[:, None], class_ids), 1)
    return classes[votes.argmax(axis=1)]


def knn_graph(distances, indices, n_samples_fit, mode):
    """The CSR graph of k-nearest results, ``mode`` as in ``kneighbors_graph``."""
    n_queries, k = indices.shape
    data = np.ones(indices.size) if mode == "connectivity" else distances.ravel()
    indptr = np.arange(0, n_queries * k + 1, k)
    return csr_matrix((data, indices.ravel(), indptr), shape=(n_queries, n_samples_fit))


def radius_graph(distances, indices, indptr, n_samples_fit, mode):
    """The CSR graph of a radius search's CSR triple, ``mode`` as in
    ``radius_neighbors_graph``."""
    data = np.ones(len(indices)) if mode == "connectivity" else distances
    return csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, n_samples_fit))


def _check_mode(mode):
    if mode not in ("connectivity", "distance"):
        raise ValueError(f'mode must be "connectivity" or "distance", got {mode!r}.')


def _is_plain_codes(X, n_bytes):
    """Whether X is a C-ordered uint8 array of queries that scikit-learn's
    validation would pass unchanged. It costs ~0.3 ms a call, more than a
    small radius search: such queries skip it, anything else goes through it
    (and gets its errors)."""
    return (
        type(X) is np.ndarray
        and X.dtype == np.uint8
        and X.ndim == 2
        and X.shape[0] > 0
        and X.shape[1] == n_bytes
        and X.flags.c_contiguous
    )


def _split(values, indptr):
    """Object array of the runs ``values[indptr[i]:indptr[i + 1]]`` (views).

    Making a view costs ~0.3 us, as much as a small-radius search, and at
    small radii many queries find nothing: those share one empty array.
    """
    out = np.empty(len(indptr) - 1, dtype=object)
    out.fill(np.empty(0, values.dtype))
    bounds = indptr.tolist()  # plain slicing beats np.split ~8x here
    for i in np.flatnonzero(np.diff(indptr)).tolist():
        out[i] = values[bounds[i] : bounds[i + 1]]
    return out
