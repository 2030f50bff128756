import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestNeighbors

import skhash.classical._exact_knn as exact_knn
import skhash.classical._sth as sth_module
from skhash import STHHasher
from skhash.classical._sth import self_taught_bits


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits(return_X_y=True)
    return X[:600]


@pytest.mark.parametrize("weights", ["heat", "cosine"])
def test_training_bits_are_balanced(digits, weights):
    bits = self_taught_bits(digits, 12, weights=weights, random_state=0)
    assert bits.shape == (600, 12)
    # Median thresholds: every bit is on for half the samples (even n, no ties).
    np.testing.assert_allclose(bits.mean(axis=0), 0.5, atol=1 / 600)


@pytest.mark.parametrize("dense_below", [500, 0], ids=["dense", "arpack"])
def test_eigenmap_matches_dense_generalised_eigh(dense_below, monkeypatch):
    X = np.random.RandomState(0).standard_normal((60, 3))
    n_samples, n_neighbors, n_bits = 60, 4, 5
    monkeypatch.setattr(sth_module, "_DENSE_BELOW", dense_below)
    captured = {}
    original = sth_module.np.median

    def capture(embedding, axis):
        captured["embedding"] = embedding
        return original(embedding, axis=axis)

    monkeypatch.setattr(sth_module.np, "median", capture)
    self_taught_bits(X, n_bits, n_neighbors=n_neighbors, random_state=0)

    # The graph written out densely: OR-symmetrised kNN heat-kernel weights.
    D2 = ((X[:, None] - X[None]) ** 2).sum(axis=2)
    np.fill_diagonal(D2, np.inf)
    neighbours = np.argsort(D2, axis=1)[:, :n_neighbors]
    t = np.sqrt(np.take_along_axis(D2, neighbours, 1)).mean()
    W = np.zeros((n_samples, n_samples))
    for i, row in enumerate(neighbours):
        W[i, row] = np.exp(-D2[i, row] / (2 * t**2))
    W = np.maximum(W, W.T)
    degree = W.sum(axis=1)
    # L y = lambda D y is the symmetric N v = lambda v with v = D^1/2 y and
    # N = D^-1/2 L D^-1/2, whose spectrum lies in [0, 2]: ||N|| <= 2.
    N = np.eye(n_samples) - W / np.sqrt(np.outer(degree, degree))
    values, vectors = scipy.linalg.eigh(N)
    assert values[1] > 1e-3  # one connected component: one trivial vector

    def residual(v):
        return np.linalg.norm(N @ v - (v @ N @ v) * v)

    # Evaluating N @ v rounds by at most n eps || |N| || ||v||, || |N| || <= 2:
    # below this a residual says nothing.
    rounding = 2 * n_samples * np.finfo(float).eps
    for j in range(n_bits):
        v = np.sqrt(degree) * captured["embedding"][:, j]
        v /= np.linalg.norm(v)
        expected = vectors[:, j + 1]  # the j-th after the trivial one
        # A converged eigenpair of this very graph...
        assert residual(v) <= 2 * rounding
        # ...and the j-th one: by Davis-Kahan's sin theorem each unit vector
        # lies within residual / gap of the exact eigenvector, the gap being
        # the distance from its Rayleigh quotient to every other eigenvalue.
        gap = np.abs(np.delete(values, j + 1) - v @ N @ v).min()
        bound = (residual(v) + residual(expected) + 2 * rounding) / gap
        sine = np.linalg.norm(v - (v @ expected) * expected)
        assert sine <= bound


def test_sparse_solver_agrees_with_dense_solver(digits, monkeypatch):
    dense = self_taught_bits(digits, 8, random_state=0)
    monkeypatch.setattr(sth_module, "_DENSE_BELOW", 10)
    sparse = self_taught_bits(digits, 8, random_state=0)
    # Eigenvector signs are arbitrary: compare each bit up to a flip.
    agreement = (dense == sparse).mean(axis=0)
    assert np.all((agreement > 0.99) | (agreement < 0.01))


def test_float32_input_is_fitted_in_float64(digits):
    # Float32 SVMs stalled on large data (see STHHasher._fit): both dtypes
    # must give the float64 fit, bit for bit.
    single = STHHasher(n_bits=8, random_state=0).fit(digits.astype(np.float32))
    double = STHHasher(n_bits=8, random_state=0).fit(digits)
    assert single.coef_.dtype == np.float64
    np.testing.assert_array_equal(single.coef_, double.coef_)


def test_out_of_sample_svms_reproduce_most_training_bits(digits):
    hasher = STHHasher(n_bits=8, rotation=None, random_state=0).fit(digits)
    bits = self_taught_bits(digits, 8, random_state=np.random.RandomState(0))
    predicted = np.unpackbits(hasher.transform(digits), axis=1)[:, :8]
    assert (predicted == bits).mean() > 0.8


def test_deterministic_odd_bits_and_bad_input(digits):
    a = STHHasher(n_bits=11, random_state=0).fit_transform(digits)
    b = STHHasher(n_bits=11, random_state=0).fit_transform(digits)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (600, 2)
    with pytest.raises(ValueError, match="at most 8"):
        STHHasher(n_bits=9).fit(digits[:10])
    with pytest.raises(ValueError, match="NaN"):
        STHHasher(n_bits=2).fit(np.full((5, 2), np.nan))


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("block_distances", [150, 2000, 1 << 24])
def test_nearest_neighbors_match_scikit_learn(
    cosine, n_jobs, block_distances, monkeypatch
):
    # Blocks of 1, 13 and all 150 rows: several threads each search several
    # blocks, some narrower than the number of neighbours.
    monkeypatch.setattr(exact_knn, "_BLOCK_DISTANCES", block_distances)
    X = np.random.RandomState(0).uniform(size=(150, 20))
    distances, neighbours = exact_knn.nearest_neighbors(
        X, 7, cosine=cosine, n_jobs=n_jobs
    )
    metric = "cosine" if cosine else "euclidean"
    expected_distances, expected = (
        NearestNeighbors(n_neighbors=7, metric=metric).fit(X).kneighbors()
    )
    order = np.argsort(distances, axis=1)
    np.testing.assert_array_equal(np.take_along_axis(neighbours, order, 1), expected)
    np.testing.assert_allclose(
        np.take_along_axis(distances, order, 1), expected_distances, rtol=1e-12
    )


# --- The eigenmap's rotation (issue #26) ------------------------------------


def _dense_eigenmap(X, n_neighbors, n_dims):
    """The paper's eigenmap written out densely: OR-symmetrised kNN heat-kernel
    graph, then scipy's generalised ``L y = lambda D y``, trivial vector
    dropped."""
    D2 = ((X[:, None] - X[None]) ** 2).sum(axis=2)
    np.fill_diagonal(D2, np.inf)
    neighbours = np.argsort(D2, axis=1)[:, :n_neighbors]
    t = np.sqrt(np.take_along_axis(D2, neighbours, 1)).mean()
    W = np.zeros((len(X),) * 2)
    for i, row in enumerate(neighbours):
        W[i, row] = np.exp(-D2[i, row] / (2 * t**2))
    W = np.maximum(W, W.T)
    degree = np.diag(W.sum(axis=1))
    values, vectors = scipy.linalg.eigh(degree - W, degree)
    return values[1 : n_dims + 1], vectors[:, 1 : n_dims + 1]


@pytest.mark.parametrize("dense_below", [500, 0], ids=["dense", "arpack"])
def test_faithful_option_is_the_papers_median_thresholds(dense_below, monkeypatch):
    monkeypatch.setattr(sth_module, "_DENSE_BELOW", dense_below)
    X = np.random.RandomState(0).standard_normal((60, 3))
    _, expected = _dense_eigenmap(X, 4, 5)
    expected = expected > np.median(expected, axis=0)
    bits = self_taught_bits(X, 5, n_neighbors=4, rotation=None, random_state=0)
    # Eigenvectors have no sign: each bit is the paper's, or its complement.
    agreement = (bits == expected).mean(axis=0)
    np.testing.assert_array_equal(np.minimum(agreement, 1 - agreement), 0)


def test_faithful_hasher_fits_its_svms_to_the_median_bits(digits):
    hasher = STHHasher(n_bits=8, rotation=None, random_state=0).fit(digits)
    # The hasher's generator draws ARPACK's start (600 samples), then nothing.
    _, embedding = sth_module.laplacian_eigenmap(
        digits.astype(float), 8, random_state=np.random.RandomState(0)
    )
    bits = embedding > np.median(embedding, axis=0)
    centred = (digits - digits.mean(axis=0)) / hasher.scale_
    np.testing.assert_array_equal(
        hasher.coef_, sth_module.fit_linear_svms(centred, bits)
    )
    assert not hasattr(hasher, "rotation_")
    assert not hasattr(hasher, "quantization_loss_")


@pytest.fixture(scope="module")
def eigenmap(digits):
    return sth_module.laplacian_eigenmap(digits.astype(float), 16, random_state=0)


@pytest.mark.parametrize("power", [0.0, 0.75, 2.0])
def test_rotation_is_orthogonal_and_lowers_the_quantization_loss(eigenmap, power):
    eigenvalues, embedding = eigenmap
    projections, rotation, losses = sth_module.rotate_eigenmap(
        eigenvalues, embedding, eigenvalue_power=power, random_state=0
    )
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(16), atol=1e-12)
    # The projections are the centred, weighted eigenmap times the rotation.
    weighted = (embedding - embedding.mean(axis=0)) * eigenvalues**-power
    weighted /= np.sqrt(np.mean(weighted**2))
    np.testing.assert_allclose(projections, weighted @ rotation, atol=1e-12)

    def loss(V):
        return np.mean((np.where(V > 0, 1.0, -1.0) - V) ** 2)

    # Each alternating step can only lower ||B - V R||^2 ...
    assert np.all(np.diff(losses) <= 1e-12)
    np.testing.assert_allclose(losses[0], loss(weighted @ _start(0)))
    # ... and the result is well below both the random start and no rotation.
    assert loss(projections) < losses[0] - 0.02
    assert loss(projections) < loss(weighted) - 0.02


def _start(seed):
    """ITQ's random orthogonal start for 16 dimensions (see _itq._rotate)."""
    rng = np.random.RandomState(seed)
    return np.linalg.qr(rng.standard_normal((16, 16)))[0]


def test_rotated_hasher_is_deterministic_and_keeps_its_rotation(digits):
    a = STHHasher(n_bits=16, random_state=0).fit(digits)
    b = STHHasher(n_bits=16, random_state=0).fit(digits)
    c = STHHasher(n_bits=16, random_state=1).fit(digits)
    assert a.rotation == "itq"  # the default
    np.testing.assert_array_equal(a.transform(digits), b.transform(digits))
    assert a.transform(digits).shape == (600, 2)
    # Another seed starts the rotation elsewhere: another local optimum.
    assert not np.array_equal(a.rotation_, c.rotation_)
    assert a.rotation_.shape == (16, 16)
    np.testing.assert_allclose(a.rotation_ @ a.rotation_.T, np.eye(16), atol=1e-12)
    assert a.quantization_loss_.shape == (50,)
    assert np.all(np.diff(a.quantization_loss_) <= 1e-12)
    # The SVMs learn the rotated training bits. One generator, as in the
    # hasher: ARPACK's start, then the rotation's.
    rng = np.random.RandomState(0)
    eigenvalues, embedding = sth_module.laplacian_eigenmap(
        digits.astype(float), 16, random_state=rng
    )
    projections, rotation, _ = sth_module.rotate_eigenmap(
        eigenvalues, embedding, eigenvalue_power=0.75, random_state=rng
    )
    np.testing.assert_array_equal(rotation, a.rotation_)
    predicted = np.unpackbits(a.transform(digits), axis=1)
    assert (predicted == (projections > 0)).mean() > 0.9


def test_rotation_survives_a_disconnected_graph():
    # Two far-apart blobs: the first eigenvalue after the trivial one is 0 up
    # to rounding (maybe below it); its weight must stay finite.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.standard_normal((20, 2)), 1e3 + rng.standard_normal((20, 2))])
    hasher = STHHasher(n_bits=4, n_neighbors=8, random_state=0).fit(X)
    assert np.all(np.isfinite(hasher.quantization_loss_))
    assert np.all(np.isfinite(hasher.coef_))
    bits = np.unpackbits(hasher.transform(X), axis=1)[:, :4]
    # The component indicator dominates: every bit splits the two blobs.
    assert np.all(bits[:20] == bits[0]) and np.all(bits[20:] == 1 - bits[0])


def test_rotation_stops_map_falling_with_bits_on_digits():
    from skhash.datasets import retrieval_split
    from skhash.metrics import mean_average_precision

    X, y = load_digits(return_X_y=True)
    split = retrieval_split(
        X / 16, y, n_queries_per_class=20, n_train_per_class=None, random_state=0
    )
    maps = {}
    for rotation in [None, "itq"]:
        for n_bits in [16, 64]:
            hasher = STHHasher(n_bits, rotation=rotation, random_state=0)
            hasher.fit(split.X_database)
            maps[rotation, n_bits] = mean_average_precision(
                hasher.transform(split.X_query),
                hasher.transform(split.X_database),
                split.y_query,
                split.y_database,
            )
    print(maps)
    # Measured: median thresholds 0.578 -> 0.357, rotation 0.761 -> 0.810.
    assert maps[None, 64] < maps[None, 16] - 0.1
    assert maps["itq", 64] > maps["itq", 16]
    assert maps["itq", 64] > maps[None, 64] + 0.3


@pytest.mark.parametrize(
    "params, match",
    [
        ({"rotation": "pca"}, "rotation"),
        ({"rotation": "ITQ"}, "rotation"),
        ({"eigenvalue_power": -0.5}, "eigenvalue_power"),
        ({"eigenvalue_power": "commute"}, "eigenvalue_power"),
    ],
)
def test_bad_rotation_parameters_are_refused(digits, params, match):
    with pytest.raises(ValueError, match=match):
        STHHasher(n_bits=4, **params).fit(digits)
