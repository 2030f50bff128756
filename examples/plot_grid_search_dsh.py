"""
=====================================================
Choosing the code length and margin with GridSearchCV
=====================================================

A hasher is a scikit-learn transformer, so its parameters are tuned like any
other. Here :class:`~skhash.DSHHasher` is cross-validated over its code length
``n_bits`` and the ``margin`` of its contrastive loss, scored by mean average
precision with :func:`~skhash.metrics.get_retrieval_scorer`. The final test
on held-out queries uses data that took no part in the search.
"""

# %%
# Data and pipeline
# -----------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skhash import DSHHasher, HammingNeighbors
from skhash.metrics import get_retrieval_scorer

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = Pipeline(
    [
        ("hash", DSHHasher(max_epochs=4, lr=3e-3, random_state=0)),
        ("nn", HammingNeighbors()),
    ]
)

# %%
# The search
# ----------
# DSH pushes the real-valued outputs of dissimilar pairs at least ``margin``
# apart in squared distance; its default is ``2 * n_bits``. The grid crosses
# three code lengths with margins from a quarter of that default to twice it.
# In each split the held-out fold are the queries and the training fold,
# encoded by the hasher fitted on it, is the database searched by
# :class:`~skhash.HammingNeighbors` (see :ref:`model_selection`).
n_bits_grid = [8, 16, 32]
margin_scale = [0.25, 0.5, 1.0, 2.0]
param_grid = [
    {"hash__n_bits": [n_bits], "hash__margin": [s * 2 * n_bits for s in margin_scale]}
    for n_bits in n_bits_grid
]
search = GridSearchCV(pipe, param_grid, scoring=get_retrieval_scorer("map"), cv=3)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best cross-validated MAP: {search.best_score_:.3f}")

# %%
# The grid
# --------
# Mean cross-validated MAP for every code length against the margin, as a
# multiple of the default ``2 * n_bits``; error bars are the standard deviation
# over the three folds.
results = search.cv_results_
fig, ax = plt.subplots(figsize=(6, 4))
for n_bits in n_bits_grid:
    rows = np.flatnonzero(results["param_hash__n_bits"] == n_bits)
    scale = np.array([results["param_hash__margin"][i] for i in rows]) / (2 * n_bits)
    ax.errorbar(
        scale,
        results["mean_test_score"][rows],
        yerr=results["std_test_score"][rows],
        marker="o",
        capsize=3,
        label=f"{n_bits} bits",
    )
ax.set_xscale("log", base=2)
ax.set_xticks(margin_scale, [str(s) for s in margin_scale])
ax.set(
    xlabel="margin / (2 * n_bits)",
    ylabel="cross-validated MAP",
    title="DSHHasher on digits: code length and margin",
)
ax.legend()
fig.tight_layout()
plt.show()

# %%
# With this little training (four epochs), longer codes score higher and
# margins below DSH's default do better; the error bars show how much of a
# difference three folds of 450 samples can resolve.

# %%
# Test on held-out queries
# ------------------------
# ``GridSearchCV`` refits the best pipeline on all training data; its
# ``score`` is the MAP of the test queries against the training database.
print(f"test MAP of the best pipeline: {search.score(X_test, y_test):.3f}")
