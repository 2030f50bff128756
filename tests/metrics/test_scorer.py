import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skhash import HammingNeighbors, LSHHasher
from skhash.metrics import (
    get_retrieval_scorer,
    get_retrieval_scorer_names,
    make_retrieval_scorer,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def _multilabel(y):
    # Two overlapping labels per digit: the digit itself and its parity.
    Y = np.zeros((len(y), 12), dtype=np.uint8)
    Y[np.arange(len(y)), y] = 1
    Y[np.arange(len(y)), 10 + y % 2] = 1
    return Y


@pytest.mark.parametrize("multilabel", [False, True])
def test_pipeline_ending_in_neighbors_scores_held_out_queries(digits, multilabel):
    X, y = digits
    y = _multilabel(y) if multilabel else y
    pipe = Pipeline(
        [("hash", LSHHasher(n_bits=13, random_state=0)), ("nn", HammingNeighbors())]
    ).fit(X[:400], y[:400])
    scorer = make_retrieval_scorer("mean_average_precision", k=50, ties="average")
    database = pipe[0].transform(X[:400])
    queries = pipe[0].transform(X[400:])
    expected = mean_average_precision(
        queries, database, y[400:], y[:400], k=50, ties="average"
    )
    assert scorer(pipe, X[400:], y[400:]) == pytest.approx(expected)
    # The default scorer of the pipeline is HammingNeighbors.score: MAP@all.
    assert pipe.score(X[400:], y[400:]) == pytest.approx(
        mean_average_precision(queries, database, y[400:], y[:400])
    )


def test_bare_neighbors_scores_codes(digits):
    X, y = digits
    hasher = LSHHasher(n_bits=16, random_state=0).fit(X)
    codes = hasher.transform(X)
    nn = HammingNeighbors().fit(codes[:400], y[:400])
    scorer = get_retrieval_scorer("precision@10")
    assert scorer(nn, codes[400:], y[400:]) == pytest.approx(
        precision_at_k(codes[400:], codes[:400], y[400:], y[:400], k=10)
    )


@pytest.mark.parametrize("multilabel", [False, True])
def test_hasher_scores_leave_one_out_inside_the_fold(digits, multilabel):
    X, y = digits
    y = _multilabel(y) if multilabel else y
    pipe = Pipeline(
        [("scale", StandardScaler()), ("hash", LSHHasher(n_bits=24, random_state=1))]
    ).fit(X[:300])
    codes = pipe.transform(X[300:])
    scorer = get_retrieval_scorer("radius_precision@1")
    assert scorer(pipe, X[300:], y[300:]) == pytest.approx(
        precision_within_radius(codes, None, y[300:], None, radius=1)
    )
    # Leave-one-out by hand: each item against the others.
    slow = []
    for i in range(len(codes)):
        others = np.delete(np.arange(len(codes)), i)
        slow.append(
            mean_average_precision(
                codes[i : i + 1], codes[others], y[300:][i : i + 1], y[300:][others]
            )
        )
    assert get_retrieval_scorer("map")(pipe, X[300:], y[300:]) == pytest.approx(
        np.mean(slow)
    )


def test_grid_search_over_bits_with_and_without_scoring(digits):
    X, y = digits
    pipe = Pipeline([("hash", LSHHasher(random_state=0)), ("nn", HammingNeighbors())])
    grid = {"hash__n_bits": [8, 16, 64]}
    cv = KFold(3, shuffle=True, random_state=0)
    default = GridSearchCV(pipe, grid, cv=cv).fit(X, y)
    scored = GridSearchCV(pipe, grid, cv=cv, scoring=get_retrieval_scorer("map")).fit(
        X, y
    )
    np.testing.assert_allclose(
        default.cv_results_["mean_test_score"], scored.cv_results_["mean_test_score"]
    )
    # Longer random codes preserve neighbourhoods better.
    assert default.best_params_ == {"hash__n_bits": 64}


def test_multi_metric_cross_validate_on_a_bare_hasher(digits):
    X, y = digits
    scoring = {
        name: get_retrieval_scorer(name) for name in ["map", "map@20", "precision@5"]
    }
    results = cross_validate(
        LSHHasher(n_bits=32, random_state=0), X, y, scoring=scoring, cv=2
    )
    for name in scoring:
        scores = results[f"test_{name}"]
        assert scores.shape == (2,) and ((scores > 0) & (scores <= 1)).all()


def test_registry_names_and_errors():
    assert get_retrieval_scorer_names() == [
        "map",
        "precision",
        "radius_precision",
        "recall",
    ]
    assert (
        repr(get_retrieval_scorer("map"))
        == "make_retrieval_scorer('mean_average_precision')"
    )
    assert repr(get_retrieval_scorer("radius_precision")) == (
        "make_retrieval_scorer('precision_within_radius', radius=2)"
    )
    with pytest.raises(ValueError, match="Unknown retrieval scorer"):
        get_retrieval_scorer("mAP")
    with pytest.raises(ValueError, match="Unknown retrieval scorer"):
        get_retrieval_scorer("ndcg@3")
    with pytest.raises(ValueError, match="Unknown retrieval metric"):
        make_retrieval_scorer("accuracy")
    with pytest.raises(TypeError):
        make_retrieval_scorer("precision_at_k", radius=2)


@pytest.mark.parametrize("name", ["map@0", "precision@0"])
def test_registry_names_with_a_bad_number_fail_when_made(name):
    # They used to be accepted and turn into a NaN score on every fold.
    with pytest.raises(ValueError, match=f"Invalid retrieval scorer '{name}'.*'k'"):
        get_retrieval_scorer(name)


@pytest.mark.parametrize(
    "name, number",
    [
        # Other scripts' digits: int() and re's \d read "\u0663" as 3.
        ("map@\u0663", "\u0663"),
        ("precision@\uff15", "\uff15"),
        ("radius_precision@\u0968", "\u0968"),
        # One spelling per number.
        ("map@01", "01"),
        ("map@00", "00"),
        ("radius_precision@02", "02"),
        ("map@-3", "-3"),
        ("map@+3", "+3"),
        ("map@ 3", " 3"),
        ("map@3\n", "3\n"),
        ("map@", ""),
    ],
)
def test_registry_numbers_are_plain_ascii_decimal(name, number):
    with pytest.raises(ValueError) as error:
        get_retrieval_scorer(name)
    message = str(error.value)
    assert message.startswith(f"Invalid retrieval scorer {name!r}: ")
    assert message.endswith(f"got {number!r}.")


def test_registry_numbers_in_ascii_are_read():
    assert repr(get_retrieval_scorer("map@10")) == (
        "make_retrieval_scorer('mean_average_precision', k=10)"
    )
    # A radius of 0 is a real radius: exact matches only.
    assert repr(get_retrieval_scorer("radius_precision@0")) == (
        "make_retrieval_scorer('precision_within_radius', radius=0)"
    )


@pytest.mark.parametrize(
    "metric, params, match",
    [
        ("mean_average_precision", {"k": 0}, "range"),
        ("mean_average_precision", {"k": True}, "Got True"),
        ("precision_at_k", {"k": 2.5}, "range"),
        ("precision_at_k", {"k": None}, "range"),
        ("precision_at_k", {"ties": "random"}, "'ties'"),
        ("precision_within_radius", {"radius": -1}, "range"),
        ("precision_within_radius", {"radius": False}, "Got False"),
    ],
)
def test_bad_metric_parameters_fail_when_the_scorer_is_made(metric, params, match):
    with pytest.raises(ValueError, match=match):
        make_retrieval_scorer(metric, **params)


def test_k_larger_than_the_fold_gives_grid_search_real_scores(digits):
    # A training fold of 400 is a database smaller than k=1000. That used to
    # raise inside the scorer: every score NaN and the first candidate chosen.
    X, y = digits
    pipe = Pipeline([("hash", LSHHasher(random_state=0)), ("nn", HammingNeighbors())])
    grid = {"hash__n_bits": [8, 64]}
    cv = KFold(3, shuffle=True, random_state=0)
    scoring = {name: get_retrieval_scorer(name) for name in ["map@1000", "map"]}
    search = GridSearchCV(pipe, grid, cv=cv, scoring=scoring, refit="map@1000")
    search.fit(X, y)
    scores = search.cv_results_["mean_test_map@1000"]
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, search.cv_results_["mean_test_map"])
    assert search.best_params_ == {"hash__n_bits": 64}


def test_precision_at_k_larger_than_the_fold_warns(digits):
    X, y = digits
    scorer = get_retrieval_scorer("precision@1000")
    with pytest.warns(UndefinedMetricWarning, match="k=1000 is larger than the 199"):
        score = scorer(LSHHasher(n_bits=16, random_state=0).fit(X), X[:200], y[:200])
    # Every other item of the fold is returned: its relevant ones over k.
    same_class = (y[:200, None] == y[None, :200]).sum(axis=1) - 1
    assert score == pytest.approx(same_class.mean() / 1000)


def test_scorer_needs_labels_on_both_sides(digits):
    X, y = digits
    codes = LSHHasher(n_bits=8, random_state=0).fit_transform(X)
    scorer = get_retrieval_scorer("map")
    with pytest.raises(ValueError, match="need labels"):
        scorer(LSHHasher(n_bits=8).fit(X), X, None)
    with pytest.raises(ValueError, match="fitted without y"):
        scorer(HammingNeighbors().fit(codes), codes, y)
