"""Scorers: retrieval metrics as ``scorer(estimator, X, y)`` callables.

They plug into ``GridSearchCV(scoring=...)``, ``cross_validate`` and multi-metric
dicts. Three protocols, chosen from the metric and the estimator:

- a :class:`~skhash.HammingNeighbors` or a Pipeline ending in one: the held-out
  samples are the queries, the fitted training fold (with the labels it was
  fitted with) is the database;
- a hasher, or a Pipeline ending in one: each held-out sample queries the rest
  of the held-out fold (leave-one-out inside the fold);
- recall (``recall_at_k``), of a :class:`~skhash.neighbors.RescoringNeighbors`
  or a Pipeline ending in one: the held-out samples are the queries, their
  exact float neighbours among the fitted training vectors the truth. It needs
  no labels.

Parameters are checked when a scorer is made, so that a bad one fails at once
rather than as a NaN score on every fold of a search. A ``k`` larger than a
fold's database is only known when a fold is scored; the metrics define that
case (MAP@k ranks the whole database, precision@k counts the missing ranks as
not relevant and warns), so a search never gets NaN from it.
"""

import inspect
import re

from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import validate_parameter_constraints

from ._recall import (
    RECALL_CONSTRAINTS,
    check_vector_search,
    recall_at_k,
    search_recall,
)
from ._retrieval import (
    check_metric_params,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
)

__all__ = [
    "get_retrieval_scorer",
    "get_retrieval_scorer_names",
    "make_retrieval_scorer",
]

_METRICS = {
    "mean_average_precision": mean_average_precision,
    "precision_at_k": precision_at_k,
    "precision_within_radius": precision_within_radius,
    "recall_at_k": recall_at_k,
}

# Registry names: a prefix, then optionally "@<integer>" for the metric's
# integer parameter (k for the ranking metrics, the radius for the radius one).
_NAMED = {
    "map": ("mean_average_precision", "k", None),
    "precision": ("precision_at_k", "k", 100),
    "radius_precision": ("precision_within_radius", "radius", 2),
    "recall": ("recall_at_k", "k", 10),
}
# Whatever follows "@" is checked apart from the prefix, so that "map@01" is
# told what is wrong with its number rather than that "map" is unknown.
_NAME = re.compile(r"([a-z_]+)(?:@(.*))?", re.DOTALL)
# ASCII only: str.isdigit, int() and re's \d also take other scripts' digits
# ("map@\u0663" would be MAP@3). One spelling per number: no leading zeros.
_NUMBER = re.compile(r"0|[1-9][0-9]*")


class _RetrievalScorer:
    def __init__(self, metric, params):
        self._metric = metric
        self._params = params

    def __call__(self, estimator, X, y):
        if y is None:
            raise ValueError(
                "Retrieval scorers need labels y to tell what is relevant."
            )
        final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        if hasattr(final, "get_database"):  # a fitted search: HammingNeighbors
            database, labels = final.get_database()
            if labels is None:
                raise ValueError(
                    "The HammingNeighbors being scored was fitted without y; fit it "
                    "with the database labels to score retrieval."
                )
            queries = estimator[:-1].transform(X) if final is not estimator else X
            return self._metric(queries, database, y, labels, **self._params)
        # A hasher: every held-out item queries the rest of its fold.
        return self._metric(estimator.transform(X), None, y, None, **self._params)

    def __repr__(self):
        params = "".join(f", {key}={value!r}" for key, value in self._params.items())
        return f"make_retrieval_scorer({self._metric.__name__!r}{params})"


class _RecallScorer(_RetrievalScorer):
    def __call__(self, estimator, X, y=None):
        final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        check_vector_search(final)
        queries = estimator[:-1].transform(X) if final is not estimator else X
        k = self._params.get("k") or final.n_neighbors
        epsilon = self._params.get("epsilon", 1e-3)
        return search_recall(final, queries, k, epsilon=epsilon)


def make_retrieval_scorer(metric="mean_average_precision", **metric_params):
    """Make a scorer ``scorer(estimator, X, y)`` from a retrieval metric.

    Parameters
    ----------
    metric : {"mean_average_precision", "precision_at_k", \
            "precision_within_radius", "recall_at_k"} or callable, \
            default="mean_average_precision"
        The metric, by name or as one of the functions of :mod:`skhash.metrics`.
    **metric_params : dict
        Keyword arguments of the metric, e.g. ``k=1000, ties="average"``,
        checked now as the metric would check them. ``"recall_at_k"`` takes
        ``k`` (default: the search's ``n_neighbors``) and ``epsilon``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better. For a
        :class:`~skhash.HammingNeighbors` (or a Pipeline ending in one) ``X`` are
        the queries and the fitted database is searched; for a hasher (or a
        Pipeline ending in one) each sample of ``X`` queries the others. A
        recall scorer takes a :class:`~skhash.neighbors.RescoringNeighbors` (or
        a Pipeline ending in one) and ignores ``y``: it is the recall@k of the
        queries ``X`` against their exact neighbours among the fitted vectors
        (``k`` at most the database's size).

    Raises
    ------
    TypeError
        If the metric has no such parameter.
    ValueError
        If the metric is unknown or a parameter has a value it does not accept
        (``k=0``, ``k=True``, ``ties="random"``...).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import cross_val_score
    >>> from skhash import LSHHasher
    >>> from skhash.metrics import make_retrieval_scorer
    >>> X, y = load_digits(return_X_y=True)
    >>> scorer = make_retrieval_scorer("mean_average_precision", k=100)
    >>> scores = cross_val_score(LSHHasher(n_bits=32, random_state=0), X, y,
    ...                          scoring=scorer, cv=3)
    >>> bool(scores.min() > 0.1)
    True
    """
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(
                f"Unknown retrieval metric {metric!r}; choose one of "
                f"{sorted(_METRICS)}."
            )
        metric = _METRICS[metric]
    elif metric not in _METRICS.values():
        raise ValueError(
            "metric must be the name of a retrieval metric or one of the functions "
            f"of skhash.metrics ({sorted(_METRICS)}), got {metric!r}."
        )
    # Check now: inside a search, an error becomes a NaN score on every fold.
    if metric is recall_at_k:
        unknown = set(metric_params) - set(RECALL_CONSTRAINTS)
        if unknown:
            raise TypeError(
                f"A recall_at_k scorer takes k and epsilon, got {sorted(unknown)}."
            )
        validate_parameter_constraints(
            RECALL_CONSTRAINTS, metric_params, caller_name="recall_at_k"
        )
        return _RecallScorer(metric, metric_params)
    codes = labels = None
    inspect.signature(metric).bind(codes, codes, labels, labels, **metric_params)
    check_metric_params(metric.__name__, metric_params)
    return _RetrievalScorer(metric, metric_params)


def get_retrieval_scorer(name):
    """Scorer from a registry name.

    Parameters
    ----------
    name : str
        ``"map"`` (MAP over the whole database), ``"map@<k>"`` (MAP@k),
        ``"precision@<k>"`` (precision of the top k, default k=100),
        ``"radius_precision@<r>"`` (precision within Hamming radius r, macro
        average, default r=2) and ``"recall@<k>"`` (recall@k of a rescoring
        search against the exact float neighbours, default k=10); e.g.
        ``"map@1000"``, ``"radius_precision@2"``, ``"recall@10"``.
        The number is written in ASCII digits without leading zeros.
        The other parameters keep the metrics' defaults (stable ties, queries
        with nothing relevant count as 0).

    Returns
    -------
    scorer : callable
        As returned by :func:`make_retrieval_scorer`.

    Raises
    ------
    ValueError
        If the name is not in the registry, its number is not written in
        ASCII digits without leading zeros (``"map@01"``), or the metric does
        not accept it (``"map@0"``, ``"precision@0"``, ``"recall@0"``).

    Examples
    --------
    >>> from skhash.metrics import get_retrieval_scorer
    >>> get_retrieval_scorer("map@1000")
    make_retrieval_scorer('mean_average_precision', k=1000)
    """
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None or match.group(1) not in _NAMED:
        raise ValueError(
            f"Unknown retrieval scorer {name!r}; names look like "
            f"{get_retrieval_scorer_names()} with an optional '@<integer>'."
        )
    metric, parameter, default = _NAMED[match.group(1)]
    value = default if match.group(2) is None else _parse_number(name, match.group(2))
    params = {} if value is None else {parameter: value}
    try:
        return make_retrieval_scorer(metric, **params)
    except ValueError as error:
        raise ValueError(f"Invalid retrieval scorer {name!r}: {error}") from error


def _parse_number(name, text):
    """The integer after '@' in a registry name, written as ASCII decimal."""
    if _NUMBER.fullmatch(text) is None:
        raise ValueError(
            f"Invalid retrieval scorer {name!r}: the number after '@' must be "
            f"written in ASCII digits 0-9 with no sign or leading zeros, got {text!r}."
        )
    return int(text)


def get_retrieval_scorer_names():
    """Registry prefixes accepted by :func:`get_retrieval_scorer`."""
    return sorted(_NAMED)
