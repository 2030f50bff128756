"""
============================================
Precision-recall curves of Hamming retrieval
============================================

Two ways to trace a precision-recall curve over binary codes, both in
:func:`~skhash.metrics.precision_recall_curve` and drawn by
:class:`~skhash.metrics.HammingPrecisionRecallDisplay`:

- **by Hamming radius** (``by="radius"``): return every database item within
  radius r of the query, for r = 0, 1, ..., n_bits, and pool the counts over
  all query-item pairs (the evaluation code of ITQ and Spectral Hashing);
- **by number returned** (``by="n_returned"``): return the top n of each
  query's ranking, for n = 1 ... n_database, and average precision and recall
  over the queries (the convention of DeepHash-pytorch).
"""

# %%
# Three hashers at 32 bits
# ------------------------
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skhash import CCAITQHasher, ITQHasher, LSHHasher
from skhash.datasets import retrieval_split
from skhash.metrics import HammingPrecisionRecallDisplay

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_query, X_train, X_database, y_query, y_train, y_database = retrieval_split(
    X, y, n_queries_per_class=20, n_train_per_class=60, random_state=0
)
hashers = {
    "LSH": LSHHasher(n_bits=32, random_state=0).fit(X_train),
    "ITQ": ITQHasher(n_bits=32, random_state=0).fit(X_train),
    "CCA-ITQ": CCAITQHasher(n_bits=32, random_state=0).fit(X_train, y_train),
}

# %%
# Both kinds of curve
# -------------------
# ``from_estimator`` encodes the queries and the database with the fitted
# hasher; the legend gives each hasher's MAP over the whole database. Passing
# the same ``ax`` draws several curves together.
fig, (ax_radius, ax_returned) = plt.subplots(1, 2, figsize=(11, 4.5))
displays = {}
for name, hasher in hashers.items():
    for ax, by in [(ax_radius, "radius"), (ax_returned, "n_returned")]:
        displays[name, by] = HammingPrecisionRecallDisplay.from_estimator(
            hasher,
            X_query,
            y_query,
            X_database,
            y_database,
            by=by,
            name=name,
            ax=ax,
        )
fig.tight_layout()
plt.show()

# %%
# The radius curve has one point per radius (33 for 32 bits): small radii
# return few items, nearly all relevant; large radii return nearly the whole
# database. The curve by number returned has one point per database size and
# ends, when everything is returned, at the share of relevant items in the
# database (about 0.1 for ten balanced classes). The two summarise the same
# codes differently, so compare hashers within one kind of curve only.
#
# Reading the values
# ------------------
# A display keeps what it plotted: ``precision``, ``recall`` and
# ``thresholds`` (radii or numbers returned), for instance the precision
# within Hamming radius 2, a number the papers often report (pooled over
# pairs here, the ``average="micro"`` of
# :func:`~skhash.metrics.precision_within_radius`).
display = displays["CCA-ITQ", "radius"]
print("radius  precision  recall")
for radius in range(5):
    print(
        f"{display.thresholds[radius]:6d}  {display.precision[radius]:9.3f}  "
        f"{display.recall[radius]:6.3f}"
    )
