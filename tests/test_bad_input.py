"""The bad-input matrix: every public estimator against hostile input.

Each case gives a clear error, or a result equal to the one from clean input.
Estimators are discovered, so a new one gets the matrix for free: a hasher
through its ``fit`` / ``transform``, ``HammingNeighbors`` and
``RescoringNeighbors`` through their search methods; anything else fails
``test_every_estimator_is_in_the_matrix``.
"""

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from test_common import FAST_PARAMS

from skhash import HammingNeighbors, RescoringNeighbors, pack_codes
from skhash.base import MAX_N_BITS, BaseHasher
from skhash.utils import all_estimators

HASHERS = [(n, c) for n, c in all_estimators() if issubclass(c, BaseHasher)]
HASHER_IDS = [name for name, _ in HASHERS]


def test_every_estimator_is_in_the_matrix():
    covered = set(HASHER_IDS) | {"HammingNeighbors", "RescoringNeighbors"}
    assert {name for name, _ in all_estimators()} <= covered


def _data(n_samples=40, n_features=6, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n_samples) % 3
    X = rng.normal(size=(n_samples, n_features)) + y[:, None]
    return X, y


def _hasher(name, cls, **params):
    return cls(**{**FAST_PARAMS[name], **params})


def _takes_y(cls):
    return cls().__sklearn_tags__().target_tags.required or cls._optional_y


def _fit_codes(hasher, X, y):
    return hasher.fit(X, y).transform(X)


@pytest.mark.parametrize(("name", "cls"), HASHERS, ids=HASHER_IDS)
@pytest.mark.parametrize(
    ("make_bad", "error", "match"),
    [
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X),
         ValueError, "NaN"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.inf, X),
         ValueError, "infinity"),
        (lambda X: X[:0], ValueError, "0 sample"),
        (lambda X: X[:, 0], ValueError, "2D array"),
        (lambda X: X[:, :, None], ValueError, "dim 3"),
        (lambda X: sp.csr_matrix(X), TypeError, "[Ss]parse"),
        (lambda X: X.astype(str).astype(object) + "x", ValueError, "convert"),
    ],
    ids=["nan", "inf", "empty", "1-D", "3-D", "sparse", "strings"],
)  # fmt: skip
def test_hasher_rejects_bad_X(name, cls, make_bad, error, match):
    X, y = _data()
    with pytest.raises(error, match=match):
        _hasher(name, cls).fit(make_bad(X), y)
    fitted = _hasher(name, cls).fit(X, y)
    with pytest.raises(error, match=match):
        fitted.transform(make_bad(X))


@pytest.mark.parametrize(("name", "cls"), HASHERS, ids=HASHER_IDS)
def test_hasher_input_forms_give_the_same_codes(name, cls):
    X, y = _data()
    codes = _fit_codes(_hasher(name, cls), X, y)
    n_bits = FAST_PARAMS[name]["n_bits"]
    assert codes.dtype == np.uint8 and codes.shape == (len(X), -(-n_bits // 8))
    forms = {
        "list": (X.tolist(), y.tolist()),
        "DataFrame": (pd.DataFrame(X), pd.Series(y)),
        "Fortran": (np.asfortranarray(X), y),
        "read-only": (_read_only(X), _read_only(y)),
        "float32": (X.astype(np.float32), y),
        "string labels": (X, np.array(["a", "b", "c"])[y]),
    }
    if not _takes_y(cls):
        del forms["string labels"]
    for form, (X_form, y_form) in forms.items():
        hasher = _hasher(name, cls)
        if form == "float32":
            # Bits from float32 input equal float64's when the data are exactly
            # representable in both.
            X32 = X.astype(np.float32)
            np.testing.assert_array_equal(
                _fit_codes(hasher, X32, y),
                _fit_codes(_hasher(name, cls), X32.astype(np.float64), y),
                err_msg=form,
            )
            continue
        np.testing.assert_array_equal(
            _fit_codes(hasher, X_form, y_form), codes, err_msg=form
        )


def _read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


@pytest.mark.parametrize(("name", "cls"), HASHERS, ids=HASHER_IDS)
def test_hasher_one_row_and_transform_errors(name, cls):
    X, y = _data()
    if cls._min_samples > 1:
        with pytest.raises(ValueError, match="minimum of"):
            _hasher(name, cls).fit(X[:1], y[:1])
    with pytest.raises(NotFittedError):
        _hasher(name, cls).transform(X)
    fitted = _hasher(name, cls).fit(X, y)
    np.testing.assert_array_equal(fitted.transform(X[:1]), fitted.transform(X)[:1])
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :-1])


@pytest.mark.parametrize(("name", "cls"), HASHERS, ids=HASHER_IDS)
@pytest.mark.parametrize("n_bits", [True, 0, -1, 2.0, "8", MAX_N_BITS + 1, 2**20])
def test_absurd_n_bits_fail_before_any_work(name, cls, n_bits):
    X, y = _data()
    with pytest.raises(InvalidParameterError, match="n_bits"):
        _hasher(name, cls, n_bits=n_bits).fit(X, y)


@pytest.mark.parametrize(("name", "cls"), HASHERS, ids=HASHER_IDS)
def test_longest_codes_fit_or_fail_at_once_without_gigabytes(name, cls):
    """n_bits=MAX_N_BITS on small data: codes, or the method's own bound."""
    X, y = _data(n_samples=30, n_features=5)
    hasher = _hasher(name, cls, n_bits=MAX_N_BITS)
    max_n_bits = hasher._max_n_bits(*X.shape)
    tracemalloc.start()
    try:
        if max_n_bits is not None and max_n_bits < MAX_N_BITS:
            with pytest.raises(ValueError, match=f"at most {max_n_bits}"):
                hasher.fit(X, y)
        else:
            assert hasher.fit(X, y).transform(X).shape == (30, MAX_N_BITS // 8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 512 * 2**20, f"{peak / 2**20:.0f} MiB traced by NumPy"


@pytest.mark.parametrize(("name", "cls"), HASHERS, ids=HASHER_IDS)
def test_bound_on_n_bits_is_exact(name, cls):
    X, y = _data()
    max_n_bits = _hasher(name, cls)._max_n_bits(*X.shape)
    if max_n_bits is None:
        pytest.skip(f"{name} has no data-dependent bound")
    assert _fit_codes(_hasher(name, cls, n_bits=max_n_bits), X, y).shape[1] == (
        -(-max_n_bits // 8)
    )
    with pytest.raises(ValueError, match=f"at most {max_n_bits}"):
        _hasher(name, cls, n_bits=max_n_bits + 1).fit(X, y)


SUPERVISED = [(n, c) for n, c in HASHERS if _takes_y(c)]


@pytest.mark.parametrize(("name", "cls"), SUPERVISED, ids=[n for n, _ in SUPERVISED])
def test_labels(name, cls):
    X, y = _data()
    codes = _fit_codes(_hasher(name, cls), X, y)
    # A column vector is class labels, as in scikit-learn, not a one-label
    # indicator matrix.
    with pytest.warns(DataConversionWarning, match="column-vector"):
        column = _fit_codes(_hasher(name, cls), X, y[:, None])
    np.testing.assert_array_equal(column, codes)
    # Any encoding of the same partition gives the same codes, even one that
    # sorts the classes in another order.
    renamed = np.array(["x", "2", "10"])[y]
    np.testing.assert_array_equal(_fit_codes(_hasher(name, cls), X, renamed), codes)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _hasher(name, cls).fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        _hasher(name, cls).fit(X, np.where(y == 0, np.nan, y))
    multi_label = np.column_stack([y == 0, y == 1, y != 1]).astype(int)
    assert _fit_codes(_hasher(name, cls), X, multi_label).shape == codes.shape
    if cls._optional_y:
        return
    with pytest.raises(ValueError, match="requires y"):
        _hasher(name, cls).fit(X)
    with pytest.raises(ValueError, match="at least two classes"):
        _hasher(name, cls).fit(X, np.zeros(len(X)))


# HammingNeighbors: codes of 20 bits, with duplicates, and labels.
def _database(n_codes=60, seed=0):
    rng = np.random.RandomState(seed)
    bits = rng.randint(0, 2, size=(n_codes // 2, 20))
    return pack_codes(np.vstack([bits, bits[::-1]])), np.arange(n_codes) % 4


@pytest.mark.parametrize(
    ("X", "match"),
    [
        # NaN bytes are no codes: the dtype is what is wrong.
        (np.full((3, 3), np.nan, np.float32), "dtype uint8, got dtype float32"),
        (np.zeros((0, 3), np.uint8), "0 sample"),
        (np.zeros(3, np.uint8), "2D array"),
        (np.ones((3, 3), bool), "unpacked bits"),
        (np.full((3, 3), 300), "uint8"),
        (np.full((3, 3), 3.0), "uint8"),
        ([[1, 2, 3]], "uint8"),  # a list cannot say that its integers are bytes
        (sp.csr_matrix(np.ones((3, 3), np.uint8)), "[Ss]parse"),
    ],
    ids=["nan", "empty", "1-D", "bool", "int", "float", "list", "sparse"],
)
def test_neighbors_reject_what_is_not_codes(X, match):
    database, y = _database()
    with pytest.raises((ValueError, TypeError), match=match):
        HammingNeighbors().fit(X)
    nn = HammingNeighbors().fit(database, y)
    # Queries of another width are refused for that first.
    match = f"{match}|features"
    with pytest.raises((ValueError, TypeError), match=match):
        nn.kneighbors(X)
    with pytest.raises((ValueError, TypeError), match=match):
        nn.radius_neighbors_graph(X)


def test_neighbors_input_forms_give_the_same_results():
    database, y = _database()
    expected = HammingNeighbors(n_neighbors=7).fit(database, y)
    queries = database[::3]
    forms = [
        (np.asfortranarray(database), pd.Series(y), np.asfortranarray(queries)),
        (_read_only(database), _read_only(y), _read_only(queries)),
        (database[:, ::-1][:, ::-1], y, np.repeat(queries, 2, axis=0)[::2]),
        (database, y[:, None], queries),
    ]
    for X, labels, Q in forms:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataConversionWarning)
            nn = HammingNeighbors(n_neighbors=7).fit(X, labels)
        for got, want in zip(
            nn.kneighbors(Q), expected.kneighbors(queries), strict=True
        ):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(nn.predict(Q), expected.predict(queries))
        assert nn.score(Q, y[::3]) == expected.score(queries, y[::3])


@pytest.mark.parametrize("n_neighbors", [0, -1, True, 2.5, 61])
def test_neighbors_reject_absurd_k(n_neighbors):
    database, _ = _database()
    nn = HammingNeighbors().fit(database)
    with pytest.raises(ValueError, match="n_neighbors"):
        nn.kneighbors(database, n_neighbors=n_neighbors)
    with pytest.raises(ValueError, match="n_neighbors"):
        nn.kneighbors_graph(n_neighbors=min(n_neighbors, 60))
    if n_neighbors != 61:
        with pytest.raises(InvalidParameterError, match="n_neighbors"):
            HammingNeighbors(n_neighbors=n_neighbors).fit(database)


@pytest.mark.parametrize("radius", [-1, True, 2.0, None])
def test_neighbors_reject_absurd_radius(radius):
    database, _ = _database()
    nn = HammingNeighbors().fit(database)
    if radius is not None:
        with pytest.raises(ValueError, match="radius"):
            nn.radius_neighbors(database, radius=radius)
    with pytest.raises(InvalidParameterError, match="radius"):
        HammingNeighbors(radius=radius).fit(database)


@pytest.mark.parametrize("n_jobs", [0, True, 1.5])
def test_neighbors_reject_absurd_n_jobs(n_jobs):
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        HammingNeighbors(n_jobs=n_jobs).fit(_database()[0])


def test_neighbors_need_labels_and_fitting():
    database, y = _database()
    with pytest.raises(NotFittedError):
        HammingNeighbors().kneighbors(database)
    nn = HammingNeighbors().fit(database)
    for method in (nn.predict, lambda X: nn.score(X, y)):
        with pytest.raises(ValueError, match="needs the database labels"):
            method(database)
    with pytest.raises(ValueError, match="labels"):
        HammingNeighbors().fit(database, y[:-1])


# RescoringNeighbors: float vectors, rescored candidates of their sign codes.
def _vectors(n_samples=60, n_features=12, seed=0):
    return np.random.RandomState(seed).normal(size=(n_samples, n_features))


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.full((3, 12), np.nan), "NaN or infinite"),
        (np.vstack([np.ones((2, 12)), np.full((1, 12), -np.inf)]), "first at row 2"),
        (np.zeros((0, 12)), "0 sample"),
        (np.zeros(12), "2D array"),
        (np.full((3, 12), "a"), "convert string to float"),
        (np.ones((3, 12)) * 1j, "Complex data"),
        (sp.csr_matrix(np.ones((3, 12))), "[Ss]parse"),
    ],
    ids=["nan", "inf", "empty", "1-D", "str", "complex", "sparse"],
)
def test_rescoring_rejects_what_is_not_vectors(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RescoringNeighbors().fit(X)
    nn = RescoringNeighbors().fit(_vectors())
    for search in (nn.kneighbors, lambda Q: nn.radius_neighbors(Q, radius=0.5)):
        with pytest.raises((ValueError, TypeError), match=match):
            search(X)
    with pytest.raises(ValueError, match="5 features"):
        nn.kneighbors(np.ones((3, 5)))


def test_rescoring_input_forms_give_the_same_results():
    X = _vectors()
    expected = RescoringNeighbors(n_neighbors=4).fit(X).kneighbors(X[::3])
    forms = [
        (np.asfortranarray(X), np.asfortranarray(X[::3])),
        (_read_only(X), _read_only(X[::3])),
        (pd.DataFrame(X), pd.DataFrame(X[::3])),
        (X.tolist(), X[::3].tolist()),
    ]
    for database, queries in forms:
        nn = RescoringNeighbors(n_neighbors=4).fit(database)
        for got, want in zip(nn.kneighbors(queries), expected, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n_neighbors", [0, -1, True, 2.5, 61])
def test_rescoring_rejects_absurd_k(n_neighbors):
    nn = RescoringNeighbors().fit(_vectors())
    with pytest.raises(ValueError, match="n_neighbors"):
        nn.kneighbors(_vectors()[:3], n_neighbors=n_neighbors)


def test_rescoring_rejects_fewer_candidates_than_neighbours():
    nn = RescoringNeighbors(n_neighbors=5, n_candidates=2).fit(_vectors())
    with pytest.raises(ValueError, match="n_candidates"):
        nn.kneighbors(_vectors()[:3])
