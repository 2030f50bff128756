"""OrthoHash's contrastive term on shifted views (issue #26, item 4)."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skhash import OrthoHashHasher  # noqa: E402
from skhash.deep._contrastive import (  # noqa: E402
    ShiftedViewsNetwork,
    WithContrastive,
    contrastive_loss,
    random_shifts,
)
from skhash.deep._modules import HashNetwork  # noqa: E402
from skhash.deep._pointwise import CosineMarginLoss  # noqa: E402

FAST = {
    "max_epochs": 2,
    "batch_size": 32,
    "backbone": "mlp",
    "input_shape": (1, 8, 8),
    "device": "cpu",
}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:400], y[:400]


def _shifted(image, dy, dx):
    """``image`` (H x W) moved down by ``dy`` and right by ``dx``, zeros in."""
    out = np.zeros_like(image)
    height, width = image.shape
    for i in range(height):
        for j in range(width):
            if 0 <= i - dy < height and 0 <= j - dx < width:
                out[i, j] = image[i - dy, j - dx]
    return out


def test_random_shifts_move_each_image_by_at_most_max_shift():
    torch.manual_seed(0)
    images = torch.arange(1, 1 + 40 * 2 * 5 * 6, dtype=torch.float32).reshape(
        40, 2, 5, 6
    )
    shifted = random_shifts(images, 2).numpy()
    seen = set()
    for image, moved in zip(images.numpy(), shifted, strict=True):
        # Distinct pixel values: exactly one offset gives this image.
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if all(
                np.array_equal(_shifted(channel, dy, dx), out)
                for channel, out in zip(image, moved, strict=True)
            )
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # each image draws its own offset
    np.testing.assert_array_equal(random_shifts(images, 0).numpy(), images.numpy())


@pytest.mark.parametrize("labels", [None, [0, 1, 0]], ids=["no labels", "labels"])
def test_contrastive_loss_by_a_slow_computation(labels):
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    temperature = 0.5
    views = np.vstack([first, second])
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    image = [0, 1, 2, 0, 1, 2]  # the image each view shows
    losses = []
    for i in range(6):
        partner = (i + 3) % 6
        # Candidates: every other view, less those of other images that
        # share the label of view i's image.
        candidates = [
            k
            for k in range(6)
            if k != i
            and (
                k == partner
                or labels is None
                or labels[image[k]] != labels[image[i]]
                or image[k] == image[i]
            )
        ]
        logits = {k: views[i] @ views[k] / temperature for k in candidates}
        denominator = sum(np.exp(value) for value in logits.values())
        losses.append(-np.log(np.exp(logits[partner]) / denominator))
    indicator = None if labels is None else torch.eye(2)[labels]
    loss = contrastive_loss(
        torch.tensor(first, dtype=torch.float32),
        torch.tensor(second, dtype=torch.float32),
        temperature,
        indicator,
    )
    assert loss.item() == pytest.approx(np.mean(losses), rel=1e-5)


def test_with_contrastive_adds_the_weighted_term():
    torch.manual_seed(0)
    codebook = np.array([[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])
    base = CosineMarginLoss(codebook, scale=8.0, margin=0.2, quantization=0.0)
    outputs = tuple(torch.randn(4, 3) for _ in range(3))
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    total = WithContrastive(base, 0.7, 0.3)(outputs, labels)
    expected = base(outputs[0], labels) + 0.7 * contrastive_loss(
        outputs[1], outputs[2], 0.3, labels
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_views_in_training_the_outputs_alone_in_evaluation():
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 5))
    plain = HashNetwork(backbone, torch.nn.Identity(), (1, 4, 4))
    network = ShiftedViewsNetwork(backbone, torch.nn.Identity(), (1, 4, 4), 0)
    x = torch.randn(3, 16)
    network.train()
    outputs, first, second = network(x)
    # No shift: both views are the batch itself.
    torch.testing.assert_close(first, outputs)
    torch.testing.assert_close(second, outputs)
    torch.testing.assert_close(outputs, plain(x))
    network.eval()
    torch.testing.assert_close(network(x), plain(x))
    network.max_shift = 1
    network.train()
    _, first, second = network(x)
    assert not torch.equal(first, second)


def test_zero_weight_trains_the_papers_network_and_loss(digits):
    X, y = digits
    hasher = OrthoHashHasher(16, random_state=0, **FAST).fit(X, y)
    assert type(hasher.net_.module_) is HashNetwork
    assert type(hasher.net_.criterion_) is CosineMarginLoss


def test_same_seed_same_codes_pickling_and_a_different_model(digits):
    X, y = digits
    a = OrthoHashHasher(16, contrastive=0.5, random_state=0, **FAST).fit(X, y)
    b = OrthoHashHasher(16, contrastive=0.5, random_state=0, **FAST).fit(X, y)
    codes = a.transform(X)
    assert codes.shape == (len(X), 2)
    np.testing.assert_array_equal(b.transform(X), codes)
    assert isinstance(a.net_.module_, ShiftedViewsNetwork)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), codes)
    plain = OrthoHashHasher(16, random_state=0, **FAST).fit(X, y)
    assert not np.array_equal(plain.transform(X), codes)


def test_rows_without_an_image_shape_are_refused(digits):
    X, y = digits
    params = {**FAST, "input_shape": None}
    with pytest.raises(ValueError, match="input_shape"):
        OrthoHashHasher(8, contrastive=0.5, **params).fit(X, y)


def test_a_frozen_backbone_is_refused(digits):
    X, y = digits
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16))
    backbone.requires_grad_(False)
    params = {**FAST, "backbone": backbone}
    with pytest.raises(ValueError, match="frozen"):
        OrthoHashHasher(8, contrastive=0.5, **params).fit(X, y)


def test_files_saved_before_the_term_load_without_it(digits):
    X, y = digits
    hasher = OrthoHashHasher(8, random_state=0, **FAST).fit(X, y)
    _, _, state = hasher.__reduce_ex__(2)
    for name in ("contrastive", "temperature", "max_shift"):
        del state[name]
    old = OrthoHashHasher.__new__(OrthoHashHasher)
    old.__setstate__(state)
    assert (old.contrastive, old.temperature, old.max_shift) == (0.0, 0.3, 0.15)
    np.testing.assert_array_equal(old.transform(X), hasher.transform(X))


def test_onnx_export_encodes_as_transform(digits):
    # Training's extra views leave the exported (evaluation) graph unchanged.
    onnxruntime = pytest.importorskip("onnxruntime")
    from skhash.onnx import to_onnx

    X, y = digits
    X = X.astype(np.float32)
    hasher = OrthoHashHasher(16, contrastive=1.0, random_state=0, **FAST).fit(X, y)
    session = onnxruntime.InferenceSession(to_onnx(hasher, X[:5]).SerializeToString())
    codes = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_array_equal(codes, hasher.transform(X))
