"""Retrieval metrics over packed codes, scorers built on them, and plots."""

from ._plot import CodeLengthMAPDisplay, HammingPrecisionRecallDisplay
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
    "get_retrieval_scorer",
    "get_retrieval_scorer_names",
    "make_retrieval_scorer",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
]
