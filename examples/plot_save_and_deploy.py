"""
===============================
Saving a model and encoding it
===============================

A retrieval pipeline (scaling, ITQ codes, a Hamming index) is saved with skops,
which loads only the types it is told to trust, and its encoder is exported to
ONNX, so that a service can encode new queries without Python. Both give back
exactly the codes and neighbours of the original.
"""

# %%
# Fit a pipeline
# --------------
import io

import numpy as np
import onnx
import onnxruntime
import skops.io as sio
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhash import HammingNeighbors, ITQHasher
from skhash.onnx import to_onnx
from skhash.persistence import get_trusted_types

X, y = load_digits(return_X_y=True)
X_train, y_train, X_new = X[:1500], y[:1500], X[1500:]
encoder = make_pipeline(StandardScaler(), ITQHasher(n_bits=32, random_state=0))
codes = encoder.fit_transform(X_train)
index = HammingNeighbors(n_neighbors=5).fit(codes, y_train)

# %%
# Save and load with skops
# ------------------------
# The file names every type it holds; loading builds nothing else than NumPy
# arrays, scikit-learn's estimators and the skhash types listed here.
print(get_trusted_types())
saved = sio.dumps((encoder, index))
print(sio.get_untrusted_types(data=saved))
encoder_loaded, index_loaded = sio.loads(saved, trusted=get_trusted_types())
same_codes = np.array_equal(encoder_loaded.transform(X_new), encoder.transform(X_new))
same_neighbours = np.array_equal(
    index_loaded.kneighbors(encoder.transform(X_new))[1],
    index.kneighbors(encoder.transform(X_new))[1],
)
print(f"same codes: {same_codes}, same neighbours: {same_neighbours}")

# %%
# Export the hasher to ONNX
# -------------------------
# The scaler runs before the hasher here, so the service scales its queries
# itself (or the pipeline is exported by a converter of scikit-learn's
# transformers); the hasher's model takes the scaled rows.
scaler, hasher = encoder
model = to_onnx(hasher, scaler.transform(X_train[:1]))
buffer = io.BytesIO()
onnx.save(model, buffer)  # or onnx.save(model, "encoder.onnx")
session = onnxruntime.InferenceSession(buffer.getvalue())
(onnx_codes,) = session.run(None, {"X": scaler.transform(X_new)})
same = np.array_equal(onnx_codes, encoder.transform(X_new))
print(f"{onnx_codes.dtype} codes of shape {onnx_codes.shape}, equal: {same}")

# %%
# The service then searches the codes, here with the loaded index.
neighbours = index_loaded.kneighbors(onnx_codes[:3], return_distance=False)
print("labels of the neighbours of three new queries:")
print(y_train[neighbours], "true labels:", y[1500:1503])
