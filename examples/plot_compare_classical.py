"""
============================================
Classical hashers compared: MAP against bits
============================================

Every classical hasher of skhash on the digits data, under the protocol of
the learning-to-hash papers (:func:`~skhash.datasets.retrieval_split`): a set
of queries held out per class, a database of everything else, and a smaller
labelled training set drawn from the database. Each hasher is fitted once per
code length by :meth:`CodeLengthMAPDisplay.from_estimator
<skhash.metrics.CodeLengthMAPDisplay.from_estimator>`, and all curves share
one set of axes.
"""

# %%
# The split
# ---------
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skhash import (
    CCAITQHasher,
    ITQHasher,
    KSHHasher,
    LSHHasher,
    SpectralHasher,
    STHHasher,
)
from skhash.datasets import retrieval_split
from skhash.metrics import CodeLengthMAPDisplay

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_query, X_train, X_database, y_query, y_train, y_database = retrieval_split(
    X, y, n_queries_per_class=20, n_train_per_class=60, random_state=0
)
print(
    f"{len(X_query)} queries, {len(X_train)} training samples, "
    f"{len(X_database)} database items"
)

# %%
# The hashers
# -----------
# LSH, ITQ, Spectral Hashing and STH learn without labels; CCA-ITQ and KSH
# use the class labels of the training set. KSH gets fewer anchors than its
# default 300, because the training set has only 600 samples, and at most 50
# gradient steps per bit instead of 500, which on this small set costs almost
# no MAP and saves most of its fitting time.
hashers = {
    "LSH": LSHHasher(random_state=0),
    "Spectral": SpectralHasher(),
    "ITQ": ITQHasher(random_state=0),
    "STH": STHHasher(n_neighbors=10, random_state=0),
    "CCA-ITQ": CCAITQHasher(random_state=0),
    "KSH": KSHHasher(n_anchors=200, max_iter=50, random_state=0),
}

# %%
# MAP against code length
# -----------------------
# MAP ranks the whole database for each query; a database item is relevant
# when it has the query's class.
fig, ax = plt.subplots(figsize=(7.5, 4.5))
for name, hasher in hashers.items():
    CodeLengthMAPDisplay.from_estimator(
        hasher,
        X_query,
        y_query,
        X_database,
        y_database,
        n_bits_list=[8, 16, 32, 48],
        X_train=X_train,
        y_train=y_train,
        name=name,
        ax=ax,
    )
ax.set_title("Digits: MAP of the queries against the database")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
fig.tight_layout()
plt.show()

# %%
# The supervised hashers lead by a wide margin, as on the larger benchmarks
# (:doc:`/benchmarks`). Among the unsupervised ones ITQ's learned rotation
# beats LSH's random hyperplanes, while the spectral methods (Spectral Hashing,
# STH) gain little or even lose MAP as bits are added: their later bits are
# high-frequency eigenfunctions that split similar items apart.
