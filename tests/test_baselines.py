"""ClassifierCodes: a classifier's outputs as codes, the baseline of issue #16."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from skhash import ClassifierCodes, LSHHasher, hamming_distances
from skhash.codes import unpack_codes
from skhash.datasets import retrieval_split
from skhash.metrics import mean_average_precision


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    return retrieval_split(
        X / 16, y, n_queries_per_class=20, n_train_per_class=60, random_state=0
    )


def _map(codes, split):
    return mean_average_precision(
        codes.transform(split.X_query),
        codes.transform(split.X_database),
        split.y_query,
        split.y_database,
        ties="average",
    )


def test_one_hot_codes_are_the_predictions(split):
    codes = ClassifierCodes().fit(split.X_train, split.y_train)
    bits = unpack_codes(codes.transform(split.X_database), 10)
    assert codes.n_bits_ == codes.n_outputs_ == 10
    assert isinstance(codes.estimator_, LogisticRegression)
    np.testing.assert_array_equal(bits.sum(axis=1), 1)
    predicted = codes.estimator_.predict(split.X_database)
    np.testing.assert_array_equal(codes.classes_[bits.argmax(axis=1)], predicted)
    # A strong baseline: far above random hyperplanes of three times the bits.
    lsh = LSHHasher(32, random_state=0).fit(split.X_database)
    assert _map(codes, split) > _map(lsh, split) + 0.3


def test_sign_codes_and_padding(split):
    estimator = LinearSVC(random_state=0)
    codes = ClassifierCodes(estimator=estimator, code="sign")
    packed = codes.fit(split.X_train, split.y_train).transform(split.X_query)
    scores = codes.estimator_.decision_function(split.X_query)
    # Bits in the order of the classes' first appearance in y.
    order = [list(codes.estimator_.classes_).index(c) for c in codes.classes_]
    np.testing.assert_array_equal(unpack_codes(packed, 10), scores[:, order] >= 0)
    padded = ClassifierCodes(16, estimator=estimator, code="sign")
    padded_codes = padded.fit(split.X_train, split.y_train).transform(split.X_query)
    assert padded_codes.shape == (len(split.X_query), 2)
    np.testing.assert_array_equal(unpack_codes(padded_codes, 16)[:, 10:], 0)
    np.testing.assert_array_equal(
        hamming_distances(padded_codes, padded_codes), hamming_distances(packed, packed)
    )
    with pytest.raises(ValueError, match="n_bits=8 is less than the 10 bits"):
        ClassifierCodes(8).fit(split.X_train, split.y_train)
    with pytest.raises(ValueError, match="needs a classifier with decision_function"):
        ClassifierCodes(estimator=KNeighborsClassifier(), code="sign").fit(
            split.X_train, split.y_train
        )


def test_binary_and_multi_label(split):
    X, y = split.X_train, split.y_train
    binary = ClassifierCodes(code="sign").fit(X, y % 2)
    assert binary.n_bits_ == 1
    # The bit is set for the class that appears second in y, whatever its name.
    renamed = ClassifierCodes(code="sign").fit(X, np.where(y % 2, "a", "b"))
    np.testing.assert_array_equal(binary.transform(X), renamed.transform(X))
    Y = np.column_stack([y == 0, y % 2 == 0, y > 6]).astype(int)
    multi = ClassifierCodes().fit(X, Y)
    assert not hasattr(multi, "classes_") and multi.n_bits_ == 3
    np.testing.assert_array_equal(
        unpack_codes(multi.transform(X), 3), multi.estimator_.predict(X)
    )
