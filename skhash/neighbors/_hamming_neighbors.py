"""Exact nearest-neighbour search in Hamming space over packed codes."""

import threading
from numbers import Integral

import numpy as np
from joblib import cpu_count, effective_n_jobs
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._supervision import check_labels
from ..codes import as_words
from ..utils._param_validation import Interval, check_count
from . import _backends, _brute

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
        Radius search method. ``"brute"`` scans the whole database with the
        backend. ``"multi_index"`` probes multi-index hash tables (compiled,
        on the CPU, whatever the backend) and checks only the codes they
        return; it is exact, and much faster than a scan for small radii.
        ``"auto"`` uses multi-index hashing with the ``"numba"`` backend when
        its estimated cost is below a scan's (see Notes), else ``"brute"``.
        k-nearest-neighbour search always scans.
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
    :func:`skhash.codes.pack_codes`. Arrays of 0/1 bits are rejected rather than
    being read as bytes.

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
    neighbour. Tables are built on first use and kept (not pickled). The
    ``"auto"`` rule counts cost in scanned words: a scan reads
    ``n_samples_fit * n_words``; multi-index pays 64 per bucket probe and per
    candidate plus the candidate's words, with the candidates per probe
    estimated from the first table's bucket sizes (``sum(size ** 2) /
    n_samples_fit``, so clustered codes count as the expensive case they
    are). It picks multi-index when that is below the scan.

    References
    ----------
    .. [1] M. Norouzi, A. Punjani and D. J. Fleet, "Fast search in Hamming
       space with multi-index hashing", CVPR 2012.

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
            Packed codes.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Labels of the codes, needed by :meth:`predict` and :meth:`score`.

        Returns
        -------
        self : HammingNeighbors
            The fitted estimator.
        """
        self.backend_, self.device_ = _backends.resolve(self.backend, self.device)
        self._fit_X = self._validate_codes(X, reset=True)
        self.n_samples_fit_ = len(self._fit_X)
        self._fit_words = _kernel_words(self._fit_X)
        # Structures derived from _fit_X on first use (word-major database,
        # FAISS index, torch tensors, multi-index tables); never pickled. The
        # lock lets threads searching one fitted object build each just once.
        self._derived = {}
        self._derived_lock = threading.Lock()
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
            X = validate_data(self, X, dtype=None, reset=reset, order="C")
        if X.dtype != np.uint8:
            if X.dtype == bool or np.isin(X, (0, 1)).all():
                raise ValueError(
                    f"X looks like unpacked bits (dtype {X.dtype}, values 0 and 1); "
                    "pack them with skhash.codes.pack_codes."
                )
            raise ValueError(
                "HammingNeighbors expects packed binary codes of dtype uint8, got "
                f"dtype {X.dtype}; encode X with a hasher's transform first."
            )
        # Packed codes with 7 of every 8 bits always zero are astronomically
        # unlikely; uint8 bits from unpack_codes look exactly like that.
        if X.shape[1] >= 8 and X.max(initial=0) == 1:
            raise ValueError(
                "X looks like unpacked bits (uint8 values 0 and 1 only); pack them "
                "with skhash.codes.pack_codes."
            )
        return X

    def _queries(self, X):
        """Query words, and whether the queries are the database itself."""
        check_is_fitted(self)
        if X is None:
            return self._fit_words, True
        return _kernel_words(self._validate_codes(X, reset=False)), False

    def _derived_structure(self, name):
        """A search structure built from the database on first use, then kept."""
        built = self._derived.get(name)
        if built is not None:
            return built
        with self._derived_lock:
            if name in self._derived:
                return self._derived[name]
            if name == "words_t":
                built = np.ascontiguousarray(self._fit_words.T)
            elif name == "faiss":
                built = _backends.faiss_index(self._fit_X)
            elif name == "torch":
                built = _backends.TorchDatabase(self._fit_X, self.device_)
            else:
                from ._multi_index import MultiIndex

                built = MultiIndex(self._fit_words, self._fit_X.shape[1])
            self._derived[name] = built
        return self._derived[name]

    def _n_threads(self):
        # The scans are compute-bound: threads beyond the processors only wait.
        return min(effective_n_jobs(self.n_jobs), cpu_count())

    def _query_codes(self, query_words):
        """Packed uint8 codes of query words (for the faiss and torch backends)."""
        return query_words.view(np.uint8)[:, : self._fit_X.shape[1]]

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
        query_words, query_is_train = self._queries(X)
        n_neighbors = check_count(
            self.n_neighbors if n_neighbors is None else n_neighbors, "n_neighbors"
        )
        available = self.n_samples_fit_ - query_is_train
        if n_neighbors > available:
            relation = "<" if query_is_train else "<="
            raise ValueError(
                f"Expected n_neighbors {relation} n_samples_fit, but n_neighbors = "
                f"{n_neighbors}, n_samples_fit = {self.n_samples_fit_}, "
                f"n_samples = {len(query_words)}"
            )

        distances, indices = self._kneighbors(query_words, n_neighbors, query_is_train)
        return (distances, indices) if return_distance else indices

    def _kneighbors(self, query_words, k, exclude_self):
        n_jobs = self._n_threads()
        if self.backend_ == "numba":
            from . import _numba_kernels

            return _numba_kernels.kneighbors(
                query_words,
                self._derived_structure("words_t"),
                k,
                exclude_self=exclude_self,
                n_jobs=n_jobs,
            )
        if self.backend_ == "faiss":
            return _backends.faiss_kneighbors(
                self._derived_structure("faiss"),
                self._query_codes(query_words),
                k,
                exclude_self=exclude_self,
                n_jobs=n_jobs,
            )
        if self.backend_ == "torch":
            return self._derived_structure("torch").kneighbors(
                self._query_codes(query_words), k, exclude_self=exclude_self
            )
        return _brute.kneighbors(
            query_words, self._fit_words, k, exclude_self=exclude_self, n_jobs=n_jobs
        )

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
        query_words, query_is_train = self._queries(X)
        radius = self._check_radius(radius)
        if sort_results and not return_distance:
            raise ValueError("return_distance must be True if sort_results is True.")

        distances, indices, indptr = self._radius_neighbors(
            query_words, radius, query_is_train, sort_results
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
        if self.backend_ != "numba":
            return False
        from ._multi_index import use_multi_index

        return use_multi_index(self._derived_structure("multi_index"), radius)

    def _radius_neighbors(self, query_words, radius, exclude_self, by_dist):
        """Codes within radius, flat: query ``i``'s distances and indices are
        ``distances[indptr[i]:indptr[i + 1]]`` and the same of ``indices``."""
        n_jobs = self._n_threads()
        options = {"exclude_self": exclude_self, "by_dist": by_dist}
        if self._uses_multi_index(radius):
            index = self._derived_structure("multi_index")
            return index.radius_neighbors(query_words, radius, n_jobs=n_jobs, **options)
        if self.backend_ == "numba":
            from . import _numba_radius

            return _numba_radius.radius_neighbors(
                query_words,
                self._derived_structure("words_t"),
                radius,
                n_jobs=n_jobs,
                **options,
            )
        if self.backend_ == "faiss":
            found = _backends.faiss_radius_neighbors(
                self._derived_structure("faiss"),
                self._query_codes(query_words),
                radius,
                n_jobs=n_jobs,
                **options,
            )
        elif self.backend_ == "torch":
            found = self._derived_structure("torch").radius_neighbors(
                self._query_codes(query_words), radius, **options
            )
        else:
            found = _brute.radius_neighbors(
                query_words, self._fit_words, radius, n_jobs=n_jobs, **options
            )
        return _flatten(*found)

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
        n_neighbors = self.n_neighbors if n_neighbors is None else n_neighbors
        distances, indices = self.kneighbors(X, n_neighbors)
        n_queries = len(indices)
        data = np.ones(indices.size) if mode == "connectivity" else distances.ravel()
        indptr = np.arange(0, n_queries * n_neighbors + 1, n_neighbors)
        return csr_matrix(
            (data, indices.ravel(), indptr), shape=(n_queries, self.n_samples_fit_)
        )

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
        query_words, query_is_train = self._queries(X)
        radius = self._check_radius(radius)
        distances, indices, indptr = self._radius_neighbors(
            query_words, radius, query_is_train, sort_results
        )
        data = np.ones(len(indices)) if mode == "connectivity" else distances
        return csr_matrix(
            (data, indices, indptr), shape=(len(indptr) - 1, self.n_samples_fit_)
        )

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
        neighbour_labels = self._fit_y[indices]
        if self._fit_y.ndim == 2:
            return (neighbour_labels.mean(axis=1) > 0.5).astype(self._fit_y.dtype)
        class_ids = np.searchsorted(self.classes_, neighbour_labels)
        votes = np.zeros((len(indices), len(self.classes_)), dtype=np.intp)
        np.add.at(votes, (np.arange(len(indices))[:, None], class_ids), 1)
        return self.classes_[votes.argmax(axis=1)]

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
        # Everything derived from _fit_X is rebuilt rather than pickled (FAISS
        # indexes and CUDA tensors do not pickle portably anyway).
        state = dict(super().__getstate__())  # a copy: never mutate the live object
        state.pop("_fit_words", None)
        state.pop("_derived_lock", None)
        if "_derived" in state:
            state["_derived"] = {}
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_fit_X" in state:
            self._fit_words = _kernel_words(self._fit_X)
            self._derived_lock = threading.Lock()


def _kernel_words(codes):
    """Codes as words (:func:`skhash.codes.as_words`), always writeable.

    numba compiles every kernel again for read-only arrays, about 10 s more
    on first use; copying read-only codes costs far less.
    """
    words = as_words(codes)
    return words if words.flags.writeable else words.copy()


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


def _flatten(distances, indices):
    """Flat (distances, indices, indptr) of per-query lists of arrays."""
    indptr = np.zeros(len(indices) + 1, np.int64)
    np.cumsum([len(i) for i in indices], out=indptr[1:])
    return (
        np.concatenate([np.zeros(0, np.int32), *distances]).astype(np.int32),
        np.concatenate([np.zeros(0, np.intp), *indices]).astype(np.intp),
        indptr,
    )
