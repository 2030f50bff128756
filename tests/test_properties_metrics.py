"""Property-based tests of skhash.metrics against their textbook definitions.

The references rank each query's database by sorting (distance, index) pairs in
Python, with distances counted on unpacked bits, and compute every metric from
that ranking in exact fractions. ``ties="average"`` is checked against its
definition itself: the mean over every ordering of each group of equal
distances, enumerated (on databases small enough for that).

Profiles (tests/conftest.py): ``ci``, the default, runs a bounded,
derandomized set of examples; ``HYPOTHESIS_PROFILE=long`` thousands of fresh
ones per test.
"""

import contextlib
import warnings
from fractions import Fraction
from itertools import combinations, groupby, product
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning

from skhash import HammingNeighbors
from skhash.codes import pack_codes
from skhash.metrics import (
    get_retrieval_scorer,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
)

N_BITS = st.one_of(
    st.integers(1, 1024),
    st.integers(1, 6),  # short codes: few distinct distances, long tie groups
    st.sampled_from([8, 9, 63, 64, 65, 128, 1024]),
)


class Retrieval:
    """Queries and database as bits and labels; database None: leave-one-out."""

    def __init__(self, recipe, query_bits, database_bits, labels, database_labels):
        self.recipe = recipe
        self.query_bits, self.database_bits = query_bits, database_bits
        self.query_labels, self.database_labels = labels, database_labels

    def __repr__(self):
        # The recipe (with the bits when they are few), not hundreds of rows.
        return f"Retrieval({self.recipe!r})"

    @property
    def leave_one_out(self):
        return self.database_bits is None

    @property
    def n_bytes(self):
        return (self.query_bits.shape[1] + 7) // 8

    @property
    def n_database(self):
        return (
            len(self.query_bits) - 1 if self.leave_one_out else len(self.database_bits)
        )

    def args(self):
        """The four data arguments of every metric."""
        if self.leave_one_out:
            return pack_codes(self.query_bits), None, self.query_labels, None
        return (
            pack_codes(self.query_bits),
            pack_codes(self.database_bits),
            self.query_labels,
            self.database_labels,
        )

    def rankings(self):
        """Per query, [(distance, index, relevant)] sorted by (distance, index);
        leaving one out, the query itself is not in its ranking."""
        database = self.query_bits if self.leave_one_out else self.database_bits
        labels = self.query_labels if self.leave_one_out else self.database_labels
        out = []
        for i, (bits, label) in enumerate(
            zip(self.query_bits, self.query_labels, strict=True)
        ):
            items = [
                (int((bits != database[j]).sum()), j, shares_a_label(label, labels[j]))
                for j in range(len(database))
                if not (self.leave_one_out and j == i)
            ]
            out.append(sorted(items))
        return out


def shares_a_label(a, b):
    """Equal class labels, or a label on in both indicator rows."""
    if np.ndim(a) == 0:
        return bool(a == b)
    return any(x and y for x, y in zip(a, b, strict=True))


@st.composite
def retrievals(draw, max_database=120, max_queries=25, leave_one_out=None):
    """Queries, database and labels; the parameters drawn go in the recipe
    (what a failing example prints) so that the case can be rebuilt."""
    recipe = dict(n_bits=draw(N_BITS))
    n_bits = recipe["n_bits"]
    if leave_one_out is None:
        leave_one_out = draw(st.booleans())
    if leave_one_out:
        recipe["n_queries"] = draw(st.integers(2, max_database + 1))
        recipe["n_database"] = None  # the queries, each without itself
    else:
        recipe["n_queries"] = draw(st.integers(1, max_queries))
        recipe["n_database"] = draw(st.integers(1, max_database))
    q = recipe["n_queries"]
    n = q + (recipe["n_database"] or 0)
    recipe["seed"] = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(recipe["seed"])
    # Codes from a small pool of centres, flipped or not: duplicates and ties.
    recipe["centres"] = draw(st.integers(1, 8))
    recipe["flips_per_row"] = draw(st.sampled_from([0.0, 0.5, 2.0, n_bits / 2]))
    centres = rng.integers(0, 2, (recipe["centres"], n_bits), dtype=np.uint8)
    bits = centres[rng.integers(recipe["centres"], size=n)]
    bits ^= (rng.random(bits.shape) < recipe["flips_per_row"] / n_bits).astype(np.uint8)
    # Class labels (int or str, some queries' class absent from the database)
    # or indicator rows, some all zero: queries with nothing relevant. (One
    # indicator column would be read as class labels, as in scikit-learn.)
    recipe["labels"] = draw(st.sampled_from(["int", "str", "multilabel"]))
    if recipe["labels"] == "multilabel":
        recipe["n_labels"] = draw(st.integers(2, 4))
        recipe["density"] = draw(st.sampled_from([0.1, 0.3, 0.7]))
        shape = (n, recipe["n_labels"])
        y = (rng.random(shape) < recipe["density"]).astype(np.int64)
    else:
        recipe["n_classes"] = draw(st.integers(1, 5))
        y = rng.integers(recipe["n_classes"], size=n)
        y = np.array(list("abcde"))[y] if recipe["labels"] == "str" else y
    if n * n_bits <= 64:
        recipe.update(bits=bits.tolist(), y=y.tolist())
    if leave_one_out:
        return Retrieval(recipe, bits, None, y, None)
    return Retrieval(recipe, bits[:q], bits[q:], y[:q], y[q:])


def average_precision(relevant, k):
    """AP@k of one ranking's relevance: the mean of precision@j over the
    relevant ranks j <= k; None when nothing relevant is in the top k."""
    hits, total = 0, Fraction(0)
    for j, is_relevant in enumerate(relevant[:k], start=1):
        if is_relevant:
            hits += 1
            total += Fraction(hits, j)
    return total / hits if hits else None


def mean_ap(per_query, empty):
    """MAP from each query's list of (weight, AP or None) over its orderings.

    A query is skipped (empty="skip") only when no ordering has a relevant
    item in its top k; inside a query, orderings with none count 0.
    """
    values = []
    for outcomes in per_query:
        if empty == "skip" and all(ap is None for _, ap in outcomes):
            continue
        values.append(sum(w * (ap or 0) for w, ap in outcomes))
    if not values:
        return Fraction(0), True  # the mean over no query: 0.0, with a warning
    return sum(values) / len(values), False


def tie_orderings(ranking):
    """Every relevance sequence that orderings of the tie groups give.

    Inside a group of n items with r relevant, each of the n! orderings is
    equally likely and each placement of the r relevant ones among n positions
    comes from r! (n - r)! of them, so all C(n, r) placements are equally
    likely; groups are independent. Yields (probability, sequence).
    """
    placements = []
    for _, group in groupby(ranking, key=lambda item: item[0]):
        relevant = [item[2] for item in group]
        n, r = len(relevant), sum(relevant)
        placements.append(
            [tuple(p in ones for p in range(n)) for ones in combinations(range(n), r)]
        )
    weight = Fraction(1, int(np.prod([len(p) for p in placements])))
    for parts in product(*placements):
        yield weight, [x for part in parts for x in part]


def reference_map(relevance, k, empty):
    """MAP@k with stable ties (k=None or past the database: all of it)."""
    return mean_ap([[(1, average_precision(r, k))] for r in relevance], empty)


def reference_precision_at_k(relevance, k):
    # Ranks past the end of the database count as not relevant.
    return Fraction(sum(sum(r[:k]) for r in relevance), k * len(relevance))


def reference_radius_precision(rankings, radius, average):
    in_ball = [[rel for d, _, rel in r if d <= radius] for r in rankings]
    if average == "micro":
        pairs = sum(len(b) for b in in_ball)
        return Fraction(sum(sum(b) for b in in_ball), pairs) if pairs else 0
    per_query = [Fraction(sum(b), len(b)) if b else 0 for b in in_ball]
    return Fraction(sum(per_query), len(per_query))


def reference_curve_by_radius(rankings, last):
    """Precision and recall of everything within r, pooled over all pairs."""
    pairs = [(d, rel) for r in rankings for d, _, rel in r]
    n_relevant = sum(rel for _, rel in pairs)
    precision, recall = [], []
    for radius in range(last + 1):
        within = [rel for d, rel in pairs if d <= radius]
        precision.append(Fraction(sum(within), len(within)) if within else 0)
        recall.append(Fraction(sum(within), n_relevant) if n_relevant else 0)
    return precision, recall


def reference_curve_by_n_returned(hits, n_relevant):
    """hits[q][n - 1]: relevant items among query q's first n (or their mean
    over orderings). Precision averages over queries, recall over the queries
    with something relevant."""
    n_queries, n_database = len(hits), len(hits[0])
    with_relevant = [q for q in range(n_queries) if n_relevant[q]]
    precision, recall = [], []
    for n in range(1, n_database + 1):
        precision.append(Fraction(sum(h[n - 1] for h in hits), n * n_queries))
        ratios = [Fraction(hits[q][n - 1]) / n_relevant[q] for q in with_relevant]
        recall.append(sum(ratios) / len(ratios) if ratios else 0)
    return precision, recall


def assert_warns_exactly(record, expected):
    """Exactly one UndefinedMetricWarning if expected, else no warning at all."""
    categories = [w.category for w in record]
    assert categories == ([UndefinedMetricWarning] if expected else []), [
        str(w.message) for w in record
    ]


def run(metric, *args, **kwargs):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        value = metric(*args, **kwargs)
    return value, record


def assert_close(value, want, what=""):
    # Exact fractions against float64 sums: only rounding may differ.
    assert value == pytest.approx(float(want), rel=1e-12, abs=1e-15), what


def assert_curve(got, want, thresholds):
    precision, recall, got_thresholds = got
    np.testing.assert_array_equal(got_thresholds, np.array(thresholds))
    for got_values, want_values in zip((precision, recall), want, strict=True):
        np.testing.assert_allclose(
            got_values, np.array(want_values, float), rtol=1e-12, atol=1e-15
        )


# The working memory, patched by name: when it moves, only the tests that
# patch it fail, with the name that must be updated.
WORKING_MEMORY = "skhash.utils._memory.WORKING_MEMORY"
# Its bytes per query-code pair of a metric's batch.
PAIR_BYTES = 16


def batches(size):
    """Tiny query batches, so that results are joined across many of them."""
    if not size:
        return contextlib.nullcontext()
    return mock.patch(WORKING_MEMORY, size * PAIR_BYTES)


BATCH = st.sampled_from([None, 1, 5, 64])


@given(problem=retrievals(), data=st.data(), batch=BATCH)
def test_stable_map_and_precision_at_k_match_the_reference(problem, data, batch):
    n_database = problem.n_database
    k = data.draw(st.one_of(st.none(), st.integers(1, n_database + 3)), label="k")
    empty = data.draw(st.sampled_from(["zero", "skip"]), label="empty")
    relevance = [[rel for _, _, rel in r] for r in problem.rankings()]
    # A k past the database ranks all of it: MAP@k is then MAP.
    want, all_skipped = reference_map(relevance, k, empty)
    with batches(batch):
        got, record = run(mean_average_precision, *problem.args(), k=k, empty=empty)
    assert_close(got, want)
    assert_warns_exactly(record, all_skipped)

    k = k or data.draw(st.integers(1, n_database + 3), label="precision k")
    with batches(batch):
        got, record = run(precision_at_k, *problem.args(), k=k)
    assert_close(got, reference_precision_at_k(relevance, k))
    # Past the database precision@k no longer depends on the codes: it warns.
    assert_warns_exactly(record, k > n_database)


@given(problem=retrievals(), data=st.data(), batch=BATCH)
def test_precision_within_radius_matches_the_reference(problem, data, batch):
    radius = data.draw(
        st.one_of(
            st.integers(0, 8 * problem.n_bytes + 5),
            st.integers(0, 3),
            st.sampled_from([2**31, 2**63, 2**64]),
        ),
        label="radius",
    )
    rankings = problem.rankings()
    for average in ["macro", "micro"]:
        with batches(batch):
            got, record = run(
                precision_within_radius, *problem.args(), radius=radius, average=average
            )
        assert_close(
            got, reference_radius_precision(rankings, radius, average), average
        )
        assert_warns_exactly(record, False)


@given(problem=retrievals(), data=st.data(), batch=BATCH)
def test_precision_recall_curves_match_the_reference(problem, data, batch):
    rankings = problem.rankings()
    max_bits = 8 * problem.n_bytes
    n_bits = data.draw(st.one_of(st.none(), st.integers(1, max_bits + 3)), "n_bits")
    if n_bits is not None and n_bits > max_bits:
        with pytest.raises(ValueError, match="does not fit"):
            precision_recall_curve(*problem.args(), n_bits=n_bits)
    else:
        last = max_bits if n_bits is None else n_bits
        with batches(batch):
            got, record = run(precision_recall_curve, *problem.args(), n_bits=n_bits)
        assert_curve(got, reference_curve_by_radius(rankings, last), range(last + 1))
        assert_warns_exactly(record, False)

    relevance = [[rel for _, _, rel in r] for r in rankings]
    hits = [np.cumsum(r).tolist() for r in relevance]
    want = reference_curve_by_n_returned(hits, [sum(r) for r in relevance])
    with batches(batch):
        got, record = run(precision_recall_curve, *problem.args(), by="n_returned")
    assert_curve(got, want, range(1, problem.n_database + 1))
    assert_warns_exactly(record, False)


@given(problem=retrievals(max_database=9, max_queries=6), data=st.data())
def test_average_ties_are_the_mean_over_every_ordering(problem, data):
    n_database = problem.n_database
    k = data.draw(st.one_of(st.none(), st.integers(1, n_database + 2)), label="k")
    empty = data.draw(st.sampled_from(["zero", "skip"]), label="empty")
    # Per query: (probability, relevance sequence) of every tie ordering.
    orderings = [list(tie_orderings(r)) for r in problem.rankings()]
    want, all_skipped = mean_ap(
        [[(w, average_precision(s, k)) for w, s in o] for o in orderings], empty
    )
    got, record = run(
        mean_average_precision, *problem.args(), k=k, ties="average", empty=empty
    )
    assert_close(got, want)
    assert_warns_exactly(record, all_skipped)

    k = k or data.draw(st.integers(1, n_database + 2), label="precision k")
    want = sum(w * reference_precision_at_k([s], k) for o in orderings for w, s in o)
    got, record = run(precision_at_k, *problem.args(), k=k, ties="average")
    assert_close(got, want / len(orderings))
    assert_warns_exactly(record, k > n_database)

    # Expected hits among the first n, over the orderings.
    hits = [
        [sum(w * sum(s[:n]) for w, s in o) for n in range(1, n_database + 1)]
        for o in orderings
    ]
    n_relevant = [sum(o[0][1]) for o in orderings]  # the same in every ordering
    got, record = run(
        precision_recall_curve, *problem.args(), by="n_returned", ties="average"
    )
    want = reference_curve_by_n_returned(hits, n_relevant)
    assert_curve(got, want, range(1, n_database + 1))
    assert_warns_exactly(record, False)


@given(problem=retrievals(), data=st.data())
def test_average_ties_do_not_depend_on_the_database_order(problem, data):
    # Larger than enumeration allows: the average over orderings cannot depend
    # on which order the database came in.
    k = data.draw(st.integers(1, problem.n_database), label="k")
    seed = data.draw(st.integers(0, 2**32 - 1), label="permutation seed")
    codes, database, query_labels, database_labels = problem.args()
    if database is None:
        # Leaving one out, queries are the database: permute them all.
        order = np.random.default_rng(seed).permutation(len(codes))
        permuted = codes[order], None, query_labels[order], None
    else:
        order = np.random.default_rng(seed).permutation(len(database))
        permuted = codes, database[order], query_labels, database_labels[order]
    for metric, options in [
        (mean_average_precision, dict(k=k, empty="skip")),
        (mean_average_precision, dict(k=None)),
        (precision_at_k, dict(k=k)),
    ]:
        # Warnings (every query skipped) are checked by the tests above.
        before, _ = run(metric, *problem.args(), ties="average", **options)
        after, _ = run(metric, *permuted, ties="average", **options)
        assert after == pytest.approx(before, rel=1e-12, abs=1e-15)
    before = precision_recall_curve(*problem.args(), by="n_returned", ties="average")
    after = precision_recall_curve(*permuted, by="n_returned", ties="average")
    for a, b in zip(after, before, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


METRICS = [
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    precision_recall_curve,
    lambda *args: precision_recall_curve(*args, by="n_returned"),
]


@given(problem=retrievals(max_database=5, max_queries=5))
def test_no_query_or_an_empty_database_is_an_error(problem):
    codes, database, query_labels, database_labels = problem.args()
    none = codes[:0], query_labels[:0]
    for metric in METRICS:
        if database is None:
            with pytest.raises(ValueError, match=r"query_codes is empty"):
                metric(none[0], None, none[1], None)
            with pytest.raises(ValueError, match="at least 2 queries"):
                metric(codes[:1], None, query_labels[:1], None)
        else:
            with pytest.raises(ValueError, match=r"query_codes is empty"):
                metric(none[0], database, none[1], database_labels)
            with pytest.raises(ValueError, match=r"database_codes is empty"):
                metric(codes, database[:0], query_labels, database_labels[:0])


@given(
    problem=retrievals(max_database=80, max_queries=15, leave_one_out=False),
    data=st.data(),
)
def test_scorers_of_a_fitted_search_match_the_reference(problem, data):
    # Scoring a fitted HammingNeighbors: the held-out codes query its database.
    codes, database, query_labels, database_labels = problem.args()
    nn = HammingNeighbors().fit(database, database_labels)
    rankings = problem.rankings()
    relevance = [[rel for _, _, rel in r] for r in rankings]
    k = data.draw(st.integers(1, problem.n_database), label="k")
    radius = data.draw(st.integers(0, 8 * problem.n_bytes + 1), label="radius")
    for name, want in [
        ("map", reference_map(relevance, None, "zero")[0]),
        (f"map@{k}", reference_map(relevance, k, "zero")[0]),
        (f"precision@{k}", reference_precision_at_k(relevance, k)),
        (
            f"radius_precision@{radius}",
            reference_radius_precision(rankings, radius, "macro"),
        ),
    ]:
        got = get_retrieval_scorer(name)(nn, codes, query_labels)
        assert_close(got, want, name)
    assert_close(
        nn.score(codes, query_labels), reference_map(relevance, None, "zero")[0]
    )
