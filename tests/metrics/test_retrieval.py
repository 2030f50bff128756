import itertools

import numpy as np
import pytest
from sklearn.exceptions import UndefinedMetricWarning

import skhash.utils._memory
from skhash.codes import pack_codes
from skhash.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
)

# The methods.md oracle: one query [1,1,1,1] with labels [1,0,1]; six database
# codes at distances [0,1,1,2,3,4] with relevance order [0,1,1,0,1,0].
QUERY = pack_codes([[1, 1, 1, 1]])
DATABASE = pack_codes(
    [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
)
QUERY_LABELS = np.array([[1, 0, 1]])
DATABASE_LABELS = np.array(
    [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 1, 0], [0, 1, 0]]
)


def test_methods_oracle_map_all_and_at_3():
    args = QUERY, DATABASE, QUERY_LABELS, DATABASE_LABELS
    assert mean_average_precision(*args) == pytest.approx(
        (1 / 2 + 2 / 3 + 3 / 5) / 3, rel=1e-12
    )
    assert round(mean_average_precision(*args), 6) == 0.588889
    assert mean_average_precision(*args, k=3) == pytest.approx(
        (1 / 2 + 2 / 3) / 2, rel=1e-12
    )
    assert round(mean_average_precision(*args, k=3), 6) == 0.583333


def test_methods_oracle_empty_query_zero_halves_skip_keeps():
    queries = np.vstack([QUERY, QUERY])
    labels = np.array([[1, 0, 1], [0, 0, 0]])  # the second query has nothing relevant
    args = queries, DATABASE, labels, DATABASE_LABELS
    assert round(mean_average_precision(*args), 6) == 0.294444
    assert round(mean_average_precision(*args, k=3), 6) == 0.291667
    assert round(mean_average_precision(*args, empty="skip"), 6) == 0.588889
    assert round(mean_average_precision(*args, k=3, empty="skip"), 6) == 0.583333


def test_methods_oracle_second_relevance_order():
    labels = DATABASE_LABELS.copy()
    labels[5] = [1, 0, 0]  # relevance order [0,1,1,0,1,1]
    value = mean_average_precision(QUERY, DATABASE, QUERY_LABELS, labels)
    assert value == pytest.approx((1 / 2 + 2 / 3 + 3 / 5 + 4 / 6) / 4, rel=1e-12)
    assert round(value, 6) == 0.608333


def test_skip_with_every_query_empty_warns_and_reports_zero():
    with pytest.warns(UndefinedMetricWarning):
        value = mean_average_precision(
            QUERY, DATABASE, [[0, 0, 1]], np.zeros((6, 3), int), empty="skip"
        )
    assert value == 0.0


# --- slow, obvious references -------------------------------------------------


def _distances(Q_bits, D_bits):
    return (Q_bits[:, None, :] != D_bits[None, :, :]).sum(axis=2)


def _relevant(yq, yd):
    if yq.ndim == 1:
        return yq[:, None] == yd[None, :]
    return (yq @ yd.T) > 0


def _ap(ranked, k):
    ranked = list(ranked[:k])
    hits, total = 0, 0.0
    for j, rel in enumerate(ranked, start=1):
        if rel:
            hits += 1
            total += hits / j
    return total / hits if hits else None


def _stable_orders(dist_row):
    return [sorted(range(len(dist_row)), key=lambda i: (dist_row[i], i))]


def _all_orders(dist_row):
    n = len(dist_row)
    return [
        p
        for p in itertools.permutations(range(n))
        if all(dist_row[p[i]] <= dist_row[p[i + 1]] for i in range(n - 1))
    ]


def slow_metrics(Q_bits, D_bits, yq, yd, *, k=None, ties="stable", loo=False):
    """MAP (zero and skip), P@k and P(n) by brute force over explicit orderings."""
    dist = _distances(Q_bits, D_bits)
    rel = _relevant(yq, yd)
    aps, keep, precisions = [], [], []
    for q in range(len(Q_bits)):
        columns = [i for i in range(len(D_bits)) if not (loo and i == q)]
        d_row = dist[q, columns]
        r_row = rel[q, columns]
        kk = len(columns) if k is None else k
        orders = _stable_orders(d_row) if ties == "stable" else _all_orders(d_row)
        values = [_ap(r_row[list(o)], kk) for o in orders]
        aps.append(np.mean([v or 0.0 for v in values]))
        keep.append(any(v is not None for v in values))
        precisions.append(np.mean([r_row[list(o)][:kk].mean() for o in orders]))
    aps, keep = np.array(aps), np.array(keep)
    skip = aps[keep].mean() if keep.any() else 0.0  # the documented rule
    return aps.mean(), skip, np.mean(precisions)


def _random_case(seed, n_bits, n_queries, n_database, multilabel):
    rng = np.random.RandomState(seed)
    # Few distinct bits make many ties.
    Q_bits = rng.randint(2, size=(n_queries, n_bits)) * (rng.rand(n_bits) < 0.4)
    D_bits = rng.randint(2, size=(n_database, n_bits)) * (rng.rand(n_bits) < 0.4)
    if multilabel:
        yq = (rng.rand(n_queries, 4) < 0.3).astype(int)
        yd = (rng.rand(n_database, 4) < 0.3).astype(int)
    else:
        yq, yd = rng.randint(3, size=n_queries), rng.randint(3, size=n_database)
    return Q_bits, D_bits, yq, yd


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("n_bits", [5, 13, 37])
@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("ties", ["stable", "average"])
@pytest.mark.parametrize("k", [1, 3, None])
def test_agrees_with_brute_force(n_bits, multilabel, ties, k):
    seed = n_bits + 7 * multilabel
    Q_bits, D_bits, yq, yd = _random_case(seed, n_bits, 6, 7, multilabel)
    Q, D = pack_codes(Q_bits), pack_codes(D_bits)
    zero, skip, precision = slow_metrics(Q_bits, D_bits, yq, yd, k=k, ties=ties)
    kwargs = {"k": k, "ties": ties}
    assert mean_average_precision(Q, D, yq, yd, **kwargs) == pytest.approx(zero)
    assert mean_average_precision(Q, D, yq, yd, empty="skip", **kwargs) == (
        pytest.approx(skip)
    )
    assert precision_at_k(Q, D, yq, yd, k=k or 7, ties=ties) == pytest.approx(precision)


@pytest.mark.parametrize("ties", ["stable", "average"])
def test_leave_one_out_excludes_the_query_itself(ties):
    Q_bits, _, yq, _ = _random_case(3, 11, 7, 1, multilabel=False)
    Q = pack_codes(Q_bits)
    zero, skip, precision = slow_metrics(Q_bits, Q_bits, yq, yq, ties=ties, loo=True)
    assert mean_average_precision(Q, None, yq, ties=ties) == pytest.approx(zero)
    assert mean_average_precision(Q, None, yq, ties=ties, empty="skip") == (
        pytest.approx(skip)
    )
    _, _, p2 = slow_metrics(Q_bits, Q_bits, yq, yq, k=2, ties=ties, loo=True)
    assert precision_at_k(Q, None, yq, k=2, ties=ties) == pytest.approx(p2)


def test_average_ties_split_group_matches_enumeration():
    # All six items tie: every k cuts the one group.
    Q_bits = np.zeros((1, 4), int)
    D_bits = np.zeros((6, 4), int)
    yq, yd = np.array([1]), np.array([1, 0, 0, 1, 0, 1])
    for k in range(1, 7):
        zero, skip, precision = slow_metrics(
            Q_bits, D_bits, yq, yd, k=k, ties="average"
        )
        Q, D = pack_codes(Q_bits), pack_codes(D_bits)
        assert mean_average_precision(Q, D, yq, yd, k=k, ties="average") == (
            pytest.approx(zero)
        )
        assert precision_at_k(Q, D, yq, yd, k=k, ties="average") == pytest.approx(
            precision
        )


@pytest.mark.parametrize("multilabel", [False, True])
def test_radius_precision_and_curves_against_brute_force(multilabel):
    Q_bits, D_bits, yq, yd = _random_case(5, 13, 9, 30, multilabel)
    Q, D = pack_codes(Q_bits), pack_codes(D_bits)
    dist, rel = _distances(Q_bits, D_bits), _relevant(yq, yd)
    for radius in range(5):
        ball = dist <= radius
        per_query = [
            (rel[q] & ball[q]).sum() / ball[q].sum() if ball[q].any() else 0.0
            for q in range(len(Q))
        ]
        assert precision_within_radius(Q, D, yq, yd, radius=radius) == pytest.approx(
            np.mean(per_query)
        )
        pooled = (rel & ball).sum() / ball.sum() if ball.any() else 0.0
        assert precision_within_radius(
            Q, D, yq, yd, radius=radius, average="micro"
        ) == pytest.approx(pooled)

    precision, recall, radii = precision_recall_curve(Q, D, yq, yd, n_bits=13)
    np.testing.assert_array_equal(radii, np.arange(14))
    for r in radii:
        ball = dist <= r
        expected = (rel & ball).sum() / ball.sum() if ball.any() else 0.0
        assert precision[r] == pytest.approx(expected)
        assert recall[r] == pytest.approx((rel & ball).sum() / rel.sum())

    precision, recall, n_returned = precision_recall_curve(
        Q, D, yq, yd, by="n_returned"
    )
    np.testing.assert_array_equal(n_returned, np.arange(1, 31))
    ranked = np.array([rel[q][_stable_orders(dist[q])[0]] for q in range(len(Q))])
    hits = np.cumsum(ranked, axis=1)
    np.testing.assert_allclose(precision, (hits / n_returned).mean(axis=0))
    has = hits[:, -1] > 0
    np.testing.assert_allclose(recall, (hits[has] / hits[has, -1:]).mean(axis=0))


def test_curve_by_n_returned_average_ties_matches_precision_at_k():
    Q_bits, D_bits, yq, yd = _random_case(8, 9, 5, 12, False)
    Q, D = pack_codes(Q_bits), pack_codes(D_bits)
    precision, _, n_returned = precision_recall_curve(
        Q, D, yq, yd, by="n_returned", ties="average"
    )
    for n in n_returned:
        assert precision[n - 1] == pytest.approx(
            precision_at_k(Q, D, yq, yd, k=int(n), ties="average")
        )


@pytest.mark.parametrize("ties", ["stable", "average"])
def test_results_do_not_depend_on_the_batch_size(monkeypatch, ties):
    Q_bits, D_bits, yq, yd = _random_case(11, 21, 40, 50, True)
    Q, D = pack_codes(Q_bits), pack_codes(D_bits)

    def everything():
        return (
            mean_average_precision(Q, D, yq, yd, ties=ties),
            mean_average_precision(Q, D, yq, yd, k=10, ties=ties),
            mean_average_precision(Q, None, yq, ties=ties),
            precision_at_k(Q, D, yq, yd, k=5, ties=ties),
            precision_within_radius(Q, D, yq, yd),
            *precision_recall_curve(Q, D, yq, yd, by="n_returned", ties=ties)[:2],
        )

    expected = everything()
    # Seven query-code pairs a batch (16 bytes each).
    monkeypatch.setattr(skhash.utils._memory, "WORKING_MEMORY", 7 * 16)
    for value, reference in zip(everything(), expected, strict=True):
        np.testing.assert_allclose(value, reference)


def test_large_database_is_processed_in_bounded_batches():
    # 300 queries x 200,000 codes would be a 6e7 matrix; batches keep ~4e6.
    rng = np.random.RandomState(0)
    D = rng.randint(0, 256, size=(200_000, 4), dtype=np.uint8)
    Q = D[:300]
    yd = rng.randint(10, size=len(D))
    value = mean_average_precision(Q, D, yd[:300], yd, k=100)
    assert 0.0 < value <= 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: mean_average_precision(QUERY.astype(float), DATABASE, [0], [0] * 6),
            "dtype uint8",
        ),
        (
            lambda: mean_average_precision(
                QUERY, np.zeros((6, 2), np.uint8), [0], [0] * 6
            ),
            "differ in width",
        ),
        (lambda: mean_average_precision(QUERY, DATABASE, [0], [0] * 5), "6 database"),
        (lambda: mean_average_precision(QUERY, DATABASE, [0], None), "both"),
        (lambda: mean_average_precision(QUERY, DATABASE, [[1, 0]], [0] * 6), "both be"),
        (lambda: precision_at_k(QUERY, None, [0]), "at least 2 queries"),
        (
            lambda: precision_recall_curve(QUERY, DATABASE, [0], [0] * 6, n_bits=9),
            "does not fit",
        ),
    ],
)
def test_bad_input_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"ties": "random"}, {"empty": "nan"}, {"k": 2.5}],
)
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError, match="parameter"):
        mean_average_precision(QUERY, DATABASE, [0], [0] * 6, **kwargs)
    with pytest.raises(ValueError, match="parameter"):
        precision_within_radius(QUERY, DATABASE, [0], [0] * 6, average="weighted")


EMPTY = np.zeros((0, 1), dtype=np.uint8)
METRICS = [
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    precision_recall_curve,
    lambda *args: precision_recall_curve(*args, by="n_returned"),
]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "args, name",
    [
        ((EMPTY, DATABASE, [], [0] * 6), "query_codes"),
        ((EMPTY, None, [], None), "query_codes"),
        ((QUERY, EMPTY, [0], []), "database_codes"),
    ],
    ids=["no queries", "no queries, leave-one-out", "empty database"],
)
def test_no_queries_or_empty_database_is_a_clear_error(metric, args, name):
    # Used to fail deep inside: "need at least one array to concatenate", an
    # AttributeError, or NaN precision for the n_returned curve.
    with pytest.raises(ValueError, match=rf"{name} is empty: .* 0 sample\(s\)"):
        metric(*args)


@pytest.mark.parametrize("ties", ["stable", "average"])
def test_k_larger_than_the_database_ranks_it_whole(ties):
    args = QUERY, DATABASE, QUERY_LABELS, DATABASE_LABELS
    assert mean_average_precision(*args, k=7, ties=ties) == pytest.approx(
        mean_average_precision(*args, ties=ties)
    )
    # Leave-one-out: each of the 6 items is ranked against 5 others.
    labels = [0, 1, 0, 1, 1, 0]
    assert mean_average_precision(DATABASE, None, labels, k=6, ties=ties) == (
        pytest.approx(mean_average_precision(DATABASE, None, labels, ties=ties))
    )


@pytest.mark.parametrize("ties", ["stable", "average"])
def test_precision_at_k_larger_than_the_database_warns(ties):
    # Three relevant items out of six; the four missing ranks are not relevant.
    with pytest.warns(UndefinedMetricWarning, match="k=10 is larger than the 6"):
        value = precision_at_k(
            QUERY, DATABASE, QUERY_LABELS, DATABASE_LABELS, k=10, ties=ties
        )
    assert value == pytest.approx(3 / 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: mean_average_precision(QUERY, DATABASE, [0], [0] * 6, k=True),
        lambda: precision_at_k(QUERY, DATABASE, [0], [0] * 6, k=True),
        lambda: precision_within_radius(QUERY, DATABASE, [0], [0] * 6, radius=False),
        lambda: precision_recall_curve(QUERY, DATABASE, [0], [0] * 6, n_bits=True),
    ],
)
def test_bools_are_not_counts(call):
    with pytest.raises(ValueError, match="must be an int .* Got (True|False)"):
        call()


@pytest.mark.parametrize("radius", [8, 9, 64, 65, 2**40])
def test_leave_one_out_radius_beyond_the_code_length_excludes_the_query(radius):
    # Found by the property tests: at radius 65 each 64-bit query counted
    # itself (0.5 here instead of 1.0).
    codes = pack_codes([[0] * 8, [0] * 8])
    assert precision_within_radius(codes, None, [0, 0], radius=radius) == 1.0
