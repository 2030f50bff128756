"""DSTH: deep self-taught hashing."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._supervision import indicator_matrix
from ..classical._sth import self_taught_bits
from ..utils._param_validation import Interval
from ._engine import BaseDeepHasher, deterministic_cudnn


class DSTHHasher(BaseDeepHasher):
    """Deep self-taught hashing: a network learns STH's graph codes.

    Hash labels come from STH's unsupervised step (k-nearest-neighbour graph,
    Laplacian eigenmap, then by default the eigenmap's rotation, or the
    paper's median thresholds) on features of the training data;
    a network (backbone, then one hidden layer of sigmoid units, then one
    output per bit) is trained to predict them, and encodes new data. Works
    without labels; with ``y``, the backbone is first trained to predict the
    labels and its features build the graph.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes; at most ``n_samples - 2``.
    n_neighbors : int, default=25
        Neighbours per sample in STH's graph.
    weights : {"heat", "cosine"}, default="heat"
        Edge weights of the graph (see :class:`STHHasher`).
    rotation : {"itq", None}, default="itq"
        How STH's eigenmap becomes hash labels: ``None`` thresholds each
        eigenvector at its median, as the paper [1]_ (and STH) do; ``"itq"``
        weights the eigenvectors and rotates them by ITQ's rotation, the
        spectral rotation of [2]_ (see :class:`STHHasher`).
    eigenvalue_power : float, default=0.75
        With ``rotation="itq"``, eigenvector ``j`` is scaled by
        ``lambda_j ** -eigenvalue_power`` before the rotation (see
        :class:`STHHasher`).
    n_hidden : int, default=256
        Sigmoid units of the hidden layer of the hash head.
    backbone, hidden_layer_sizes, input_shape, augmentation, preprocessing, \
num_workers, feature_cache, max_epochs, batch_size, lr, backbone_lr, optimizer, \
device, precision, channels_last, compile, accelerator, callbacks, verbose, \
random_state
        As in :class:`HashNetHasher`; ``max_epochs`` applies to the label
        pre-training and to the hash training alike.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained hash network and its training history.
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
    STHHasher : The same hash labels learned by linear SVMs.

    Notes
    -----
    No reference code exists. The graph is built on the raw input when ``y``
    is not given (or on a user-supplied backbone's features: pass a
    pre-trained module), and on the label-trained backbone's features when it
    is. The training loss, per-bit binary cross-entropy, is our choice; the
    paper does not specify one. Label pre-training uses a binary
    cross-entropy on the label indicator matrix, so single- and multi-label
    ``y`` are handled alike.

    ``rotation=None`` gives the paper's hash labels, whose later bits are
    high-frequency eigenvectors: MAP falls as bits are added (MNIST-5k, MLP
    backbone, 3 seeds: 0.442, 0.398, 0.328 at 16, 32, 64 bits). The default
    learns the rotated labels of :class:`STHHasher`'s default instead: 0.586,
    0.636, 0.637, above ITQ's 0.422, 0.444, 0.460
    (``benchmarks/results/sth_rotation.md``).

    References
    ----------
    .. [1] K. Zhou, Y. Liu, J. Song, L. Yan, F. Zou and F. Shen, "Deep
       self-taught hashing for image retrieval", ACM Multimedia 2015.
    .. [2] X. Li, D. Hu and F. Nie, "Large graph hashing with spectral
       rotation", AAAI 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import DSTHHasher
    >>> X, _ = load_digits(return_X_y=True)
    >>> DSTHHasher(n_bits=8, max_epochs=1, random_state=0).fit(X / 16).transform(
    ...     X / 16).shape
    (1797, 1)
    """

    # The targets are STH's codes of every sample: images are read whole.
    _targets_need_rows = True

    _parameter_constraints = {
        **BaseDeepHasher._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "weights": [StrOptions({"heat", "cosine"})],
        "rotation": [StrOptions({"itq"}), None],
        "eigenvalue_power": [Interval(Real, 0, None, closed="left")],
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
    }
    _min_samples = 3

    def _max_n_bits(self, n_samples, n_features):
        # Its hash labels are STH's graph eigenvectors (see STHHasher).
        return n_samples - 2

    _optional_y = True

    def __init__(
        self,
        n_bits=32,
        *,
        n_neighbors=25,
        weights="heat",
        rotation="itq",
        eigenvalue_power=0.75,
        n_hidden=256,
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
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.rotation = rotation
        self.eigenvalue_power = eigenvalue_power
        self.n_hidden = n_hidden
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

    def _head(self, in_features):
        from torch import nn

        return nn.Sequential(
            nn.Linear(in_features, self.n_hidden),
            nn.Sigmoid(),
            nn.Linear(self.n_hidden, self.n_bits),
        )

    def _criterion(self):
        from torch import nn

        return nn.BCEWithLogitsLoss()

    def _targets(self, X, y):
        features, backbone = X, None
        if y is not None:
            backbone, features = self._label_trained_features(X, indicator_matrix(y))
        elif not isinstance(self.backbone, str):
            # A copy of the user's module (the network trains a copy), fed
            # images as the network feeds it when input_shape is given.
            input_shape = self._check_input_shape(X.shape[1])
            backbone = self._backbone(X.shape[1], input_shape)
            features = self._features(backbone, X, input_shape)
        bits = self_taught_bits(
            features,
            self.n_bits,
            n_neighbors=self.n_neighbors,
            weights=self.weights,
            rotation=self.rotation,
            eigenvalue_power=self.eigenvalue_power,
            random_state=self.random_state,
        )
        # Set once the targets exist, so that a failed fit leaves no module
        # behind; _network takes it (the features' backbone, not a second copy).
        self._starting_backbone = backbone
        return bits.astype(np.float32)

    def _label_trained_features(self, X, labels):
        """Train backbone + linear classifier on the labels; return the
        trained backbone and its features."""
        from skorch import NeuralNet
        from torch import nn

        from ._modules import HashNetwork, output_width

        input_shape = self._check_input_shape(X.shape[1])
        backbone = super()._backbone(X.shape[1], input_shape)
        width = output_width(backbone, X.shape[1], input_shape)
        classifier = NeuralNet(
            module=HashNetwork(
                backbone, nn.Linear(width, labels.shape[1]), input_shape
            ),
            criterion=nn.BCEWithLogitsLoss(),
            optimizer=self._optimizer_class(),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            device=self.device_,
            verbose=int(self.verbose),
            iterator_train__shuffle=True,
        )
        with deterministic_cudnn():
            classifier.fit(X, labels)
        backbone = classifier.module_.backbone
        return backbone, self._features(backbone, X, input_shape)

    def _features(self, backbone, X, input_shape=None):
        import torch

        backbone.eval()
        with torch.no_grad():
            inputs = torch.as_tensor(X)
            if input_shape is not None:
                inputs = inputs.view(len(X), *input_shape)
            parameters = list(backbone.parameters())
            if parameters:
                inputs = inputs.to(parameters[0].device)
            return backbone(inputs).reshape(len(X), -1).cpu().numpy()

    def _backbone(self, n_features, input_shape):
        # The backbone whose features built the graph (label-trained, or the
        # copy of a user's module), once: the hash network starts from it.
        starting = self.__dict__.pop("_starting_backbone", None)
        if starting is not None:
            return starting
        return super()._backbone(n_features, input_shape)

    def _outputs_to_projection(self, logits):
        return logits  # bit = sigmoid(logit) >= 0.5
