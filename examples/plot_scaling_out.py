"""
=========================
Scaling out with Dask
=========================

A collection too large for one machine is a Dask array spread over a cluster.
Here a small one on a local cluster: ITQ is fitted on its partitions without
collecting them, the rows are encoded where they are, the codes are searched
as shards that stay on the workers, near-duplicate pairs are joined exactly,
and a pipeline is tuned with the cluster running the fits. Every answer is
checked against the single-machine estimators.
"""

# %%
# A cluster and a sharded collection
# ----------------------------------
# Two workers in this process (``processes=False`` keeps the example quick);
# on a real cluster, ``Client("scheduler-address:8786")`` instead.
import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skhash
import skhash.dask

cluster = LocalCluster(n_workers=2, processes=False, dashboard_address=":0")
client = Client(cluster)

# 40,000 points around 20 centres, made on the workers in 8 partitions; the
# collected copies (X_local, y_local) are only for the checks.
centres = np.random.default_rng(0).normal(scale=0.8, size=(20, 32))
rng = da.random.default_rng(0)
y = rng.integers(0, 20, size=40_000, chunks=5_000)
X = y.map_blocks(lambda labels: centres[labels], new_axis=1, chunks=(y.chunks[0], 32))
X = (X + rng.standard_normal((40_000, 32), chunks=(5_000, 32))).persist()
X_local, y_local = dask.compute(X, y)
print(X)

# %%
# Fit and encode
# --------------
# ITQ's fit is sums over rows (a mean, a covariance, one ``B^T V`` per
# iteration), so ``skhash.dask.fit`` computes each of them from the
# partitions' sums: the model is the one fitted on the collected array.
hasher = skhash.dask.fit(skhash.ITQHasher(n_bits=32, random_state=0), X)
local = skhash.ITQHasher(n_bits=32, random_state=0).fit(X_local)
print("same rotation:", np.allclose(hasher.rotation_, local.rotation_))

codes = skhash.dask.transform(hasher, X)  # lazy: one block of codes per partition
print(codes)

# %%
# Search the shards
# -----------------
# The partitions of codes make one ``skhash.HammingNeighbors`` shard per
# worker; the k nearest of a query are the best of every shard's, merged by
# (distance, index): the answer of one index over all the codes.
search = skhash.dask.HammingNeighbors(n_neighbors=10).fit(codes, y)
print("shards start at rows", search.shard_offsets_[:-1])
queries = local.transform(X_local[:500])
distances, indices = search.kneighbors(queries)
one_index = skhash.HammingNeighbors(n_neighbors=10).fit(local.transform(X_local))
print("same neighbours:", np.array_equal(indices, one_index.kneighbors(queries)[1]))
print(f"MAP of the first 500 codes: {search.score(queries, y_local[:500]):.3f}")

# %%
# Near-duplicates: an exact similarity join
# -----------------------------------------
# Every pair of codes at most 2 bits apart, each pair once, as a Dask
# DataFrame with one partition per row block and shard searched.
pairs = skhash.dask.similarity_join(codes, radius=2).compute()
print(f"{len(pairs):,} pairs within 2 bits")
counts = pairs["distance"].value_counts().sort_index()
plt.bar(counts.index, counts.to_numpy())
plt.xlabel("Hamming distance")
plt.ylabel("pairs")
plt.title("Pairs within 2 bits")
plt.show()

# %%
# Tune a pipeline on the cluster
# ------------------------------
# ``GridSearchCV`` sends its fits to the workers through joblib's Dask
# backend; the search, its scores and ``best_params_`` are those of a local
# run.
pipeline = Pipeline(
    [("hash", skhash.CCAITQHasher(random_state=0)), ("nn", skhash.HammingNeighbors())]
)
grid = GridSearchCV(pipeline, {"hash__n_bits": [8, 16, 32]}, cv=3, n_jobs=-1)
with parallel_backend("dask"):
    grid.fit(X_local[:3_000], y_local[:3_000])
print(grid.best_params_, f"MAP {grid.best_score_:.3f}")

client.close()
cluster.close()
