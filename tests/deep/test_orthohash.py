import math
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skhash import OrthoHashHasher  # noqa: E402
from skhash.deep._pointwise import CodeBatchNorm, CosineMarginLoss  # noqa: E402
from skhash.metrics import mean_average_precision  # noqa: E402

FAST = {
    "max_epochs": 5,
    "batch_size": 32,
    "hidden_layer_sizes": (256,),
    "device": "cpu",
}
CODEBOOK = np.array([[1.0, 1.0], [1.0, -1.0]])  # unit rows [.707107, +-.707107]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:600], y[:600]


def test_cosine_margin_loss_by_hand():
    v = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # s = 2, m = 0.5. Sample 0 (class 0): cosines [.707107, .707107], logits
    # [2 (.707107 - .5), 2 (.707107)] = [0.414214, 1.414214]; cross-entropy
    # log(e^0.414214 + e^1.414214) - 0.414214 = log 5.626443 - 0.414214 = 1.313262.
    # Sample 1 (class 1): cosines [.989949, -.141421], logits [1.979899, -1.282843];
    # log(7.242010 + 0.277258) + 1.282843 = 2.017467 + 1.282843 = 3.300310.
    expected = (1.313262 + 3.300310) / 2
    loss = CosineMarginLoss(CODEBOOK, scale=2.0, margin=0.5, quantization=0.0)
    assert loss(v, labels).item() == pytest.approx(expected, abs=2e-6)


def test_several_labels_share_the_target_and_the_margin():
    # Both labels: both logits 2 (.707107 - .5), so each log-softmax is -log 2
    # and the target [1/2, 1/2] gives log 2.
    loss = CosineMarginLoss(CODEBOOK, scale=2.0, margin=0.5, quantization=0.0)
    value = loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    assert value.item() == pytest.approx(math.log(2), abs=1e-6)


def test_quantization_term_is_one_minus_cosine_to_the_sign():
    v = torch.tensor([[0.6, 0.8], [3.0, -4.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # cos([.6, .8], [1, 1]) = 1.4 / 1.414214 = 0.989949; cos([3, -4], [1, -1]) =
    # 7 / (5 * 1.414214) = 0.989949: the term is 1 - 0.989949 = 0.010051.
    without = CosineMarginLoss(CODEBOOK, scale=8.0, margin=0.2, quantization=0.0)
    with_q = CosineMarginLoss(CODEBOOK, scale=8.0, margin=0.2, quantization=1.0)
    difference = with_q(v, labels) - without(v, labels)
    assert difference.item() == pytest.approx(0.010051, abs=1e-6)


def test_batch_norm_of_one_training_sample_uses_running_statistics():
    norm = CodeBatchNorm(3).train()
    x = torch.tensor([[1.0, -2.0, 0.5]])
    # Running mean 0 and variance 1 at the start: the input comes back.
    torch.testing.assert_close(norm(x), x / math.sqrt(1 + norm.eps))
    assert norm(torch.randn(4, 3)).shape == (4, 3)


def test_learns_single_and_multi_label_with_balanced_bits(digits):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    random_codes = np.random.RandomState(0).randint(0, 256, (600, 2), dtype=np.uint8)
    for labels in (y, Y):
        hasher = OrthoHashHasher(16, random_state=0, **FAST).fit(X, labels)
        codes = hasher.transform(X)
        assert hasher.codebook_.shape == (10 if labels.ndim == 1 else 11, 16)
        trained = mean_average_precision(codes, None, labels)
        assert trained > mean_average_precision(random_codes, None, labels) + 0.1
    # Batch normalisation centres the outputs: no bit is constant.
    bits = np.unpackbits(codes, axis=1)[:, :16].mean(axis=0)
    assert ((bits > 0.05) & (bits < 0.95)).all()


def test_hadamard_codebook_is_orthogonal(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 1}
    hasher = OrthoHashHasher(16, codebook="hadamard", random_state=0, **params)
    codebook = hasher.fit(X, y).codebook_
    np.testing.assert_array_equal(codebook @ codebook.T, 16 * np.eye(10))


def test_same_seed_same_codes_and_pickling(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 2}
    a = OrthoHashHasher(16, random_state=3, **params).fit(X, y)
    b = OrthoHashHasher(16, random_state=3, **params).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), a.transform(X))
