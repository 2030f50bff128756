"""Tests of the retrieval Displays: plotted data, labels, axes reuse, errors."""

import sys

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skhash import HammingNeighbors, ITQHasher, LSHHasher
from skhash.datasets import make_hashing_blobs
from skhash.metrics import (
    CodeLengthMAPDisplay,
    HammingPrecisionRecallDisplay,
    mean_average_precision,
    precision_recall_curve,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    X, y = make_hashing_blobs(400, n_features=16, n_classes=4, random_state=0)
    return X[:50], y[:50], X[50:], y[50:]


@pytest.fixture(scope="module")
def fitted(data):
    _, _, X_db, _ = data
    return LSHHasher(n_bits=12, random_state=0).fit(X_db)


@pytest.mark.parametrize("by", ["radius", "n_returned"])
def test_pr_from_estimator_plots_metric_output(data, fitted, by):
    X_q, y_q, X_db, y_db = data
    display = HammingPrecisionRecallDisplay.from_estimator(
        fitted, X_q, y_q, X_db, y_db, by=by
    )
    codes_q, codes_db = fitted.transform(X_q), fitted.transform(X_db)
    precision, recall, thresholds = precision_recall_curve(
        codes_q, codes_db, y_q, y_db, by=by, n_bits=12
    )
    np.testing.assert_array_equal(display.precision, precision)
    np.testing.assert_array_equal(display.recall, recall)
    np.testing.assert_array_equal(display.thresholds, thresholds)
    np.testing.assert_array_equal(display.line_.get_xdata(), recall)
    np.testing.assert_array_equal(display.line_.get_ydata(), precision)
    if by == "radius":
        np.testing.assert_array_equal(thresholds, np.arange(13))  # n_bits, not 16
    map_value = mean_average_precision(codes_q, codes_db, y_q, y_db)
    assert display.mean_average_precision == pytest.approx(map_value)
    assert display.ax_.get_xlabel() == "Recall"
    assert display.ax_.get_ylabel() == "Precision"
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend == [f"LSHHasher (MAP = {map_value:.3f})"]
    assert display.figure_ is display.ax_.figure


def test_pr_from_codes_leave_one_out_and_name(data, fitted):
    X_q, y_q, _, _ = data
    codes = fitted.transform(X_q)
    display = HammingPrecisionRecallDisplay.from_codes(
        codes, y_q, name="queries", by="n_returned", ties="average", color="red"
    )
    precision, recall, _ = precision_recall_curve(
        codes, None, y_q, by="n_returned", ties="average"
    )
    np.testing.assert_allclose(display.precision, precision)
    np.testing.assert_allclose(display.recall, recall)
    assert len(display.thresholds) == len(X_q) - 1
    assert display.line_.get_color() == "red"
    assert display.line_.get_label().startswith("queries (MAP = ")


def test_pr_reuses_axes(data, fitted):
    X_q, y_q, X_db, y_db = data
    _, ax = plt.subplots()
    first = HammingPrecisionRecallDisplay.from_estimator(
        fitted, X_q, y_q, X_db, y_db, ax=ax, name="a"
    )
    second = HammingPrecisionRecallDisplay.from_estimator(
        fitted, X_q, y_q, X_db, y_db, ax=ax, name="b", by="n_returned"
    )
    assert first.ax_ is ax and second.ax_ is ax
    assert len(ax.get_lines()) == 2
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert [label.split(" ")[0] for label in legend] == ["a", "b"]


def test_pr_plot_without_map_and_replot(data):
    display = HammingPrecisionRecallDisplay(
        np.array([1.0, 0.5]), np.array([0.2, 1.0]), np.array([0, 1])
    )
    display.plot()
    assert display.ax_.get_legend() is None
    display.plot(name="again")
    assert display.line_.get_label() == "again"


def test_pr_pipeline_ending_in_neighbors_uses_fitted_database(data):
    X_q, y_q, X_db, y_db = data
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("hash", ITQHasher(n_bits=8, random_state=0)),
            ("nn", HammingNeighbors()),
        ]
    ).fit(X_db, y_db)
    display = HammingPrecisionRecallDisplay.from_estimator(pipe, X_q, y_q)
    codes_q, codes_db = pipe[:-1].transform(X_q), pipe[:-1].transform(X_db)
    precision, _, _ = precision_recall_curve(codes_q, codes_db, y_q, y_db, n_bits=8)
    np.testing.assert_array_equal(display.precision, precision)
    assert display.line_.get_label().startswith("ITQHasher")
    with pytest.raises(ValueError, match="leave X_database"):
        HammingPrecisionRecallDisplay.from_estimator(pipe, X_q, y_q, X_db, y_db)
    with pytest.raises(TypeError, match="cannot encode"):
        HammingPrecisionRecallDisplay.from_estimator(pipe[-1], X_q, y_q)


def test_pr_bad_input(data, fitted):
    X_q, y_q, X_db, y_db = data
    with pytest.raises(ValueError, match="both X_database and y_database"):
        HammingPrecisionRecallDisplay.from_estimator(fitted, X_q, y_q, X_db)
    with pytest.raises(ValueError, match="by"):
        HammingPrecisionRecallDisplay.from_estimator(
            fitted, X_q, y_q, X_db, y_db, by="distance"
        )
    codes = fitted.transform(X_q)
    with pytest.raises(ValueError, match="labels"):
        HammingPrecisionRecallDisplay.from_codes(codes, y_q[:-1])
    with pytest.raises(ValueError, match="uint8"):
        HammingPrecisionRecallDisplay.from_codes(codes.astype(np.int64), y_q)


def test_code_length_from_estimator_refits_clones(data):
    X_q, y_q, X_db, y_db = data
    hasher = ITQHasher(random_state=0)
    display = CodeLengthMAPDisplay.from_estimator(
        hasher, X_q, y_q, X_db, y_db, n_bits_list=[4, 8, 16]
    )
    assert [model.n_bits for model in display.estimators_] == [4, 8, 16]
    assert hasher.n_bits == 32  # the given estimator is left alone
    expected = [
        mean_average_precision(
            ITQHasher(n_bits=b, random_state=0).fit(X_db).transform(X_q),
            ITQHasher(n_bits=b, random_state=0).fit(X_db).transform(X_db),
            y_q,
            y_db,
        )
        for b in (4, 8, 16)
    ]
    np.testing.assert_allclose(display.scores, expected)
    np.testing.assert_array_equal(display.line_.get_xdata(), [4, 8, 16])
    np.testing.assert_allclose(display.line_.get_ydata(), expected)
    assert display.ax_.get_xlabel() == "Number of bits"
    assert display.ax_.get_ylabel() == "MAP"
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["4", "8", "16"]
    assert display.ax_.get_legend().get_texts()[0].get_text() == "ITQHasher"


def test_code_length_pipeline_train_set_and_k(data):
    X_q, y_q, X_db, y_db = data
    pipe = Pipeline([("scale", StandardScaler()), ("h", LSHHasher(random_state=1))])
    display = CodeLengthMAPDisplay.from_estimator(
        pipe,
        X_q,
        y_q,
        X_db,
        y_db,
        n_bits_list=[8, 16],
        X_train=X_db[:100],
        k=20,
    )
    model = display.estimators_[1]
    assert model[-1].n_bits == 16
    np.testing.assert_allclose(model[0].mean_, X_db[:100].mean(axis=0))
    expected = mean_average_precision(
        model.transform(X_q), model.transform(X_db), y_q, y_db, k=20
    )
    assert display.scores[1] == pytest.approx(expected)
    assert display.ax_.get_ylabel() == "MAP@20"
    assert display.line_.get_label() == "LSHHasher"


def test_code_length_from_results_and_ax_reuse():
    _, ax = plt.subplots()
    CodeLengthMAPDisplay.from_results([16, 32], [0.3, 0.4], name="LSH", ax=ax)
    display = CodeLengthMAPDisplay.from_results(
        [16, 64], [0.5, 0.6], name="ITQ", ax=ax, linestyle="--"
    )
    assert display.ax_ is ax and len(ax.get_lines()) == 2
    assert display.line_.get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LSH", "ITQ"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "32", "64"]


@pytest.mark.parametrize(
    "n_bits, scores, match",
    [
        ([16, 32], [0.1], "same length"),
        ([], [], "empty"),
        ([0, 8], [0.1, 0.2], "positive integers"),
        ([1.5, 8], [0.1, 0.2], "positive integers"),
    ],
)
def test_code_length_from_results_bad_input(n_bits, scores, match):
    with pytest.raises(ValueError, match=match):
        CodeLengthMAPDisplay.from_results(n_bits, scores)


def test_code_length_from_estimator_bad_input(data):
    X_q, y_q, X_db, y_db = data
    hasher = LSHHasher()
    with pytest.raises(ValueError, match="n_bits_list"):
        CodeLengthMAPDisplay.from_estimator(hasher, X_q, y_q, n_bits_list=[])
    with pytest.raises(ValueError, match="n_bits_list"):
        CodeLengthMAPDisplay.from_estimator(hasher, X_q, y_q, n_bits_list=[8, 0])
    with pytest.raises(ValueError, match="both X_database"):
        CodeLengthMAPDisplay.from_estimator(hasher, X_q, y_q, X_db, n_bits_list=[8])
    with pytest.raises(ValueError, match="y_train"):
        CodeLengthMAPDisplay.from_estimator(
            hasher, X_q, y_q, n_bits_list=[8], y_train=y_db
        )


def test_clear_error_without_matplotlib(monkeypatch, data, fitted):
    X_q, y_q, X_db, y_db = data
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"needs matplotlib.*skhash\[plot\]"):
        HammingPrecisionRecallDisplay.from_estimator(fitted, X_q, y_q, X_db, y_db)
    with pytest.raises(ImportError, match="CodeLengthMAPDisplay.from_results"):
        CodeLengthMAPDisplay.from_results([8], [0.5])
