"""
==========================================================
Binary codes for embeddings: rescoring and near-duplicates
==========================================================

Vector databases shrink embeddings to one bit per feature, its sign, find a
query's nearest codes by Hamming distance, more of them than asked for
(oversampling), and rank these candidates by the exact distance between the
float vectors (rescoring). :class:`~skhash.RescoringNeighbors` does the same,
with the sign codes of :class:`~skhash.SignHasher` or those of any hasher.
This example compares the sign codes with ITQ codes four and eight times
shorter by their recall@10 after rescoring, then finds planted copies in a
collection with :func:`~skhash.neighbors.duplicate_groups`, with and without
checking the candidate pairs against the vectors.
"""

# %%
# Embeddings
# ----------
# The stand-in embeddings are scikit-learn's digits, 1,797 images of 64
# pixels, mapped to 256 dense, correlated ``float32`` features, as a model's
# embeddings are. 100 of them are the queries, the others the database.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skhash import ITQHasher, RescoringNeighbors, SignHasher
from skhash.metrics import exact_neighbors, recall_at_k
from skhash.neighbors import duplicate_groups, duplicate_pairs

pixels, _ = load_digits(return_X_y=True)
rng = np.random.default_rng(0)
projection = rng.standard_normal((64, 256))
embeddings = np.tanh((pixels - pixels.mean(axis=0)) @ projection / 40)
embeddings = embeddings.astype(np.float32)
queries, vectors = embeddings[:100], embeddings[100:]
print(f"{len(vectors)} vectors of {vectors.shape[1]} features")

# %%
# Recall after rescoring
# ----------------------
# The ground truth is the exact 10 nearest vectors of each query by cosine
# distance (:func:`~skhash.metrics.exact_neighbors`). Each search returns the
# 10 nearest of its ``ceil(oversample * 10)`` candidates, and
# :func:`~skhash.metrics.recall_at_k` counts, with ann-benchmarks' rule, the
# returned neighbours no farther than the 10th true one. The hasher is fitted
# and the codes are indexed once per search; ``set_params`` changes only the
# number of candidates.
k = 10
oversampling = [1, 2, 3, 5, 10, 20]
true_distances, true_indices = exact_neighbors(queries, vectors, k)

hashers = {
    "signs, 256 bits": SignHasher(),
    "ITQ, 64 bits": ITQHasher(64, random_state=0),
    "ITQ, 32 bits": ITQHasher(32, random_state=0),
}
recalls = {}
for name, hasher in hashers.items():
    search = RescoringNeighbors(hasher, n_neighbors=k).fit(vectors)
    recalls[name] = []
    for oversample in oversampling:
        distances, indices = search.set_params(oversample=oversample).kneighbors(
            queries
        )
        recalls[name].append(
            recall_at_k(
                true_indices,
                indices,
                true_distances=true_distances,
                distances=distances,
            )
        )
    print(f"{name:>15}: " + " ".join(f"{r:.2f}" for r in recalls[name]))

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in recalls.items():
    ax.plot(oversampling, values, marker="o", label=name)
ax.set(
    xscale="log",
    xticks=oversampling,
    xticklabels=oversampling,
    xlabel="oversampling (candidates per neighbour)",
    ylabel="recall@10 after rescoring",
    title="Sign codes against shorter learned codes",
)
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Every curve climbs to 1: with enough candidates the true neighbours are
# among them, and rescoring puts them first. The codes decide how many
# candidates that takes. Here ITQ's 64 bits, a quarter of the sign codes'
# memory, need about three times their candidates for the same recall, and
# 32 bits about twice as many again. Which trade is right depends on the
# embeddings and on what reading and comparing a candidate's vector costs
# where the search runs (memory, or a random read from disk);
# ``GridSearchCV`` with ``get_retrieval_scorer("recall@10")`` tunes both
# (see :ref:`embeddings`).

# %%
# Planted near-duplicates
# -----------------------
# 100 of the database's vectors get one to three copies each, every feature
# off by about 2%. The codes are ITQ's 64 bits; a copy's code is within a bit
# or two of its original's, so the candidate pairs are the codes within 4
# bits, a margin for copies edited more than these.
originals = rng.choice(len(vectors), 100, replace=False)
copied = np.repeat(originals, rng.integers(1, 4, size=100))
copies = vectors[copied] * (1 + 0.02 * rng.standard_normal((len(copied), 256)))
collection = np.vstack([vectors, copies]).astype(np.float32)
codes = ITQHasher(64, random_state=0).fit(collection).transform(collection)
radius = 4

pairs, _ = duplicate_pairs(codes, radius=radius)
print(f"{len(collection)} rows, {len(copied)} of them copies")
print(f"{len(pairs)} candidate pairs within {radius} bits")

# %%
# Groups from the candidates alone
# --------------------------------
# Rows connected by a chain of candidate pairs form a group. Most candidates
# are collisions, unrelated vectors whose codes happen to be close, and the
# chains run through them: one group swallows a large part of a cluster.
unverified = duplicate_groups(codes, radius=radius)
print(f"without verification: largest group {np.bincount(unverified).max()} rows")

# %%
# Choosing the distance
# ---------------------
# With the vectors, each candidate pair is kept only when its vectors are
# within ``max_distance``. A cosine distance is at most 2, so
# ``max_distance=2`` keeps every candidate and shows their distances: the
# copies' pairs sit far below the rest, and the threshold goes in the gap.
_, distances = duplicate_pairs(
    codes, radius=radius, vectors=collection, max_distance=2.0, metric="cosine"
)
max_distance = 1e-3

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(distances, bins=np.logspace(-5, np.log10(2), 60))
ax.axvline(max_distance, color="black", linestyle="--", label="max_distance")
ax.set(
    xscale="log",
    xlabel="cosine distance of the vectors",
    ylabel="candidate pairs",
    title=f"Candidate pairs of codes within {radius} bits",
)
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Verified groups
# ---------------
# Verified, the groups are the copies with their originals. Each group is
# named by its smallest row, so the rows to keep, one per group, are those
# labelled with their own row.
verified = duplicate_groups(
    codes,
    radius=radius,
    vectors=collection,
    max_distance=max_distance,
    metric="cosine",
)
keep = np.flatnonzero(verified == np.arange(len(collection)))
print(f"with verification: largest group {np.bincount(verified).max()} rows")
print(f"{len(collection) - len(keep)} rows dropped as copies ({len(copied)} planted)")

# %%
# On a collection that does not fit on one machine,
# :func:`skhash.dask.duplicate_groups` finds the same groups from a Dask
# DataFrame of codes keyed by the documents' ids, verifying the pairs on the
# workers where they are found.
