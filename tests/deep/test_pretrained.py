"""Pretrained backbones: frozen (features computed once) and fine-tuned."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from skhash import CSQHasher, DPNHasher  # noqa: E402
from skhash.deep import extract_features, torchvision_backbone  # noqa: E402

FAST = {"max_epochs": 3, "batch_size": 32, "device": "cpu", "random_state": 0}


class TinyResNet(nn.Module):
    """Shaped like torchvision's ResNet: batch norm, pooling, then ``fc``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 1000)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:200].astype(np.float32), y[:200]


@pytest.fixture
def model():
    torch.manual_seed(0)
    model = TinyResNet()
    # Batch-norm statistics as a pretrained network has them, not 0 and 1.
    model.bn.running_mean.uniform_(0, 0.5)
    model.bn.running_var.uniform_(0.5, 2)
    return model


def test_torchvision_backbone_drops_the_classifier_and_copies(model):
    backbone = torchvision_backbone(model)
    assert backbone.out_features == 6
    assert isinstance(model.fc, nn.Linear)  # the user's model is unchanged
    assert not any(p.requires_grad for p in backbone.parameters())
    grey = torch.rand(2, 1, 8, 8)
    # One channel repeated to three, upsampled to 32 x 32, ImageNet statistics.
    rgb = nn.functional.interpolate(
        grey.expand(-1, 3, -1, -1), size=(32, 32), mode="bilinear"
    )
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    model.eval()
    expected = model.pool(torch.relu(model.bn(model.conv((rgb - mean) / std)))).flatten(
        1
    )
    torch.testing.assert_close(backbone(grey), expected)
    with pytest.raises(ValueError, match="classifier"):
        torchvision_backbone(nn.Sequential(nn.Conv2d(3, 2, 1)))


def test_frozen_backbone_runs_once_per_fit_and_stays_unchanged(model, digits):
    X, y = digits
    backbone = torchvision_backbone(model)
    calls = []
    backbone.register_forward_hook(lambda module, inputs, output: calls.append(1))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    hasher = CSQHasher(8, backbone=backbone, input_shape=(1, 8, 8), **FAST).fit(X, y)
    # 200 images in one pass of 256, not 3 epochs x 7 mini-batches.
    assert len(calls) == 1
    for name, value in hasher.net_.module_.backbone.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert hasher.transform(X).shape == (200, 1)
    assert hasher.net_.module_.takes_features is False


def test_frozen_backbone_equals_the_head_fitted_on_extracted_features(model, digits):
    X, y = digits
    backbone = torchvision_backbone(model)
    on_images = DPNHasher(8, backbone=backbone, input_shape=(1, 8, 8), **FAST)
    codes = on_images.fit(X, y).transform(X)
    features = extract_features(backbone, X, input_shape=(1, 8, 8), device="cpu")
    assert features.shape == (200, 6) and features.dtype == np.float32
    on_features = DPNHasher(8, backbone="mlp", hidden_layer_sizes=(), **FAST)
    # The same head, initial weights, mini-batches and updates: the same codes.
    np.testing.assert_array_equal(
        on_features.fit(features, y).transform(features), codes
    )


def test_fine_tuned_backbone_trains(model, digits):
    X, y = digits
    backbone = torchvision_backbone(model, freeze=False)
    assert all(p.requires_grad for p in backbone.parameters())
    before = backbone.network.conv.weight.detach().clone()
    hasher = CSQHasher(8, backbone=backbone, input_shape=(1, 8, 8), **FAST).fit(X, y)
    after = hasher.net_.module_.backbone.network.conv.weight
    assert not torch.equal(after, before)


def test_extract_features_in_eval_mode_then_restores_the_mode(model, digits):
    X, _ = digits
    model.fc = nn.Identity()
    model.train()
    features = extract_features(model, X[:10].repeat(3, axis=1), input_shape=(3, 8, 8))
    assert model.training
    model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(X[:10].repeat(3, axis=1)).view(10, 3, 8, 8))
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_frozen_backbone_with_augmentation_runs_every_batch_in_eval_mode(model, digits):
    from skhash.deep import RandomHorizontalFlip

    X, y = digits
    images = np.round(X[:64] * 255).astype(np.uint8).reshape(-1, 8, 8, 1)
    y = y[:64]
    backbone = torchvision_backbone(model)
    calls = []
    backbone.register_forward_hook(lambda module, inputs, output: calls.append(1))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    hasher = CSQHasher(
        8, backbone=backbone, augmentation=RandomHorizontalFlip(), **FAST
    )
    hasher.fit(images, y)
    # Augmented images differ at every epoch: 3 epochs x 2 mini-batches.
    assert len(calls) == 6
    # Batch normalisation kept ImageNet's statistics (eval mode) in training.
    for name, value in hasher.net_.module_.backbone.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert hasher.transform(images).shape == (64, 1)


def test_the_pretrained_recipe_on_small_images(model, digits):
    from skhash.deep import imagenet_augmentation, imagenet_preprocessing

    X, y = digits
    images = np.round(X[:64] * 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    y = y[:64]
    hasher = CSQHasher(
        8,
        backbone=torchvision_backbone(model),
        augmentation=imagenet_augmentation(32),
        preprocessing=imagenet_preprocessing(32),
        **FAST,
    ).fit(images, y)
    # Grey to RGB, resized to 37, the centre 32 x 32 cropped.
    assert hasher.sample_shape_ == (3, 32, 32)
    codes = hasher.transform(images)
    assert codes.shape == (64, 1)
    np.testing.assert_array_equal(hasher.transform(images.transpose(0, 2, 3, 1)), codes)


def _real_torchvision():
    try:
        import torchvision.models

        return torchvision.models
    except Exception as error:  # RuntimeError with the PyPI wheel on CPU torch
        pytest.skip(f"torchvision does not import here ({type(error).__name__})")


@pytest.fixture
def fake_torchvision(monkeypatch):
    """A stand-in torchvision whose only architecture is TinyResNet: the
    by-name path is checked where torchvision does not import."""
    import sys
    import types

    built = []

    def get_model(name, *, weights):
        assert weights is None  # nothing is downloaded
        if name != "tinyresnet":
            raise ValueError(f"Unknown model {name}")
        built.append(TinyResNet())
        return built[-1]

    package = types.ModuleType("torchvision")
    package.models = types.ModuleType("torchvision.models")
    package.models.get_model = get_model
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", package.models)
    return built


def test_a_named_architecture_takes_its_weights_from_the_file(
    fake_torchvision, model, tmp_path
):
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    by_name = torchvision_backbone("tinyresnet", weights=path)
    by_module = torchvision_backbone(model)
    images = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(by_name(images), by_module(images), rtol=0, atol=0)
    assert by_name.out_features == 6
    # The file's weights and statistics, not a fresh initialisation's.
    state = by_name.network.state_dict()
    assert set(state) == {k for k in model.state_dict() if not k.startswith("fc.")}
    for name, tensor in state.items():
        assert torch.equal(tensor, model.state_dict()[name]), name


def test_a_named_architecture_refuses_what_does_not_fit(
    fake_torchvision, model, tmp_path
):
    with pytest.raises(ValueError, match="needs weights=<file"):
        torchvision_backbone("tinyresnet")
    with pytest.raises(ValueError, match="Unknown model"):
        torchvision_backbone("nonet", weights=tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError):
        torchvision_backbone("tinyresnet", weights=tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save(nn.Linear(2, 2).state_dict(), wrong)
    with pytest.raises(ValueError, match="do not fit torchvision's 'tinyresnet'"):
        torchvision_backbone("tinyresnet", weights=wrong)
    with pytest.raises(ValueError, match="goes with the name"):
        torchvision_backbone(model, weights=wrong)


def test_a_name_without_torchvision_is_a_clear_import_error(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails
    with pytest.raises(ImportError, match="needs torchvision, which does not"):
        torchvision_backbone("resnet18", weights=tmp_path / "resnet18.pth")


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "vit_b_16"])
def test_torchvision_architectures_by_name(name, tmp_path):
    # Runs where torchvision imports (a CUDA build of torch); skipped here.
    models = _real_torchvision()
    torch.manual_seed(0)
    model = models.get_model(name, weights=None)
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    size = 224 if name.startswith("vit") else 32
    by_name = torchvision_backbone(name, weights=path, min_size=size)
    by_module = torchvision_backbone(model, min_size=size)
    images = torch.rand(2, 3, size, size)
    torch.testing.assert_close(by_name(images), by_module(images))
