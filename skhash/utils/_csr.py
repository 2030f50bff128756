"""The CSR arithmetic of radius searches, written once.

A radius search answers with a CSR triple ``(distances, indices, indptr)``:
query ``i``'s neighbours are ``indices[indptr[i]:indptr[i + 1]]``, at
``distances[...]`` of the same run, as in a :class:`scipy.sparse.csr_matrix`.
Engines, threads, the core and the Dask merges build, join and filter such
triples with these functions.
"""

import numpy as np


def indptr_of(counts):
    """Run boundaries (int64, starting at 0) of runs of ``counts`` entries."""
    indptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr


def query_of(indptr):
    """The query (row) of each entry of a CSR triple."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def keep_entries(distances, indices, indptr, keep):
    """The triple with only the entries where the mask ``keep`` is true."""
    if keep.all():
        return distances, indices, indptr
    counts = np.bincount(query_of(indptr)[keep], minlength=len(indptr) - 1)
    return distances[keep], indices[keep], indptr_of(counts)


def concatenate(triples):
    """One triple of several, their rows one after the other."""
    triples = list(triples)
    if len(triples) == 1:
        return triples[0]
    counts = [np.diff(indptr) for _, _, indptr in triples]
    return (
        np.concatenate([np.zeros(0, np.int32), *(d for d, _, _ in triples)]),
        np.concatenate([np.zeros(0, np.intp), *(i for _, i, _ in triples)]),
        indptr_of(np.concatenate([np.zeros(0, np.int64), *counts])),
    )
