"""Retrieval metrics over packed codes, recall against exact float neighbours,
scorers built on them, and plots."""

from ._plot import CodeLengthMAPDisplay, HammingPrecisionRecallDisplay
from ._recall import exact_neighbors, recall_at_k
from ._retrieval import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
)
from ._scorer import (
    get_retrieval_scorer,
    get_retrieval_scorer_names,
    make_retrieval_scorer,
)

__all__ = [
    "CodeLengthMAPDisplay",
    "HammingPrecisionRecallDisplay",
    "exact_neighbors",
    "get_retrieval_scorer",
    "get_retrieval_scorer_names",
    "make_retrieval_scorer",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "recall_at_k",
]
