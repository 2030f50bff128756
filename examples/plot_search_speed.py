"""
=======================================================
Hamming search speed: packed codes against brute force
=======================================================

:class:`~skhash.HammingNeighbors` searches packed codes: 64 bits are 8 bytes,
and one XOR and a population count compare 64 bits at once. scikit-learn's
:class:`~sklearn.neighbors.NearestNeighbors` with ``metric="hamming"`` needs
the codes unpacked, one value per bit, and reports the *fraction* of differing
bits. This example times both, and FAISS's exact binary index
(``faiss.IndexBinaryFlat``) when FAISS is installed, for growing databases.
All three are exact: they find the same distances.
"""

# %%
# Codes
# -----
# Search speed does not depend on what the codes mean, so the codes here are
# random. 200 queries look for their 10 nearest neighbours among up to
# 100,000 codes of 64 bits.
from time import perf_counter

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import NearestNeighbors

from skhash import HammingNeighbors, unpack_codes

n_bits, n_queries, n_neighbors = 64, 200, 10
database_sizes = [10_000, 30_000, 100_000]
rng = np.random.default_rng(0)
database = rng.integers(0, 256, size=(max(database_sizes), n_bits // 8), dtype=np.uint8)
queries = rng.integers(0, 256, size=(n_queries, n_bits // 8), dtype=np.uint8)

for name, array in [
    ("packed codes (uint8)", database),
    ("unpacked bits (bool)", unpack_codes(database, n_bits).astype(bool)),
    ("unpacked bits (float64)", unpack_codes(database, n_bits).astype(float)),
]:
    print(f"{name:>24}: {array.nbytes / 2**20:6.1f} MiB")

# %%
# The searches
# ------------
# Each function returns the Hamming distances of the neighbours as integer
# bit counts; the best of two runs is timed.
try:
    import faiss
except ImportError:
    faiss = None
    print("FAISS is not installed: its curve is left out.")


def search_skhash(database, queries):
    index = HammingNeighbors(n_neighbors=n_neighbors).fit(database)
    return index.kneighbors(queries)[0]


def search_sklearn(database, queries):
    bits = unpack_codes(database, n_bits).astype(bool)
    query_bits = unpack_codes(queries, n_bits).astype(bool)
    index = NearestNeighbors(
        n_neighbors=n_neighbors, metric="hamming", algorithm="brute"
    ).fit(bits)
    return np.rint(index.kneighbors(query_bits)[0] * n_bits).astype(int)


def search_faiss(database, queries):
    index = faiss.IndexBinaryFlat(n_bits)
    index.add(database)
    return index.search(queries, n_neighbors)[0]


searches = {"skhash HammingNeighbors": search_skhash}
searches["scikit-learn brute force"] = search_sklearn
if faiss is not None:
    searches["FAISS IndexBinaryFlat"] = search_faiss

timings = {name: [] for name in searches}
for size in database_sizes:
    reference = None
    for name, search in searches.items():
        best = np.inf
        for _ in range(2):
            start = perf_counter()
            distances = search(database[:size], queries)
            best = min(best, perf_counter() - start)
        timings[name].append(best)
        if reference is None:
            reference = distances
        # Exact searches agree on the distances (ties may be ordered differently).
        np.testing.assert_array_equal(np.sort(distances, axis=1), reference)
    print(
        f"{size:>7} codes: "
        + ", ".join(f"{name} {timings[name][-1]:.3f} s" for name in searches)
    )

# %%
# Time against database size
# --------------------------
# Fitting the index is included in the time: for HammingNeighbors it is a
# view of the codes, for scikit-learn it includes unpacking them.
fig, ax = plt.subplots(figsize=(6, 4))
for name, times in timings.items():
    ax.plot(database_sizes, times, marker="o", label=name)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="database size (codes of 64 bits)",
    ylabel="seconds for 200 queries, k=10",
    title="Exact Hamming k-nearest-neighbour search",
)
ax.legend()
fig.tight_layout()
plt.show()

# %%
# All three scan the whole database for every query, so their costs grow
# linearly with its size; HammingNeighbors' compiled scan differs from a
# generic one in how it selects the k nearest (a counting selection over the
# integer distances, no heap, no distance matrix). Radius search with a small
# radius need not scan at all: HammingNeighbors then probes multi-index hash
# tables instead; see :ref:`neighbors`.
