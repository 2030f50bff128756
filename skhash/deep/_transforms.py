"""Image transforms for the deep hashers' ``augmentation`` and ``preprocessing``.

A few lines of torch each, so that skhash needs no torchvision (which does not
import with every build of torch). Each transform is a picklable class with a
repr that maps a float image tensor of shape (channels, height, width) to
another; torch is imported when one is called, never when this module is.
Random ones draw from torch's global generator, which the deep hashers seed
for each image from their ``random_state``.

:func:`imagenet_augmentation` and :func:`imagenet_preprocessing` are the usual
recipe for ImageNet-pretrained backbones: a random resized crop and a
horizontal flip at training, a resize and a centre crop at encoding.
"""

import math
import numbers

__all__ = [
    "CenterCrop",
    "Compose",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToRGB",
    "imagenet_augmentation",
    "imagenet_preprocessing",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pair(size, name):
    """``size`` as (height, width) of positive ints."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(
        isinstance(side, numbers.Integral) and not isinstance(side, bool) and side > 0
        for side in size
    ):
        raise ValueError(
            f"{name} must be a positive int or (height, width); got {size}."
        )
    return tuple(int(side) for side in size)


def _check_image(image, what):
    if getattr(image, "ndim", None) != 3:
        shape = tuple(getattr(image, "shape", ()))
        raise ValueError(
            f"{what} takes an image tensor of shape (channels, height, width); "
            f"got shape {shape}."
        )


def _resized(image, size):
    """Bilinear resize of a (C, H, W) float tensor to ``size`` = (h, w), with
    antialiasing when shrinking (as torchvision's v2 transforms do)."""
    import torch.nn.functional as F

    if tuple(image.shape[1:]) == tuple(size):
        return image
    return F.interpolate(
        image[None],
        size=size,
        mode="bilinear",
        align_corners=False,
        antialias=size[0] < image.shape[1] or size[1] < image.shape[2],
    )[0]


class _Transform:
    """Base: a repr from the constructor's parameters, and those parameters
    as built-in values (:func:`transform_state` saves them that way)."""

    _parameters = ()

    def _params(self):
        return {name: getattr(self, name) for name in self._parameters}

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(other) is type(self) and other._params() == self._params()

    __hash__ = None


class Compose(_Transform):
    """Apply ``transforms`` one after the other.

    Parameters
    ----------
    transforms : list of callables
        Each maps an image tensor to an image tensor.
    """

    _parameters = ("transforms",)

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self):
        if not self.transforms:
            return "Compose([])"
        lines = "".join(f"    {transform!r},\n" for transform in self.transforms)
        return f"Compose([\n{lines}])"


class ToRGB(_Transform):
    """Repeat a grey image's one channel to three; colour images pass as they
    are (a collection mixing grey and colour images then has one shape)."""

    def __call__(self, image):
        _check_image(image, "ToRGB")
        if image.shape[0] == 1:
            return image.expand(3, -1, -1).contiguous()
        if image.shape[0] != 3:
            raise ValueError(f"ToRGB takes 1 or 3 channels; got {image.shape[0]}.")
        return image


class Resize(_Transform):
    """Bilinear resize (antialiased when shrinking).

    Parameters
    ----------
    size : int or (height, width)
        An int resizes the shorter side to it, keeping the aspect ratio (the
        longer side rounded down, as torchvision does); a pair gives the size.
    """

    _parameters = ("size",)

    def __init__(self, size):
        self.size = size

    def __call__(self, image):
        _check_image(image, "Resize")
        height, width = image.shape[1:]
        if isinstance(self.size, numbers.Integral):
            short, long = sorted((height, width))
            target = (self.size, int(self.size * long / short))
            size = target if height <= width else target[::-1]
        else:
            size = _pair(self.size, "size")
        return _resized(image, size)


class CenterCrop(_Transform):
    """The centre ``size`` of the image, zero-padded where the image is
    smaller (as torchvision does).

    Parameters
    ----------
    size : int or (height, width)
    """

    _parameters = ("size",)

    def __init__(self, size):
        self.size = size

    def __call__(self, image):
        import torch.nn.functional as F

        _check_image(image, "CenterCrop")
        crop_height, crop_width = _pair(self.size, "size")
        height, width = image.shape[1:]
        if crop_height > height or crop_width > width:
            pad_height, pad_width = (
                max(crop_height - height, 0),
                max(crop_width - width, 0),
            )
            image = F.pad(
                image,
                (
                    pad_width // 2,
                    pad_width - pad_width // 2,
                    pad_height // 2,
                    pad_height - pad_height // 2,
                ),
            )
            height, width = image.shape[1:]
        top = int(round((height - crop_height) / 2))
        left = int(round((width - crop_width) / 2))
        return image[:, top : top + crop_height, left : left + crop_width]


class RandomResizedCrop(_Transform):
    """A random part of the image resized to ``size`` (Inception's crop).

    The part covers ``scale`` of the image's area and has an aspect ratio in
    ``ratio`` (drawn log-uniformly); after 10 draws that do not fit in the
    image, the centre crop of the nearest allowed ratio (torchvision's
    algorithm).

    Parameters
    ----------
    size : int or (height, width)
    scale : (float, float), default=(0.08, 1.0)
    ratio : (float, float), default=(3 / 4, 4 / 3)
    """

    _parameters = ("size", "scale", "ratio")

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)

    def _box(self, height, width):
        import torch

        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * torch.empty(1).uniform_(*self.scale).item()
            aspect = math.exp(torch.empty(1).uniform_(*log_ratio).item())
            crop_width = int(round(math.sqrt(target * aspect)))
            crop_height = int(round(math.sqrt(target / aspect)))
            if 0 < crop_width <= width and 0 < crop_height <= height:
                top = torch.randint(0, height - crop_height + 1, size=(1,)).item()
                left = torch.randint(0, width - crop_width + 1, size=(1,)).item()
                return top, left, crop_height, crop_width
        aspect = width / height
        if aspect < min(self.ratio):
            crop_width, crop_height = width, int(round(width / min(self.ratio)))
        elif aspect > max(self.ratio):
            crop_height, crop_width = height, int(round(height * max(self.ratio)))
        else:
            crop_width, crop_height = width, height
        return (
            (height - crop_height) // 2,
            (width - crop_width) // 2,
            crop_height,
            crop_width,
        )

    def __call__(self, image):
        _check_image(image, "RandomResizedCrop")
        top, left, height, width = self._box(*image.shape[1:])
        crop = image[:, top : top + height, left : left + width]
        return _resized(crop, _pair(self.size, "size"))


class RandomHorizontalFlip(_Transform):
    """Mirror the image left to right with probability ``p``.

    Parameters
    ----------
    p : float, default=0.5
    """

    _parameters = ("p",)

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image):
        import torch

        _check_image(image, "RandomHorizontalFlip")
        if torch.rand(1).item() < self.p:
            return image.flip(-1)
        return image


class Normalize(_Transform):
    """``(image - mean) / std``, per channel.

    Parameters
    ----------
    mean, std : sequence of float
        One value per channel.
    """

    _parameters = ("mean", "std")

    def __init__(self, mean, std):
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)

    def __call__(self, image):
        import torch

        _check_image(image, "Normalize")
        if image.shape[0] != len(self.mean):
            raise ValueError(
                f"Normalize has {len(self.mean)} channel means; the image has "
                f"{image.shape[0]} channels."
            )
        mean = torch.tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
        return (image - mean) / std


def imagenet_augmentation(size=224, *, normalize=False):
    """Training-time augmentation of ImageNet-pretrained backbones.

    A grey image repeated to three channels, a random resized crop to
    ``size``, a horizontal flip with probability 0.5, then optionally
    ImageNet's per-channel normalisation. Pass it as a deep hasher's
    ``augmentation`` with :func:`imagenet_preprocessing` of the same ``size``
    as its ``preprocessing``.

    Parameters
    ----------
    size : int or (height, width), default=224
        Of the crops the network trains on.
    normalize : bool, default=False
        Append ``Normalize(ImageNet's mean, ImageNet's std)``. Leave it off
        with :func:`skhash.deep.efficientnet_lite0` and
        :func:`skhash.deep.torchvision_backbone`, which take images in [0, 1]
        and standardise them inside; turn it on for a bare torchvision
        model given as ``backbone``.

    Returns
    -------
    augmentation : Compose

    Examples
    --------
    >>> from skhash.deep import imagenet_augmentation
    >>> imagenet_augmentation(32)
    Compose([
        ToRGB(),
        RandomResizedCrop(size=32, scale=(0.08, 1.0), ratio=(0.75, 1.3333333333333333)),
        RandomHorizontalFlip(p=0.5),
    ])
    """
    steps = [ToRGB(), RandomResizedCrop(size), RandomHorizontalFlip()]
    if normalize:
        steps.append(Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return Compose(steps)


def imagenet_preprocessing(size=224, *, resize=None, normalize=False):
    """Encoding-time preprocessing of ImageNet-pretrained backbones.

    A grey image repeated to three channels, resized so that its shorter side
    is ``resize``, the centre ``size`` cropped, then optionally ImageNet's
    per-channel normalisation.

    Parameters
    ----------
    size : int or (height, width), default=224
        Of the centre crop, which the network takes.
    resize : int, default=None
        The shorter side before cropping; ``None`` is ``size * 256 / 224``
        (256 for 224, the usual ratio).
    normalize : bool, default=False
        As in :func:`imagenet_augmentation`.

    Returns
    -------
    preprocessing : Compose

    Examples
    --------
    >>> from skhash.deep import imagenet_preprocessing
    >>> imagenet_preprocessing(32)
    Compose([
        ToRGB(),
        Resize(size=37),
        CenterCrop(size=32),
    ])
    """
    if resize is None:
        resize = int(round(max(_pair(size, "size")) * 256 / 224))
    steps = [ToRGB(), Resize(resize), CenterCrop(size)]
    if normalize:
        steps.append(Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return Compose(steps)


# skops: the transforms above are saved as their class name and parameters
# (built-in values), and rebuilt from this list only.
_SAVED = {cls.__name__: cls for cls in (
    CenterCrop, Compose, Normalize, RandomHorizontalFlip, RandomResizedCrop,
    Resize, ToRGB,
)}  # fmt: skip
_TAG = "skhash.deep.transform"


def is_saved_transform(value):
    """Whether ``value`` is made of skhash's transforms only (a ``Compose``
    of them included), which skops files hold as data."""
    if type(value) not in _SAVED.values():
        return False
    if isinstance(value, Compose):
        return all(is_saved_transform(step) for step in value.transforms)
    return True


def transform_state(value):
    """A transform of :func:`is_saved_transform` as built-in values."""
    params = value._params()
    if isinstance(value, Compose):
        params = {"transforms": [transform_state(step) for step in value.transforms]}
    return {_TAG: type(value).__name__, "params": params}


def is_transform_state(value):
    return isinstance(value, dict) and _TAG in value


def transform_from_state(state):
    """The transform :func:`transform_state` describes; only skhash's
    transforms are built."""
    name = state.get(_TAG)
    params = state.get("params")
    if name not in _SAVED or not isinstance(params, dict):
        raise ValueError(f"Not a saved skhash transform: {state!r}.")
    if name == "Compose":
        params = {
            "transforms": [transform_from_state(step) for step in params["transforms"]]
        }
    return _SAVED[name](**params)
