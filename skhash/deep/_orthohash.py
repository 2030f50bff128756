"""OrthoHash: one cosine-similarity loss for hashing."""

from numbers import Real

from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from .._supervision import indicator_matrix
from ..base import SupervisedHasherMixin
from ..utils._param_validation import Interval
from ._centres import class_codes
from ._engine import BaseDeepHasher


class OrthoHashHasher(SupervisedHasherMixin, BaseDeepHasher):
    """OrthoHash: codes classified by their cosine to per-class codewords.

    Every class gets a binary codeword, the codewords (nearly) orthogonal.
    The network's outputs ``v`` (a linear hash layer, then batch
    normalisation, which balances the bits) are classified by the scaled
    cosine similarity to each codeword with an additive margin on the true
    class, ``scale * (cos(v, o_c) - margin)``, under a softmax cross-entropy;
    maximising the cosine to a binary codeword also shrinks the quantization
    error. Several labels share the target equally (label smoothing). The
    code is ``sign(v)``.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.
    scale : float, default=8.0
        Scale ``s`` of the cosine logits.
    margin : float, default=0.2
        Margin ``m`` subtracted from the true classes' cosines.
    quantization : float, default=0.0
        Weight of an optional quantization term ``1 - cos(v, sign(v))``; 0
        (the authors' default) is the paper's single loss.
    codebook : {"bernoulli", "hadamard"}, default="bernoulli"
        Codewords: independent fair coins per bit (the authors' default,
        nearly orthogonal for many bits), or CSQ's Hadamard rows (exactly
        orthogonal for up to ``n_bits`` classes when ``n_bits`` is a power of
        two; see :class:`CSQHasher`).
    backbone, hidden_layer_sizes, input_shape, augmentation, preprocessing, \
num_workers, feature_cache, max_epochs, batch_size, lr, backbone_lr, optimizer, \
device, precision, channels_last, compile, accelerator, callbacks, verbose, \
random_state
        As in :class:`HashNetHasher`; ``random_state`` also draws the
        codebook.

    Attributes
    ----------
    codebook_ : ndarray of shape (n_labels, n_bits)
        The codeword (in {-1, +1}) of each class, in the order of first
        appearance in ``y`` (the columns of an indicator ``y``).
    net_ : skorch.NeuralNet
        The trained network and its training history.
    device_ : str
        Device used for training.
    n_features_in_ : int
        Number of features seen during fit.
    sample_shape_ : tuple of int
        Shape of each sample as the network takes it: (channels, height,
        width) for images (after ``preprocessing``), (n_features,) for
        feature rows. For images, ``n_features_in_`` is its product.

    See Also
    --------
    CSQHasher : Binary cross-entropy towards Hadamard hash centres.
    GreedyHashHasher : A classifier on the signed codes.

    Notes
    -----
    Follows the authors' code (``kamwoh/orthohash``), which the paper's
    description matches: a bias-free hash layer then ``BatchNorm1d``, fixed
    codewords, cosine margin ``m`` (default 0.2; the README's CIFAR-10 run
    uses 0.3), ``s = 8``, and for several labels the label-smoothed
    cross-entropy (the labels divided by their number), which for one label
    is the usual cross-entropy. The quantization term is off by default as
    in the code. Batch normalisation uses its running statistics for a
    training batch of one sample. The authors train with Adam at ``1e-4``
    on a pretrained AlexNet; the defaults here are those of the other deep
    hashers.

    References
    ----------
    .. [1] J. T. Hoe, K. W. Ng, T. Zhang, C. S. Chan, Y.-Z. Song and T.
       Xiang, "One loss for all: Deep hashing with a single cosine similarity
       based learning objective", NeurIPS 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import OrthoHashHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> hasher = OrthoHashHasher(n_bits=16, max_epochs=2, random_state=0)
    >>> hasher.fit(X / 16, y).transform(X / 16).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **BaseDeepHasher._parameter_constraints,
        "scale": [Interval(Real, 0, None, closed="neither")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "quantization": [Interval(Real, 0, None, closed="left")],
        "codebook": [StrOptions({"bernoulli", "hadamard"})],
    }

    def __init__(
        self,
        n_bits=32,
        *,
        scale=8.0,
        margin=0.2,
        quantization=0.0,
        codebook="bernoulli",
        backbone="auto",
        hidden_layer_sizes=(256,),
        input_shape=None,
        augmentation=None,
        preprocessing=None,
        num_workers=0,
        feature_cache=None,
        max_epochs=10,
        batch_size=64,
        lr=1e-3,
        backbone_lr=None,
        optimizer="adam",
        device="auto",
        precision="float32",
        channels_last=False,
        compile=False,
        accelerator=None,
        callbacks=None,
        verbose=0,
        random_state=None,
    ):
        self.n_bits = n_bits
        self.scale = scale
        self.margin = margin
        self.quantization = quantization
        self.codebook = codebook
        self.backbone = backbone
        self.hidden_layer_sizes = hidden_layer_sizes
        self.input_shape = input_shape
        self.augmentation = augmentation
        self.preprocessing = preprocessing
        self.num_workers = num_workers
        self.feature_cache = feature_cache
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.optimizer = optimizer
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.accelerator = accelerator
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state

    def _targets(self, X, y):
        labels = indicator_matrix(y)
        rng = check_random_state(self.random_state)
        self.codebook_ = class_codes(labels.shape[1], self.n_bits, self.codebook, rng)
        return labels

    def _head(self, in_features):
        from torch import nn

        from ._pointwise import CodeBatchNorm

        return nn.Sequential(
            nn.Linear(in_features, self.n_bits, bias=False), CodeBatchNorm(self.n_bits)
        )

    def _criterion(self):
        from ._pointwise import CosineMarginLoss

        return CosineMarginLoss(
            self.codebook_,
            scale=self.scale,
            margin=self.margin,
            quantization=self.quantization,
        )

    def _outputs_to_projection(self, v):
        return v
