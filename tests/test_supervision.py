import numpy as np
import pytest

from skhash._supervision import (
    check_labels,
    check_supervision,
    encode_labels,
    relevance,
    sample_pairs,
    sample_triplets,
)

Y_MULTI = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_relevance_single_label_is_equality():
    yq, yd = encode_labels(np.array(["a", "b"]), np.array(["b", "a", "c", "a"]))
    np.testing.assert_array_equal(
        relevance(yq, yd), [[False, True, False, True], [True, False, False, False]]
    )


def test_relevance_multi_label_is_sharing_one_label():
    yq, yd = encode_labels(Y_MULTI, Y_MULTI)
    expected = [
        [[bool(np.dot(a, b)) for b in Y_MULTI] for a in Y_MULTI],
    ][0]
    np.testing.assert_array_equal(relevance(yq, yd), expected)
    # A sample with no label is relevant to nothing, not even itself.
    assert not relevance(yq, yd)[3].any()


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([[0, 2], [1, 0]]), "indicator matrix of 0 and 1"),
        (np.array([1.0, np.nan]), "NaN"),
        (np.zeros((2, 2, 2)), "1-D class labels or a 2-D"),
        (np.array([[1, 2], [3]], dtype=object), "MultiLabelBinarizer"),
    ],
)
def test_check_labels_errors(y, match):
    with pytest.raises(ValueError, match=match):
        check_labels(y)


def test_encode_labels_rejects_mixed_kinds_and_widths():
    with pytest.raises(ValueError, match="both be 1-D"):
        encode_labels([0, 1], Y_MULTI)
    with pytest.raises(ValueError, match="label columns"):
        encode_labels(Y_MULTI, Y_MULTI[:, :2])


def test_check_supervision_errors():
    with pytest.raises(ValueError, match="requires y"):
        check_supervision(None, 3)
    with pytest.raises(ValueError, match="1 class"):
        check_supervision([4, 4, 4], 3)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        check_supervision([0, 1], 3)
    with pytest.raises(ValueError, match="every pair is similar"):
        check_supervision([[1, 0], [1, 1]], 2)
    np.testing.assert_array_equal(check_supervision([0, 1, 0], 3), [0, 1, 0])


def test_sample_pairs_are_distinct_and_labelled_correctly():
    y = np.array([0, 0, 1, 1, 2])
    first, second, similar = sample_pairs(y, 500, random_state=0)
    assert (first != second).all()
    np.testing.assert_array_equal(similar, y[first] == y[second])
    again = sample_pairs(y, 500, random_state=0)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])


def test_sample_triplets_multi_label():
    anchor, positive, negative = sample_triplets(Y_MULTI, 200, random_state=0)
    for a, p, n in zip(anchor, positive, negative, strict=True):
        assert a != p
        assert Y_MULTI[a] @ Y_MULTI[p] > 0
        assert Y_MULTI[a] @ Y_MULTI[n] == 0


def test_sample_triplets_needs_similar_and_dissimilar_partners():
    with pytest.raises(ValueError, match="similar and a dissimilar"):
        sample_triplets([0, 1, 2], 5, random_state=0)
