"""Visualisations of retrieval quality, in the style of scikit-learn's Displays.

A Display is built with ``from_estimator`` (or ``from_codes`` /
``from_results``), which computes the values and calls :meth:`plot`; ``plot``
draws on an existing ``ax`` or on a new figure. matplotlib is imported only
inside these methods, so ``import skhash.metrics`` does not need it.
"""

from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ._retrieval import mean_average_precision, precision_recall_curve

__all__ = ["CodeLengthMAPDisplay", "HammingPrecisionRecallDisplay"]


def _pyplot(caller):
    """matplotlib.pyplot, or an ImportError that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{caller} needs matplotlib, which is not installed. Install it with "
            "`pip install matplotlib` or `pip install 'skhash[plot]'`."
        ) from error
    return plt


def _axes(ax, caller):
    plt = _pyplot(caller)
    if ax is None:
        _, ax = plt.subplots()
    return ax, ax.figure


def _encode(estimator, X_query, X_database, y_database):
    """Query codes, database codes and labels from a fitted estimator.

    ``estimator`` is a hasher, a Pipeline ending in one, or a Pipeline ending
    in a fitted :class:`~skhash.HammingNeighbors` (whose database is used).
    """
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if hasattr(final, "get_database"):  # a fitted search: HammingNeighbors
        if final is estimator:
            raise TypeError(
                "A bare HammingNeighbors cannot encode X_query; pass the hasher, or "
                "a Pipeline of the hasher and HammingNeighbors."
            )
        if X_database is not None or y_database is not None:
            raise ValueError(
                "The estimator ends in a fitted HammingNeighbors, whose database is "
                "searched: leave X_database and y_database as None."
            )
        database, labels = final.get_database()
        if labels is None:
            raise ValueError(
                "The HammingNeighbors was fitted without labels; fit it with the "
                "database labels."
            )
        return estimator[:-1].transform(X_query), database, labels
    if (X_database is None) != (y_database is None):
        raise ValueError("Pass both X_database and y_database, or neither.")
    database = None if X_database is None else estimator.transform(X_database)
    return estimator.transform(X_query), database, y_database


def _default_name(estimator):
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if isinstance(estimator, Pipeline) and not hasattr(final, "n_bits"):
        final = estimator[-2] if len(estimator) > 1 else final
    return type(final).__name__


class HammingPrecisionRecallDisplay:
    """Precision-recall curve of Hamming retrieval.

    Built from codes with :meth:`from_codes` or from a fitted hasher with
    :meth:`from_estimator`; the values come from
    :func:`~skhash.metrics.precision_recall_curve`, traced either by Hamming
    radius (pooled over query-item pairs) or by the number of items returned
    (averaged over queries).

    Parameters
    ----------
    precision : ndarray of shape (n_thresholds,)
        Precision at each cut-off.
    recall : ndarray of shape (n_thresholds,)
        Recall at each cut-off.
    thresholds : ndarray of shape (n_thresholds,)
        The Hamming radii or the numbers of items returned.
    by : {"radius", "n_returned"}, default="radius"
        What the thresholds are.
    mean_average_precision : float, default=None
        MAP of the same retrieval, shown in the legend when given.
    name : str, default=None
        Name of the curve in the legend.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The curve.
    ax_ : matplotlib Axes
        Axes of the curve.
    figure_ : matplotlib Figure
        Figure of the axes.

    See Also
    --------
    skhash.metrics.precision_recall_curve : The values that are plotted.
    CodeLengthMAPDisplay : MAP against the number of bits.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import ITQHasher
    >>> from skhash.metrics import HammingPrecisionRecallDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> hasher = ITQHasher(n_bits=16, random_state=0).fit(X[:1500])
    >>> display = HammingPrecisionRecallDisplay.from_estimator(
    ...     hasher, X[1500:], y[1500:], X[:1500], y[:1500])
    >>> len(display.thresholds)  # radii 0, 1, ..., n_bits
    17
    >>> display.ax_.get_xlabel(), display.ax_.get_ylabel()
    ('Recall', 'Precision')
    """

    def __init__(
        self,
        precision,
        recall,
        thresholds,
        *,
        by="radius",
        mean_average_precision=None,
        name=None,
    ):
        self.precision = precision
        self.recall = recall
        self.thresholds = thresholds
        self.by = by
        self.mean_average_precision = mean_average_precision
        self.name = name

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        name : str, default=None
            Legend name; defaults to the display's ``name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : HammingPrecisionRecallDisplay
            Self, with ``line_``, ``ax_`` and ``figure_`` set.
        """
        ax, figure = _axes(ax, f"{type(self).__name__}.plot")
        name = self.name if name is None else name
        label = name
        if self.mean_average_precision is not None:
            summary = f"MAP = {self.mean_average_precision:.3f}"
            label = summary if name is None else f"{name} ({summary})"
        line_kwargs = {"label": label}
        if self.by == "radius":
            line_kwargs["marker"] = "."
        line_kwargs.update(kwargs)
        (self.line_,) = ax.plot(self.recall, self.precision, **line_kwargs)
        cut = "Hamming radius" if self.by == "radius" else "items returned"
        ax.set(
            xlabel="Recall",
            ylabel="Precision",
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            title=ax.get_title() or f"Precision-recall by {cut}",
        )
        if self.line_.get_label() and not self.line_.get_label().startswith("_"):
            ax.legend(loc="lower left")
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_codes(
        cls,
        query_codes,
        query_labels,
        database_codes=None,
        database_labels=None,
        *,
        by="radius",
        ties="stable",
        n_bits=None,
        name=None,
        ax=None,
        **kwargs,
    ):
        """Plot the precision-recall curve of packed codes.

        Parameters
        ----------
        query_codes : array-like of shape (n_queries, n_bytes), dtype uint8
            Packed codes of the queries.
        query_labels : array-like of shape (n_queries,) or (n_queries, n_labels)
            Class labels or a multi-label indicator matrix.
        database_codes : array-like of shape (n_database, n_bytes), default=None
            Packed codes of the database; ``None`` ranks each query against
            the other queries.
        database_labels : array-like of shape (n_database,) or \
(n_database, n_labels), default=None
            Labels of the database.
        by : {"radius", "n_returned"}, default="radius"
            Trace the curve by Hamming radius 0..n_bits (precision and recall
            pooled over pairs) or by the number of items returned (averaged
            over queries); see :func:`~skhash.metrics.precision_recall_curve`.
        ties : {"stable", "average"}, default="stable"
            Tie rule of the ranking, for ``by="n_returned"`` and for the MAP
            in the legend.
        n_bits : int, default=None
            Code length, the largest radius; ``None`` means ``8 * n_bytes``.
        name : str, default=None
            Legend name.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : HammingPrecisionRecallDisplay
        """
        _pyplot(f"{cls.__name__}.from_codes")
        precision, recall, thresholds = precision_recall_curve(
            query_codes,
            database_codes,
            query_labels,
            database_labels,
            by=by,
            ties=ties,
            n_bits=n_bits,
        )
        score = mean_average_precision(
            query_codes, database_codes, query_labels, database_labels, ties=ties
        )
        display = cls(
            precision,
            recall,
            thresholds,
            by=by,
            mean_average_precision=score,
            name=name,
        )
        return display.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X_query,
        y_query,
        X_database=None,
        y_database=None,
        *,
        by="radius",
        ties="stable",
        name=None,
        ax=None,
        **kwargs,
    ):
        """Plot the precision-recall curve of a fitted hasher.

        Parameters
        ----------
        estimator : estimator
            A fitted hasher, a fitted Pipeline ending in one, or a fitted
            Pipeline ending in :class:`~skhash.HammingNeighbors` (then its
            database is searched and ``X_database`` must be ``None``).
        X_query : array-like of shape (n_queries, n_features)
            Queries, encoded with ``estimator.transform``.
        y_query : array-like of shape (n_queries,) or (n_queries, n_labels)
            Labels of the queries.
        X_database : array-like of shape (n_database, n_features), default=None
            Database; ``None`` ranks each query against the other queries.
        y_database : array-like of shape (n_database,) or \
(n_database, n_labels), default=None
            Labels of the database.
        by : {"radius", "n_returned"}, default="radius"
            Trace the curve by Hamming radius or by the number of items
            returned.
        ties : {"stable", "average"}, default="stable"
            Tie rule of the ranking.
        name : str, default=None
            Legend name; defaults to the hasher's class name.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : HammingPrecisionRecallDisplay
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        query_codes, database_codes, database_labels = _encode(
            estimator, X_query, X_database, y_database
        )
        final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        n_bits = getattr(final, "n_bits", None)
        if not isinstance(n_bits, Integral):
            n_bits = None
        return cls.from_codes(
            query_codes,
            y_query,
            database_codes,
            database_labels,
            by=by,
            ties=ties,
            n_bits=n_bits,
            name=_default_name(estimator) if name is None else name,
            ax=ax,
            **kwargs,
        )


class CodeLengthMAPDisplay:
    """Mean average precision against code length.

    Built from numbers you already have with :meth:`from_results`, or with
    :meth:`from_estimator`, which fits a clone of a hasher at each code length
    and scores it with :func:`~skhash.metrics.mean_average_precision`.

    Parameters
    ----------
    n_bits : array-like of shape (n_lengths,)
        Code lengths.
    scores : array-like of shape (n_lengths,)
        MAP (or another score) at each length.
    name : str, default=None
        Name of the curve in the legend.
    score_name : str, default="MAP"
        Label of the y axis.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The curve.
    ax_ : matplotlib Axes
        Axes of the curve.
    figure_ : matplotlib Figure
        Figure of the axes.
    estimators_ : list of estimators
        The fitted clones, one per code length (``from_estimator`` only).

    See Also
    --------
    skhash.metrics.mean_average_precision : The score that is plotted.
    HammingPrecisionRecallDisplay : Precision against recall.

    Examples
    --------
    >>> from skhash.metrics import CodeLengthMAPDisplay
    >>> display = CodeLengthMAPDisplay.from_results(
    ...     [16, 32, 64], [0.468, 0.478, 0.489], name="ITQ")
    >>> display.ax_.get_xlabel()
    'Number of bits'
    """

    def __init__(self, n_bits, scores, *, name=None, score_name="MAP"):
        self.n_bits = n_bits
        self.scores = scores
        self.name = name
        self.score_name = score_name

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        name : str, default=None
            Legend name; defaults to the display's ``name``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : CodeLengthMAPDisplay
            Self, with ``line_``, ``ax_`` and ``figure_`` set.
        """
        ax, figure = _axes(ax, f"{type(self).__name__}.plot")
        name = self.name if name is None else name
        line_kwargs = {"label": name, "marker": "o"}
        line_kwargs.update(kwargs)
        (self.line_,) = ax.plot(self.n_bits, self.scores, **line_kwargs)
        # Code lengths are usually powers of two: a log2 axis spaces them evenly.
        if np.all(np.asarray(self.n_bits) > 0):
            ax.set_xscale("log", base=2)
        # Tick every length drawn on these axes, earlier curves' included.
        ticks = sorted({int(b) for line in ax.get_lines() for b in line.get_xdata()})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set(xlabel="Number of bits", ylabel=self.score_name)
        if self.line_.get_label() and not self.line_.get_label().startswith("_"):
            ax.legend()
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_results(
        cls, n_bits, scores, *, name=None, score_name="MAP", ax=None, **kwargs
    ):
        """Plot scores already computed at several code lengths.

        Parameters
        ----------
        n_bits : array-like of shape (n_lengths,)
            Code lengths, positive integers.
        scores : array-like of shape (n_lengths,)
            Score at each length.
        name : str, default=None
            Legend name.
        score_name : str, default="MAP"
            Label of the y axis.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : CodeLengthMAPDisplay
        """
        _pyplot(f"{cls.__name__}.from_results")
        n_bits = np.asarray(n_bits)
        scores = np.asarray(scores, dtype=np.float64)
        if n_bits.ndim != 1 or scores.ndim != 1 or len(n_bits) != len(scores):
            raise ValueError(
                "n_bits and scores must be 1-D and of the same length, got shapes "
                f"{n_bits.shape} and {scores.shape}."
            )
        if len(n_bits) == 0:
            raise ValueError("n_bits is empty: nothing to plot.")
        if not np.issubdtype(n_bits.dtype, np.integer) or n_bits.min() < 1:
            raise ValueError(f"n_bits must be positive integers, got {n_bits}.")
        display = cls(n_bits, scores, name=name, score_name=score_name)
        return display.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X_query,
        y_query,
        X_database=None,
        y_database=None,
        *,
        n_bits_list,
        X_train=None,
        y_train=None,
        param_name=None,
        k=None,
        ties="stable",
        empty="zero",
        name=None,
        ax=None,
        **kwargs,
    ):
        """Fit a clone of a hasher at each code length and plot its MAP.

        Parameters
        ----------
        estimator : estimator
            A hasher or a Pipeline ending in one; it need not be fitted.
        X_query : array-like of shape (n_queries, n_features)
            Queries.
        y_query : array-like of shape (n_queries,) or (n_queries, n_labels)
            Labels of the queries.
        X_database : array-like of shape (n_database, n_features), default=None
            Database; ``None`` ranks each query against the other queries.
        y_database : array-like of shape (n_database,) or \
(n_database, n_labels), default=None
            Labels of the database.
        n_bits_list : list of int
            Code lengths to fit and score.
        X_train : array-like of shape (n_train, n_features), default=None
            Data the clones are fitted on; ``None`` fits them on the database
            (or on the queries when there is no database). Fitting on the
            queries scores codes learned on the queries themselves: give a
            separate training set for honest numbers.
        y_train : array-like of shape (n_train,) or (n_train, n_labels), \
default=None
            Labels of ``X_train``; the database's or the queries' labels go
            with them when ``X_train`` is ``None``.
        param_name : str, default=None
            Parameter that sets the code length: ``"n_bits"`` for a hasher,
            ``"<last step>__n_bits"`` for a Pipeline.
        k : int, default=None
            Score MAP@k; ``None`` ranks the whole database.
        ties : {"stable", "average"}, default="stable"
            Tie rule, see :func:`~skhash.metrics.mean_average_precision`.
        empty : {"zero", "skip"}, default="zero"
            Queries with no relevant item in their top k, see
            :func:`~skhash.metrics.mean_average_precision`.
        name : str, default=None
            Legend name; defaults to the hasher's class name.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made when ``None``.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : CodeLengthMAPDisplay
            With ``estimators_``, the fitted clones.
        """
        _pyplot(f"{cls.__name__}.from_estimator")
        n_bits_list = list(n_bits_list)
        if not n_bits_list or not all(
            isinstance(b, Integral) and b >= 1 for b in n_bits_list
        ):
            raise ValueError(
                f"n_bits_list must be a non-empty list of positive integers, got "
                f"{n_bits_list!r}."
            )
        if (X_database is None) != (y_database is None):
            raise ValueError("Pass both X_database and y_database, or neither.")
        if X_train is None and y_train is not None:
            raise ValueError("y_train is given without X_train.")
        if param_name is None:
            param_name = "n_bits"
            if isinstance(estimator, Pipeline):
                param_name = f"{estimator.steps[-1][0]}__n_bits"
        if X_train is None:
            if X_database is not None:
                X_train, y_train = X_database, y_database
            else:
                X_train, y_train = X_query, y_query
        fitted, scores = [], []
        for n_bits in n_bits_list:
            model = clone(estimator).set_params(**{param_name: n_bits})
            model.fit(X_train, y_train)
            query_codes = model.transform(X_query)
            database_codes = None if X_database is None else model.transform(X_database)
            scores.append(
                mean_average_precision(
                    query_codes,
                    database_codes,
                    y_query,
                    y_database,
                    k=k,
                    ties=ties,
                    empty=empty,
                )
            )
            fitted.append(model)
        display = cls.from_results(
            n_bits_list,
            scores,
            name=_default_name(estimator) if name is None else name,
            score_name="MAP" if k is None else f"MAP@{k}",
            ax=ax,
            **kwargs,
        )
        display.estimators_ = fitted
        return display
