"""The contract every search engine of HammingNeighbors keeps, and their registry.

An engine is a :class:`SearchIndex` built from the database's packed codes. It
answers exactly, ties by database index, and always in one shape:

- ``kneighbors(queries, k, *, n_jobs)`` -> ``(distances, indices)``, int32 and
  intp arrays of shape ``(n_queries, k)`` ordered by (distance, index);
- ``radius_neighbors(queries, radius, *, n_jobs, by_dist)`` -> ``(distances,
  indices, indptr)``, the CSR triple: query ``i``'s neighbours are
  ``indices[indptr[i]:indptr[i + 1]]`` in index order, or in (distance,
  index) order with ``by_dist``.

``queries`` are packed uint8 codes as wide as the database's; the database's
own ``codes`` object searches the database against itself (each code then
finds itself: excluding rows is the caller's work, see ``HammingIndex``).
``radius`` is at most the code length (the caller clamps it). Engines are
built on first use and may keep whatever they derive from the codes; they must
allow searches from several threads at once. An engine that needs an optional
library says so in :meth:`SearchIndex.check_available`, before it is built.
"""

import functools
import importlib
import mmap

import numpy as np

from ..codes import as_words
from ..utils import _csr as csr
from ..utils._torch import cuda_available, resolve_device

# Engine name -> (module, class), imported on first use: numba, FAISS and torch
# stay unimported until a search needs them.
ENGINES = {
    "numpy": ("._numpy_index", "NumpyIndex"),
    "numba": ("._scan_index", "ScanIndex"),
    "multi_index": ("._multi_index", "MultiIndex"),
    "faiss": ("._faiss_index", "FaissIndex"),
    "torch": ("._torch_index", "TorchIndex"),
}


def engine_class(name):
    module, cls = ENGINES[name]
    return getattr(importlib.import_module(module, __package__), cls)


class SearchIndex:
    """Base of the engines: the database, and its words for compiled kernels.

    Parameters
    ----------
    codes : ndarray of shape (n_codes, n_bytes), dtype uint8
        The database, C-contiguous.
    """

    def __init__(self, codes):
        self.codes = codes

    @functools.cached_property
    def words(self):
        """The database as words (computed at most once more by racing threads).

        A memory-mapped database stays on disk when its codes are whole words
        (a multiple of 64 bits); other widths are padded in memory.
        """
        return kernel_words(self.codes, keep_mapped=True)

    def query_words(self, queries):
        """Words of the queries: the database's own when they are its codes."""
        return self.words if queries is self.codes else kernel_words(queries)

    def kneighbors(self, queries, k, *, n_jobs):
        raise NotImplementedError

    def radius_neighbors(self, queries, radius, *, n_jobs, by_dist):
        raise NotImplementedError

    @classmethod
    def warm_up(cls):
        """Compile this engine's kernels now, if it has any."""

    @classmethod
    def check_available(cls):
        """Raise ImportError, saying what to install, if a library is missing."""


def kernel_words(codes, *, keep_mapped=False):
    """Codes as words (:func:`skhash.codes.as_words`), writeable if they can be.

    numba compiles every kernel again for read-only arrays, about 10 s more
    on first use; copying read-only codes costs far less, except a database
    mapped from a file, which ``keep_mapped`` leaves where it is.
    """
    words = as_words(codes)
    if words.flags.writeable or (keep_mapped and _is_mapped(codes)):
        return words
    return words.copy()


def _is_mapped(array):
    """Whether an array's memory is a file mapped by numpy.memmap / np.load."""
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def drop_self(distances, indices, rows):
    """k nearest of database rows among the others, from their k + 1 nearest.

    The k + 1 best of all codes, less the query itself when it is among them,
    are exactly the k best of the others; when it is not, k + 1 codes at
    distance 0 come before it, and the first k are the answer.
    """
    own = indices == np.asarray(rows)[:, None]
    own[~own.any(axis=1), -1] = True
    shape = (len(indices), indices.shape[1] - 1)
    return distances[~own].reshape(shape), indices[~own].reshape(shape)


def group(query_of, indices, distances, n_queries, by_dist):
    """The CSR triple of found (query, index, distance) triples, in any order.

    For the engines whose libraries return pairs unordered (FAISS, torch).
    """
    keys = (query_of, distances, indices) if by_dist else (query_of, indices)
    order = np.lexsort(keys[::-1])
    return (
        distances[order].astype(np.int32),
        indices[order].astype(np.intp),
        csr.indptr_of(np.bincount(query_of, minlength=n_queries)),
    )


def resolve(backend, device):
    """The backend and torch device that ``backend`` and ``device`` mean here.

    ``backend="auto"`` is the compiled kernels (numba), or torch when
    ``device="cuda"``. Raises ImportError for a missing optional library and
    ValueError for CUDA without a GPU.
    """
    if backend == "auto":
        backend = "torch" if device == "cuda" else "numba"
    if device == "cuda" and backend != "torch":
        raise ValueError(f'device="cuda" needs backend="torch", got {backend!r}.')
    engine_class(backend).check_available()
    if backend != "torch":
        return backend, "cpu"
    if device == "cuda" and not cuda_available():
        raise ValueError('device="cuda" but torch.cuda.is_available() is False.')
    return backend, resolve_device(device)
