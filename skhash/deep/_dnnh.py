"""DNNH: deep neural network hashing with triplets and divide-and-encode."""

from numbers import Integral, Real

from sklearn.utils._param_validation import StrOptions

from ..base import SupervisedHasherMixin
from ..utils._param_validation import Interval
from ._engine import BaseDeepHasher


class DNNHHasher(SupervisedHasherMixin, BaseDeepHasher):
    """Deep neural network hashing: triplet ranking with divide-and-encode.

    A shared network maps each image to features that are split into
    ``n_bits`` slices; each slice is encoded into one bit by its own
    ``fc(slice -> 1)`` and a sigmoid, then a piece-wise threshold of width
    ``epsilon`` pushes values to 0 or 1. Training ranks, for every (anchor,
    similar, dissimilar) triplet of a mini-batch, the similar item closer by a
    ``margin``. The code is ``output >= 0.5``.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.
    margin : float, default=1.0
        Margin of the triplet ranking loss (the paper; a Caffe port uses 2).
    epsilon : float, default=0.5
        Initial half-width of the piece-wise threshold's linear part.
    epsilon_decay : float, default=0.8
        Factor applied to ``epsilon`` every ``epsilon_step`` iterations.
    epsilon_step : int, default=20000
        Iterations between two decays (the paper: 20,000).
    head : {"divide_encode", "fc"}, default="divide_encode"
        Divide-and-encode, or the paper's ablation: one fully connected layer
        and a sigmoid.
    slice_size : int, default=50
        Features per bit in divide-and-encode (the paper: 50).
    backbone : {"auto", "mlp", "cnn", "nin"} or torch.nn.Module, default="auto"
        ``"auto"`` is the paper's Network-in-Network for images (with
        ``input_shape``), whose last convolution has ``slice_size * n_bits``
        maps, and an MLP for feature vectors.
    hidden_layer_sizes, input_shape, augmentation, preprocessing, num_workers, \
feature_cache, max_epochs, batch_size, lr, backbone_lr, optimizer, device, precision, \
channels_last, compile, accelerator, callbacks, verbose, random_state
        As in :class:`HashNetHasher`.

    Attributes
    ----------
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
    HashNetHasher, DSHHasher : Pairwise deep hashers.

    Notes
    -----
    No reference code gives ``epsilon``; the default 0.5 with a 20% decay every
    20,000 iterations follows the paper's text and is our choice of
    parameters. Backbones other than Network-in-Network get a linear layer to
    ``slice_size * n_bits`` features before divide-and-encode. Triplets are
    every valid (anchor, positive, negative) of each mini-batch.

    The features entering the encoding layer are centred over the batch (a
    running mean at inference) and the slices' biases start at zero, which
    neither the paper nor its ports do. Without it, bits came out constant:
    the features are non-negative (ReLU or pooled ReLU maps), so each
    slice's projection has an offset (and a random initial bias) that can
    outweigh its spread over the data; such a bit is the same for every input
    from the start, the sigmoid saturates as the features grow, and its
    gradient vanishes (a constant bit does not change the triplet loss). On
    MNIST (2,000 labels, 32 bits, 20 epochs of the MLP backbone) 2 of 4 seeds
    left a bit constant on the database; with centring none did, every bit
    was set for 31% to 76% of the items, and MAP was unchanged (0.883 on
    average over the seeds, against 0.884).

    References
    ----------
    .. [1] H. Lai, Y. Pan, Y. Liu and S. Yan, "Simultaneous feature learning
       and hash coding with deep neural networks", CVPR 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import DNNHHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> DNNHHasher(n_bits=8, max_epochs=1, random_state=0).fit(X / 16, y).transform(
    ...     X / 16).shape
    (1797, 1)
    """

    _parameter_constraints = {
        **BaseDeepHasher._parameter_constraints,
        "margin": [Interval(Real, 0, None, closed="neither")],
        "epsilon": [Interval(Real, 0, 0.5, closed="both")],
        "epsilon_decay": [Interval(Real, 0, 1, closed="right")],
        "epsilon_step": [Interval(Integral, 1, None, closed="left")],
        "head": [StrOptions({"divide_encode", "fc"})],
        "slice_size": [Interval(Integral, 1, None, closed="left")],
        "backbone": [
            StrOptions({"auto", "mlp", "cnn", "nin"}),
            *BaseDeepHasher._parameter_constraints["backbone"][1:],
        ],
    }

    def __init__(
        self,
        n_bits=32,
        *,
        margin=1.0,
        epsilon=0.5,
        epsilon_decay=0.8,
        epsilon_step=20000,
        head="divide_encode",
        slice_size=50,
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
        self.margin = margin
        self.epsilon = epsilon
        self.epsilon_decay = epsilon_decay
        self.epsilon_step = epsilon_step
        self.head = head
        self.slice_size = slice_size
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

    def _backbone(self, n_features, input_shape):
        from ._modules import NetworkInNetwork

        wants_nin = self.backbone == "nin" or (
            self.backbone == "auto" and input_shape is not None
        )
        if not wants_nin:
            return super()._backbone(n_features, input_shape)
        if input_shape is None:
            raise ValueError('backbone="nin" needs input_shape=(C, H, W).')
        return NetworkInNetwork(input_shape[0], self.slice_size * self.n_bits)

    def _head(self, in_features):
        from torch import nn

        from ._centring import BatchCentring
        from ._modules import DivideAndEncode

        if self.head == "fc":
            return nn.Sequential(
                BatchCentring(in_features),
                nn.Linear(in_features, self.n_bits),
                nn.Sigmoid(),
            )
        width = self.slice_size * self.n_bits
        # Centred slices and no initial offset: see the Notes on constant bits.
        divide = DivideAndEncode(width, self.n_bits)
        nn.init.zeros_(divide.bias)
        encode = nn.Sequential(BatchCentring(width), divide)
        if in_features == width:
            return encode
        return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), encode)

    def _criterion(self):
        from ._losses import TripletRankingLoss

        return TripletRankingLoss(margin=self.margin, epsilon=self.epsilon)

    def _schedules(self):
        from ._callbacks import EpsilonDecay

        decay = EpsilonDecay(self.epsilon, self.epsilon_decay, self.epsilon_step)
        return [("epsilon", decay)]

    def _outputs_to_projection(self, s):
        return s - 0.5
