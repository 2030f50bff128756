"""Exact nearest-neighbour search in Hamming space over packed codes."""

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

from ..codes import check_codes_dtype
from ._base import NeighborsBase, vote
from ._hamming_index import HammingIndex, is_plain_codes

__all__ = ["HammingNeighbors"]


class HammingNeighbors(NeighborsBase):
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
    index_ : HammingIndex
        The search core over the codes (see :class:`skhash.neighbors.HammingIndex`).

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : The same interface for real vectors.
    skhash.metrics.mean_average_precision : The metric behind :meth:`score`.
    skhash.neighbors.save_index : Save it as a directory that reopens mapped.

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
        codes = self._validate_codes(X, reset=True)
        index = HammingIndex(
            codes, y, algorithm=self.algorithm, backend=self.backend,
            device=self.device, n_jobs=self.n_jobs,
        )  # fmt: skip
        return self._fitted_on(index)

    def _fitted_on(self, index, classes=None):
        """Take ``index`` as the fitted database: at fit, and when a saved
        index is reopened (:func:`skhash.neighbors.load_index`, which knows
        the ``classes`` of 1-D labels without reading them all)."""
        self.index_ = index
        self.n_features_in_ = index.codes.shape[1]
        self.backend_, self.device_ = index.backend, index.device
        self.n_samples_fit_ = index.n_codes
        labels = index.labels
        if labels is not None and labels.ndim == 1:
            self.classes_ = np.unique(labels) if classes is None else classes
        return self

    def _validate_codes(self, X, *, reset):
        if reset or not is_plain_codes(X, self.n_features_in_):
            # No finiteness check: codes are uint8, and NaN in a float array is
            # a dtype error first ("contains NaN" would hide what is wrong).
            X = validate_data(
                self, X, dtype=None, reset=reset, order="C", ensure_all_finite=False
            )
        check_codes_dtype(X.dtype, "X")
        return X

    def _search(self, X):
        """(queries, exclude) of a search: the database with each code's own
        row excluded when X is None, else the validated queries."""
        check_is_fitted(self)
        if X is None:
            return self.index_.codes, np.arange(self.n_samples_fit_)
        return self._validate_codes(X, reset=False), None

    def _options(self):
        # Read at each search, as scikit-learn reads n_jobs, so that
        # set_params after fit applies.
        return {"algorithm": self.algorithm, "n_jobs": self.n_jobs}

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        queries, exclude = self._search(X)
        k = self._check_n_neighbors(n_neighbors, len(queries), X is None)
        distances, indices = self.index_.kneighbors(
            queries, k, exclude=exclude, **self._options()
        )
        return (distances, indices) if return_distance else indices

    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        self._check_sort(sort_results, return_distance)
        csr = self._radius_csr(X, radius, sort_results)
        return self._split_csr(csr, return_distance)

    def _radius_csr(self, X, radius, sort_results):
        queries, exclude = self._search(X)
        radius = self._check_radius(radius)
        return self.index_.radius_neighbors(
            queries, radius, exclude=exclude, sort=sort_results, **self._options()
        )

    def predict(self, X):
        self._check_fitted_with_y("predict")
        indices = self.kneighbors(X, return_distance=False)
        return vote(self.index_.labels[indices], getattr(self, "classes_", None))

    def score(self, X, y):
        from ..metrics import mean_average_precision

        self._check_fitted_with_y("score")
        X = self._validate_codes(X, reset=False)
        codes, labels = self.get_database()
        return mean_average_precision(X, codes, y, labels)

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
        return self.index_.codes, self.index_.labels

    def _has_labels(self):
        return self.index_.labels is not None

    def __setstate__(self, state):
        # The index checks its own state when loaded (see HammingIndex); the
        # attributes kept beside it must agree with it, or a damaged or
        # crafted file would mislead the searches.
        super().__setstate__(state)
        index = vars(self).get("index_")
        if index is None:
            if "_fit_X" in state:  # fitted before the search core existed
                raise ValueError(
                    "This HammingNeighbors was saved by an earlier skhash, whose "
                    "state this version does not read; fit it again."
                )
            return
        if not isinstance(index, HammingIndex):
            raise ValueError(_DAMAGED.format("an index_ that is not a HammingIndex"))
        if (self.n_samples_fit_, self.n_features_in_) != index.codes.shape:
            raise ValueError(
                _DAMAGED.format(
                    f"n_samples_fit_={self.n_samples_fit_!r} and n_features_in_="
                    f"{self.n_features_in_!r} for codes of shape {index.codes.shape}"
                )
            )
        labels = index.labels
        expected = (
            np.unique(labels) if labels is not None and labels.ndim == 1 else None
        )
        classes = getattr(self, "classes_", None)
        if (classes is None) != (expected is None) or (
            expected is not None and not np.array_equal(classes, expected)
        ):
            raise ValueError(_DAMAGED.format("classes_ that are not the labels'"))


_DAMAGED = (
    "The saved HammingNeighbors state has {}; the file is damaged or was altered."
)
