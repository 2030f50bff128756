"""
==========================================================
Image retrieval with a HashNet pipeline on the digits data
==========================================================

A deep hasher and :class:`~skhash.HammingNeighbors` chained in a scikit-learn
:class:`~sklearn.pipeline.Pipeline`: the hasher learns 32-bit codes of the 8x8
digit images, the search returns the database images whose codes are closest
in Hamming distance. Training takes a few seconds on a CPU.
"""

# %%
# Data: images as rows
# --------------------
# Deep hashers take images as flattened rows (here 64 pixels), so that
# scalers, pipelines and cross-validation see an ordinary 2-D ``X``. The
# pixels are scaled to [0, 1]; a quarter of the images are held out as queries
# and the rest form the database the hasher is trained on.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skhash import HammingNeighbors, HashNetHasher

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_database, X_query, y_database, y_query = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"{len(X_database)} database images, {len(X_query)} queries")

# %%
# The pipeline
# ------------
# Without ``input_shape`` the backbone is a multi-layer perceptron (one hidden
# layer of 256 units); the hash layer on top has ``n_bits`` units. With
# ``input_shape=(1, 8, 8)`` the rows would be read as images and fed to a
# small convolutional network (``backbone="cnn"``), which needs many more
# epochs than the perceptron on images this small. Fitting the pipeline
# trains the hasher on the database with its labels, then indexes the database
# codes (with their labels, for :meth:`~skhash.HammingNeighbors.score`).
hasher = HashNetHasher(n_bits=32, max_epochs=15, lr=3e-3, random_state=0)
pipe = Pipeline([("hash", hasher), ("nn", HammingNeighbors(n_neighbors=8))])
pipe.fit(X_database, y_database)

# %%
# The loss of every epoch is in the skorch history of the fitted network.
history = hasher.net_.history
print("training loss per epoch:", np.round(history[:, "train_loss"], 3))

# %%
# Retrieval quality
# -----------------
# :meth:`Pipeline.score <sklearn.pipeline.Pipeline.score>` calls
# :meth:`HammingNeighbors.score <skhash.HammingNeighbors.score>`: the mean
# average precision of the queries ranked against the whole database.
print(f"MAP of the queries: {pipe.score(X_query, y_query):.3f}")

# %%
# Retrieved images
# ----------------
# Encode a few queries with the hasher, search the index, and show each query
# (left) followed by its eight nearest database images with their Hamming
# distances. Red titles mark neighbours of another class.
index = pipe.named_steps["nn"]
queries = [0, 1, 2, 3, 4, 5]
distances, neighbours = index.kneighbors(hasher.transform(X_query[queries]))

fig, axes = plt.subplots(len(queries), 9, figsize=(9, 6.5))
for row, query in enumerate(queries):
    axes[row, 0].imshow(X_query[query].reshape(8, 8), cmap="gray_r")
    axes[row, 0].set_title(f"query: {y_query[query]}", fontsize=9)
    for col, (distance, neighbour) in enumerate(
        zip(distances[row], neighbours[row], strict=True), start=1
    ):
        axes[row, col].imshow(X_database[neighbour].reshape(8, 8), cmap="gray_r")
        wrong = y_database[neighbour] != y_query[query]
        axes[row, col].set_title(
            f"d={distance}", fontsize=9, color="red" if wrong else "black"
        )
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle("Queries and their 8 nearest codes (Hamming distance d)")
fig.tight_layout()
plt.show()
