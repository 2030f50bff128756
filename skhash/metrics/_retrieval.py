"""Retrieval metrics over packed codes: MAP, precision@k, radius precision, PR.

Every metric ranks a database by Hamming distance to each query; an item is
relevant when it shares at least one label with the query. Queries are handled
in batches (see :mod:`skhash.neighbors._brute`), so 10,000 queries against a
million codes never build a 10^10 matrix.

Ties are everywhere in Hamming space (distances are small integers). Two rules:

- ``ties="stable"``: ties are ranked by database index, as a stable sort does
  (the DSH MATLAB evaluation). Deterministic.
- ``ties="average"``: the exact expected value over every ordering inside each
  group of equal distances (McSherry & Najork, ECIR 2008). It depends only on
  how many items and relevant items each distance holds, so it is computed from
  per-query histograms without sorting.
"""

import warnings
from numbers import Integral

import numpy as np
from scipy.stats import hypergeom
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils._param_validation import (
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)

from .._ranking import (
    distance_block,
    distance_histograms,
    query_batches,
    stable_top_k,
)
from .._supervision import encode_labels, relevance
from ..codes import as_words, check_codes
from ..utils._param_validation import Interval

__all__ = [
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
]

_DATA = {
    "query_codes": ["array-like"],
    "database_codes": ["array-like", None],
    "query_labels": ["array-like"],
    "database_labels": ["array-like", None],
}
_TIES = [StrOptions({"stable", "average"})]
_COUNT = Interval(Integral, 1, None, closed="left")
# Kept apart from the decorators so that the scorers can check their parameters
# when they are made, before a search runs them on every fold.
_PARAMETER_CONSTRAINTS = {
    "mean_average_precision": {
        "k": [_COUNT, None],
        "ties": _TIES,
        "empty": [StrOptions({"zero", "skip"})],
    },
    "precision_at_k": {"k": [_COUNT], "ties": _TIES},
    "precision_within_radius": {
        "radius": [Interval(Integral, 0, None, closed="left")],
        "average": [StrOptions({"macro", "micro"})],
    },
    "precision_recall_curve": {
        "by": [StrOptions({"radius", "n_returned"})],
        "ties": _TIES,
        "n_bits": [_COUNT, None],
    },
}


def _validate(metric_name):
    return validate_params(
        {**_DATA, **_PARAMETER_CONSTRAINTS[metric_name]},
        prefer_skip_nested_validation=True,
    )


def check_metric_params(metric_name, params):
    """Check keyword parameters of a metric as the metric itself would.

    Parameters
    ----------
    metric_name : str
        Name of one of the metrics of this module.
    params : dict
        Keyword parameters (``k``, ``ties``...); data arguments are not checked.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` naming the parameter and what it accepts.
    """
    validate_parameter_constraints(
        _PARAMETER_CONSTRAINTS[metric_name], params, caller_name=metric_name
    )


def _check_not_empty(codes, name):
    if len(codes) == 0:
        raise ValueError(
            f"{name} is empty: found array with 0 sample(s) (shape={codes.shape}) "
            "while a minimum of 1 is required."
        )


class _Retrieval:
    """Validated queries and database, iterated in batches of ranked distances."""

    def __init__(self, query_codes, database_codes, query_labels, database_labels):
        if (database_codes is None) != (database_labels is None):
            raise ValueError(
                "Pass both database_codes and database_labels, or neither (then "
                "each query is ranked against the other queries)."
            )
        self.leave_one_out = database_codes is None
        query_codes = check_codes(query_codes, name="query_codes")
        _check_not_empty(query_codes, "query_codes")
        if self.leave_one_out:
            database_codes, database_labels = query_codes, query_labels
        database_codes = check_codes(database_codes, name="database_codes")
        _check_not_empty(database_codes, "database_codes")
        if query_codes.shape[1] != database_codes.shape[1]:
            raise ValueError(
                f"Query and database codes differ in width: {query_codes.shape[1]} "
                f"and {database_codes.shape[1]} bytes."
            )
        self.query_labels, self.database_labels = encode_labels(
            query_labels, database_labels
        )
        for codes, labels, name in [
            (query_codes, self.query_labels, "query"),
            (database_codes, self.database_labels, "database"),
        ]:
            if len(codes) != len(labels):
                raise ValueError(
                    f"{len(codes)} {name} codes but {len(labels)} {name} labels."
                )
        self.n_queries = len(query_codes)
        self.n_database = len(database_codes) - self.leave_one_out
        if self.n_database < 1:
            raise ValueError(
                "Leave-one-out ranking (database_codes=None) needs at least 2 "
                "queries: each one is ranked against the others, got 1."
            )
        self.max_distance = 8 * query_codes.shape[1]
        self._query_words = as_words(query_codes)
        self._database_words = as_words(database_codes)

    def ranking_length(self, k):
        """Items ranked per query: k, or the whole database when it is shorter."""
        return self.n_database if k is None else min(k, self.n_database)

    def batches(self):
        """Yield (distances, relevant) blocks of shape (batch, n_database [+ 1])."""
        n_columns = self.n_database + self.leave_one_out
        for rows in query_batches(self.n_queries, n_columns):
            distances = distance_block(
                self._query_words,
                self._database_words,
                rows,
                exclude_self=self.leave_one_out,
            )
            relevant = relevance(self.query_labels[rows], self.database_labels)
            if self.leave_one_out:
                own = np.arange(rows.stop - rows.start)
                relevant[own, own + rows.start] = False
            yield distances, relevant

    def histograms(self, distances, relevant):
        """Per query: items and relevant items at each distance 0..max_distance
        (the excluded self lies past it, and is dropped)."""
        return distance_histograms(distances, relevant, self.max_distance + 1)


def _ranked_relevance(distances, relevant, k):
    """Relevance of the top k of each row, ranked by (distance, database index)."""
    top = stable_top_k(distances, k)
    return np.take_along_axis(relevant, top, axis=1)


def _harmonic(n):
    """H[i] = 1 + 1/2 + ... + 1/i for i = 0..n."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def _expected_average_precision(items, hits, k, harmonic):
    """Tie-averaged AP@k of each query (rows of the histograms).

    Returns the expected AP (0 for orderings with nothing relevant in the top k)
    and whether any ordering puts a relevant item in the top k.
    """
    before = np.cumsum(items, axis=1) - items  # N_<: items ranked before a group
    hits_before = np.cumsum(hits, axis=1) - hits  # R_<
    full = before + items <= k
    # Group g fully inside the top k: sum over its positions p = 1..n_g of
    # P(p relevant) * E[precision at p | p relevant], with the hypergeometric
    # mean of the relevant items in positions 1..p-1; see the module docstring.
    sum_inverse = harmonic[before + items] - harmonic[before]
    sum_ratio = items - (before + 1) * sum_inverse
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(items > 0, hits / items, 0.0)
        pair_rate = np.where(items > 1, (hits - 1) / (items - 1), 0.0)
    contribution = rate * ((hits_before + 1) * sum_inverse + pair_rate * sum_ratio)
    numerator = np.where(full, contribution, 0.0).sum(axis=1)
    relevant_full = np.where(full, hits, 0).sum(axis=1)

    ap = np.zeros(len(items))
    reachable = relevant_full > 0
    # The group that the cut at k splits, if any: before < k < before + items.
    split = (before < k) & (before + items > k)
    for query in range(len(items)):
        groups = np.flatnonzero(split[query])
        if len(groups) == 0:
            if relevant_full[query] > 0:
                ap[query] = numerator[query] / relevant_full[query]
            continue
        g = groups[0]
        n, r = int(items[query, g]), int(hits[query, g])
        n_before, r_before = int(before[query, g]), int(hits_before[query, g])
        c = k - n_before
        reachable[query] |= r > 0
        x = np.arange(max(0, c - (n - r)), min(c, r) + 1)
        a_c = harmonic[n_before + c] - harmonic[n_before]
        b_c = c - (n_before + 1) * a_c
        pair = x * (x - 1) / (c * (c - 1)) if c > 1 else np.zeros(len(x))
        split_part = (x / c) * (r_before + 1) * a_c + pair * b_c
        total_relevant = r_before + x
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(
                total_relevant > 0,
                (numerator[query] + split_part) / total_relevant,
                0.0,
            )
        ap[query] = np.dot(hypergeom.pmf(x, n, r, c), value)
    return ap, reachable


def _mean_over_queries(values, keep, empty):
    if empty == "skip":
        if not keep.any():
            warnings.warn(
                "No query has a relevant item in its top k; the mean over no query "
                "is reported as 0.0.",
                UndefinedMetricWarning,
                stacklevel=3,
            )
            return 0.0
        values = values[keep]
    return float(np.mean(values))


@_validate("mean_average_precision")
def mean_average_precision(
    query_codes,
    database_codes,
    query_labels,
    database_labels=None,
    *,
    k=None,
    ties="stable",
    empty="zero",
):
    """Mean average precision of Hamming ranking, MAP or MAP@k.

    For each query the database is ranked by Hamming distance and

    ``AP@k = (1 / R_k) * sum over relevant ranks j <= k of precision@j``

    where ``R_k`` is the number of relevant items in the top ``k`` (the
    DeepHash-pytorch / HashNet convention); with ``k=None`` the whole database
    is ranked and ``R_k`` is every relevant item. MAP is the mean over queries.
    A database of fewer than ``k`` items is ranked whole, so MAP@k is then MAP.

    Parameters
    ----------
    query_codes : array-like of shape (n_queries, n_bytes), dtype uint8
        Packed codes of the queries.
    database_codes : array-like of shape (n_database, n_bytes), dtype uint8 or None
        Packed codes of the database. ``None`` ranks each query against the
        other queries, itself excluded (leave-one-out).
    query_labels : array-like of shape (n_queries,) or (n_queries, n_labels)
        Class labels or a multi-label indicator matrix. Relevant means sharing
        at least one label.
    database_labels : array-like of shape (n_database,) or (n_database, n_labels)
        Labels of the database; ``None`` together with ``database_codes=None``.
    k : int, default=None
        Length of the ranking that is scored. ``None`` scores all items (unlike
        DeepHash-pytorch's ``topK=-1``, which drops the last one), as does a
        ``k`` larger than the database.
    ties : {"stable", "average"}, default="stable"
        ``"stable"`` ranks equal distances by database index; ``"average"``
        gives the exact expected AP over all orderings of equal distances.
    empty : {"zero", "skip"}, default="zero"
        Queries with no relevant item in their top k: ``"zero"`` counts them as
        0 (DeepHash-pytorch); ``"skip"`` leaves them out of the mean
        (thuml/HashNet, thulab/DeepHash), which gives higher numbers. With
        ``ties="average"`` a query is skipped only when no ordering puts a
        relevant item in its top k. If every query is skipped the result is 0.0
        with an ``UndefinedMetricWarning``.

    Returns
    -------
    score : float
        Between 0 and 1, higher is better.

    Examples
    --------
    One query, six database items at distances 0, 1, 1, 2, 3, 4; relevant ones
    are ranked 2nd, 3rd and 5th:

    >>> import numpy as np
    >>> from skhash.codes import pack_codes
    >>> from skhash.metrics import mean_average_precision
    >>> query = pack_codes([[1, 1, 1, 1]])
    >>> database = pack_codes([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1],
    ...                        [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    >>> query_labels = np.array([[1, 0, 1]])
    >>> database_labels = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1],
    ...                             [0, 1, 0], [1, 1, 0], [0, 1, 0]])
    >>> round(mean_average_precision(query, database, query_labels,
    ...                              database_labels), 6)
    0.588889
    >>> round(mean_average_precision(query, database, query_labels,
    ...                              database_labels, k=3), 6)
    0.583333
    """
    retrieval = _Retrieval(query_codes, database_codes, query_labels, database_labels)
    k = retrieval.ranking_length(k)
    values, keep = [], []
    harmonic = _harmonic(retrieval.n_database) if ties == "average" else None
    for distances, relevant in retrieval.batches():
        if ties == "stable":
            ranked = _ranked_relevance(distances, relevant, k)
            hits = np.cumsum(ranked, axis=1)
            n_relevant = hits[:, -1]
            precision_sum = (hits / np.arange(1, k + 1) * ranked).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                values.append(np.where(n_relevant > 0, precision_sum / n_relevant, 0.0))
            keep.append(n_relevant > 0)
        else:
            items, hits = retrieval.histograms(distances, relevant)
            ap, reachable = _expected_average_precision(items, hits, k, harmonic)
            values.append(ap)
            keep.append(reachable)
    return _mean_over_queries(np.concatenate(values), np.concatenate(keep), empty)


@_validate("precision_at_k")
def precision_at_k(
    query_codes,
    database_codes,
    query_labels,
    database_labels=None,
    *,
    k=100,
    ties="stable",
):
    """Mean precision of the top k items of the Hamming ranking.

    Parameters
    ----------
    query_codes, database_codes, query_labels, database_labels
        As in :func:`mean_average_precision` (``database_codes=None`` ranks each
        query against the other queries).
    k : int, default=100
        Number of items returned per query. When the database holds fewer
        than ``k`` items, all of them are returned and the missing ranks count
        as not relevant (the TREC convention); every code then scores the same,
        so an ``UndefinedMetricWarning`` says so.
    ties : {"stable", "average"}, default="stable"
        ``"stable"`` ranks equal distances by database index; ``"average"``
        gives the expected precision over all orderings of equal distances.

    Returns
    -------
    precision : float
        Mean over queries of (relevant items in the top k) / k.

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> from skhash.metrics import precision_at_k
    >>> query = pack_codes([[1, 1, 1, 1]])
    >>> database = pack_codes([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1],
    ...                        [0, 0, 0, 0]])
    >>> precision_at_k(query, database, [0], [1, 0, 1, 0], k=2)
    0.5
    >>> precision_at_k(query, database, [0], [1, 0, 1, 0], k=2, ties="average")
    0.25
    """
    retrieval = _Retrieval(query_codes, database_codes, query_labels, database_labels)
    n_returned = retrieval.ranking_length(k)
    if n_returned < k:
        warnings.warn(
            f"k={k} is larger than the {retrieval.n_database} database items each "
            "query is ranked against: all of them are returned, so precision@k "
            "does not depend on the codes.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    values = []
    for distances, relevant in retrieval.batches():
        if ties == "stable":
            hits = _ranked_relevance(distances, relevant, n_returned).sum(axis=1)
        else:
            items, histogram_hits = retrieval.histograms(distances, relevant)
            hits = _expected_hits(items, histogram_hits, np.array([n_returned]))[:, 0]
        values.append(hits / k)
    return float(np.mean(np.concatenate(values)))


def _expected_hits(items, hits, n_returned):
    """Expected relevant items among the first n (each n in n_returned) per query.

    Items of a tie group are equally likely at every position of the group, so
    the expectation grows linearly inside a group.
    """
    before = np.cumsum(items, axis=1) - items
    hits_before = np.cumsum(hits, axis=1) - hits
    # Group containing position n: last group starting before n.
    out = np.empty((len(items), len(n_returned)))
    for query in range(len(items)):
        g = np.searchsorted(before[query], n_returned, side="left") - 1
        taken = n_returned - before[query, g]
        rate = hits[query, g] / np.maximum(items[query, g], 1)
        out[query] = hits_before[query, g] + np.minimum(taken, items[query, g]) * rate
    return out


@_validate("precision_within_radius")
def precision_within_radius(
    query_codes,
    database_codes,
    query_labels,
    database_labels=None,
    *,
    radius=2,
    average="macro",
):
    """Precision of the items within a Hamming radius of each query.

    Parameters
    ----------
    query_codes, database_codes, query_labels, database_labels
        As in :func:`mean_average_precision`.
    radius : int, default=2
        Items at Hamming distance ``<= radius`` are returned.
    average : {"macro", "micro"}, default="macro"
        ``"macro"``: precision per query, 0 when nothing is within the radius,
        then the mean over queries (the deep-hashing convention of
        thulab/DeepHash). ``"micro"``: relevant pairs within the radius over all
        pairs within it, pooled over queries (the ITQ and Spectral Hashing
        MATLAB evaluation); 0 when no pair is within the radius.

    Returns
    -------
    precision : float

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> from skhash.metrics import precision_within_radius
    >>> queries = pack_codes([[1, 1, 1, 1], [0, 0, 0, 0]])
    >>> database = pack_codes([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]])
    >>> precision_within_radius(queries, database, [0, 1], [0, 1, 1], radius=1)
    0.5
    >>> precision_within_radius(queries, database, [0, 1], [0, 1, 1], radius=2,
    ...                         average="micro")
    0.6
    """
    retrieval = _Retrieval(query_codes, database_codes, query_labels, database_labels)
    # Past the code length every item is within; leave-one-out marks each
    # query's own column just beyond it, which a larger radius would count.
    radius = min(radius, retrieval.max_distance)
    in_ball, relevant_in_ball = [], []
    for distances, relevant in retrieval.batches():
        within = distances <= radius
        in_ball.append(within.sum(axis=1))
        relevant_in_ball.append((within & relevant).sum(axis=1))
    in_ball = np.concatenate(in_ball)
    relevant_in_ball = np.concatenate(relevant_in_ball)
    if average == "micro":
        total = in_ball.sum()
        return float(relevant_in_ball.sum() / total) if total else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        per_query = np.where(in_ball > 0, relevant_in_ball / in_ball, 0.0)
    return float(per_query.mean())


@_validate("precision_recall_curve")
def precision_recall_curve(
    query_codes,
    database_codes,
    query_labels,
    database_labels=None,
    *,
    by="radius",
    ties="stable",
    n_bits=None,
):
    """Precision and recall of Hamming retrieval at every cut-off.

    Parameters
    ----------
    query_codes, database_codes, query_labels, database_labels
        As in :func:`mean_average_precision`.
    by : {"radius", "n_returned"}, default="radius"
        ``"radius"``: return everything within Hamming radius r, for
        r = 0 .. n_bits, with precision and recall pooled over all
        query-item pairs (the ITQ / Spectral Hashing MATLAB evaluation;
        precision is 0 where no pair is within r). ``"n_returned"``: return the
        top n of each ranking, n = 1 .. n_database, precision and recall
        averaged over queries (DeepHash-pytorch); recall is averaged over the
        queries that have at least one relevant item.
    ties : {"stable", "average"}, default="stable"
        Tie rule of the ``"n_returned"`` ranking (see
        :func:`mean_average_precision`); radius curves have no ties.
    n_bits : int, default=None
        Code length, the largest radius of a radius curve. ``None`` means
        ``8 * n_bytes``, where radii past the true code length repeat the last
        point.

    Returns
    -------
    precision : ndarray of shape (n_thresholds,)
    recall : ndarray of shape (n_thresholds,)
    thresholds : ndarray of shape (n_thresholds,)
        The radii or the numbers of returned items.

    Examples
    --------
    >>> from skhash.codes import pack_codes
    >>> from skhash.metrics import precision_recall_curve
    >>> query = pack_codes([[1, 1]])
    >>> database = pack_codes([[1, 1], [1, 0], [0, 0]])
    >>> precision, recall, radii = precision_recall_curve(
    ...     query, database, [0], [0, 1, 0], n_bits=2)
    >>> precision.round(3), recall, radii
    (array([1.   , 0.5  , 0.667]), array([0.5, 0.5, 1. ]), array([0, 1, 2]))
    """
    retrieval = _Retrieval(query_codes, database_codes, query_labels, database_labels)
    if by == "radius":
        if n_bits is not None and n_bits > retrieval.max_distance:
            raise ValueError(
                f"n_bits={n_bits} does not fit in codes of "
                f"{retrieval.max_distance // 8} bytes."
            )
        items_total = hits_total = 0
        for distances, relevant in retrieval.batches():
            items, hits = retrieval.histograms(distances, relevant)
            items_total = items_total + items.sum(axis=0)
            hits_total = hits_total + hits.sum(axis=0)
        last = retrieval.max_distance if n_bits is None else n_bits
        items_within = np.cumsum(items_total)[: last + 1]
        hits_within = np.cumsum(hits_total)[: last + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(items_within > 0, hits_within / items_within, 0.0)
        relevant_total = hits_total.sum()
        recall = hits_within / relevant_total if relevant_total else hits_within * 0.0
        return precision, recall, np.arange(len(precision))

    n_returned = np.arange(1, retrieval.n_database + 1)
    precision_sum = np.zeros(len(n_returned))
    recall_sum = np.zeros(len(n_returned))
    n_with_relevant = 0
    for distances, relevant in retrieval.batches():
        if ties == "stable":
            hits = np.cumsum(_ranked_relevance(distances, relevant, len(n_returned)), 1)
        else:
            items, histogram_hits = retrieval.histograms(distances, relevant)
            hits = _expected_hits(items, histogram_hits, n_returned)
        total = hits[:, -1]
        precision_sum += (hits / n_returned).sum(axis=0)
        recall_sum += (hits[total > 0] / total[total > 0, None]).sum(axis=0)
        n_with_relevant += int((total > 0).sum())
    precision = precision_sum / retrieval.n_queries
    recall = recall_sum / max(n_with_relevant, 1)
    return precision, recall, n_returned
