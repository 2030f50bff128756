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
    contrastive : float, default=0.0
        Weight of a self-supervised contrastive term added to the loss: two
        views of each training image, each shifted at random by up to
        ``max_shift`` of its size, are encoded too, and each view's output
        must be nearer its partner's than the views of images with other
        labels (NT-Xent at ``temperature``). It keeps in the codes what tells
        images apart beyond their class, for classes the labels never named
        (see Notes). 0 (the default) is the paper's loss. Needs images (image
        inputs, or rows with ``input_shape``) and a backbone that trains.
    temperature : float, default=0.3
        Temperature of the contrastive term.
    max_shift : float, default=0.15
        Largest shift of the contrastive views along each axis, as a
        fraction of the image's smaller side, rounded to whole pixels (4 on
        28 x 28 images).
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

    ``contrastive > 0`` adds SimCLR's contrastive loss [2]_, which CIBHash [3]_
    uses alone for unsupervised hashing, to this supervised one; joint
    supervised and self-supervised training transfers better to new classes
    than supervised training alone [4]_. Views of images that share a label
    are not negatives (false-negative elimination [5]_, the labels telling
    which negatives are false): with them, the term also pushes a class apart
    and costs seen-class MAP. On classes held out of training (MLP on 28 x 28
    pixels, ``contrastive=1.0``, 3 seeds;
    ``benchmarks/results/protocols_four_contrastive.md``), unseen@all MAP
    rises from OrthoHash's 0.27 to 0.40 on MNIST-5k (ITQ: 0.31-0.37) with
    seen@seen 0.946-0.966; on Fashion-MNIST to 0.364 / 0.395 / 0.379 at 16 /
    32 / 64 bits (ITQ: 0.341 / 0.376 / 0.393) with seen@seen 0.816-0.855.
    The shifted views cost two more forward passes a batch.

    References
    ----------
    .. [1] J. T. Hoe, K. W. Ng, T. Zhang, C. S. Chan, Y.-Z. Song and T.
       Xiang, "One loss for all: Deep hashing with a single cosine similarity
       based learning objective", NeurIPS 2021.
    .. [2] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A simple
       framework for contrastive learning of visual representations", ICML
       2020.
    .. [3] Z. Qiu, Q. Su, Z. Ou, J. Yu and C. Chen, "Unsupervised hashing with
       contrastive information bottleneck", IJCAI 2021.
    .. [4] A. Islam, C.-F. Chen, R. Panda, L. Karlinsky, R. Radke and R.
       Feris, "A broad study on the transferability of visual representations
       with contrastive learning", ICCV 2021.
    .. [5] T. Huynh, S. Kornblith, M. R. Walter, M. Maire and M. Khademi,
       "Boosting contrastive self-supervised learning with false negative
       cancellation", WACV 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import OrthoHashHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> hasher = OrthoHashHasher(n_bits=16, max_epochs=2, random_state=0)
    >>> hasher.fit(X / 16, y).transform(X / 16).shape
    (1797, 2)
    """

    _added_parameters = (
        *BaseDeepHasher._added_parameters,
        "contrastive",
        "temperature",
        "max_shift",
    )

    _parameter_constraints = {
        **BaseDeepHasher._parameter_constraints,
        "scale": [Interval(Real, 0, None, closed="neither")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "quantization": [Interval(Real, 0, None, closed="left")],
        "codebook": [StrOptions({"bernoulli", "hadamard"})],
        "contrastive": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "max_shift": [Interval(Real, 0, 0.5, closed="both")],
    }

    def __init__(
        self,
        n_bits=32,
        *,
        scale=8.0,
        margin=0.2,
        quantization=0.0,
        codebook="bernoulli",
        contrastive=0.0,
        temperature=0.3,
        max_shift=0.15,
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
        self.contrastive = contrastive
        self.temperature = temperature
        self.max_shift = max_shift
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

    def _network(self, n_features=None):
        network = super()._network(n_features)
        if not self.contrastive:
            return network
        from ._contrastive import ShiftedViewsNetwork
        from ._modules import is_frozen

        if network.input_shape is None:
            raise ValueError(
                f"contrastive={self.contrastive} shifts images: fit images, or "
                "rows with input_shape=(C, H, W)."
            )
        if is_frozen(network.backbone):
            raise ValueError(
                f"contrastive={self.contrastive} needs a backbone that trains "
                "on the shifted views; this one is frozen."
            )
        pixels = round(self.max_shift * min(network.input_shape[1:]))
        return ShiftedViewsNetwork(
            network.backbone, network.head, network.input_shape, pixels
        )

    def _criterion(self):
        from ._pointwise import CosineMarginLoss

        loss = CosineMarginLoss(
            self.codebook_,
            scale=self.scale,
            margin=self.margin,
            quantization=self.quantization,
        )
        if not self.contrastive:
            return loss
        from ._contrastive import WithContrastive

        return WithContrastive(loss, self.contrastive, self.temperature)

    def _outputs_to_projection(self, v):
        return v
