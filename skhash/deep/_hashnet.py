"""HashNet: deep hashing by continuation."""

from numbers import Integral, Real

from ..base import SupervisedHasherMixin
from ..utils._param_validation import Interval
from ._engine import BaseDeepHasher


class HashNetHasher(SupervisedHasherMixin, BaseDeepHasher):
    """HashNet: a network trained through ``tanh(beta z)`` with growing beta.

    A backbone and a linear hash layer give ``z`` (``n_bits`` units); training
    uses ``h = tanh(beta z)`` with a weighted pairwise cross-entropy between
    the pairs of each mini-batch, and ``beta`` grows by continuation so ``h``
    approaches ``sign(z)``, the code used after training.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.
    alpha : float, default=None
        Scale of the inner products in the pairwise sigmoid; ``None`` means
        ``10 / n_bits`` (the official code).
    gamma : float, default=0.005
        Continuation: ``beta = (1 + gamma * t) ** power`` after ``t`` iterations.
    power : float, default=0.5
        Exponent of the continuation.
    step_size : int, default=200
        Iterations between two updates of ``beta``.
    backbone : {"auto", "mlp", "cnn"} or torch.nn.Module, default="auto"
        Feature network: an MLP for feature vectors (``"auto"`` without
        ``input_shape``), DSH's small convolutional network for images
        (``"auto"`` with ``input_shape``), or any module mapping a batch to
        features. ``fit`` trains a copy of the module, never the module
        itself: the trained one is ``net_.module_.backbone``.
    hidden_layer_sizes : tuple of int, default=(256,)
        Layers of the MLP backbone.
    input_shape : tuple (channels, height, width), default=None
        Shape of each image when rows of ``X`` are flattened images.
    augmentation : callable, default=None
        Applied in training only, in place of ``preprocessing``, to each
        image as a float tensor of shape (channels, height, width) with
        values in [0, 1] (to each row, a 1-D tensor, when the rows are no
        images): random crops and flips, e.g.
        :func:`skhash.deep.imagenet_augmentation`, or torchvision's v2
        transforms. Its random draws are seeded from ``random_state``, the
        epoch and the image's index, so the same seed gives the same codes
        whatever ``num_workers``. It must give images of the shape that
        ``preprocessing`` gives.
    preprocessing : callable, default=None
        Applied to each image (or row) as ``augmentation`` is, when encoding,
        and in training when ``augmentation`` is None: e.g. resizing images of
        different sizes to one, :func:`skhash.deep.imagenet_preprocessing`
        for pretrained backbones. ``None``: the images as they are.
    num_workers : int, default=0
        Worker processes of the torch ``DataLoader`` that read, decode and
        transform the images of each mini-batch; 0 reads them in the calling
        process.
    feature_cache : str or os.PathLike, default=None
        Directory (created when missing) where a frozen backbone's features
        are kept, one row per image, for later fits to read: the folds and
        candidates of a grid search, subsets of one collection, then compute
        each image's features once. An image is known by its file (resolved
        path, size and modification time) or by its bytes (a row of an image
        array or of float rows); the features by what determines them: the
        backbone (its modules' classes and settings, its weights), the
        ``preprocessing``, the shape the network takes, the device type and
        the torch and skhash versions, each such model in its own folder,
        never mixed. Not the code of your modules and functions: after
        changing it, use a new directory. A damaged cache file is removed
        with a warning and its features computed again. Used when the
        backbone has no trainable parameter and ``augmentation`` is None
        (where features are computed once per fit); otherwise ``fit`` warns
        and trains as without it. ``transform`` always runs the backbone.
        ``None``: no cache.
    max_epochs : int, default=10
        Passes over the training data.
    batch_size : int, default=64
        Mini-batch size; pairs are formed inside each mini-batch.
    lr : float, default=1e-3
        Learning rate.
    backbone_lr : float, default=None
        Learning rate of the backbone's parameters, where it differs from the
        head's (``lr``): the papers fine-tune a pretrained backbone at a tenth
        of the new hash layer's rate (``lr=1e-3, backbone_lr=1e-4``).
        ``None``: ``lr`` for every parameter.
    optimizer : {"adam", "sgd"} or torch optimizer class, default="adam"
        Optimiser.
    device : str, default="auto"
        Torch device; ``"auto"`` is CUDA when available, else the CPU.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Arithmetic of the network: ``"bfloat16"`` and ``"float16"`` run its
        forward passes and the loss under ``torch.autocast`` (automatic mixed
        precision: matrix products and convolutions in 16 bits), in training
        and in encoding (``transform``, and a frozen backbone's features);
        ``"float16"`` scales the loss with ``torch.amp.GradScaler``, which
        skips the steps whose gradients overflow. The weights stay float32
        (what is saved, and what ``to_onnx`` exports: a model computing in
        float32), and the codes are the signs of the outputs cast up to
        float32, so they differ from float32's only where an output is near
        zero. Meant for GPUs with 16-bit tensor cores. On the CPU, bfloat16
        pays off for large networks on processors with native bfloat16
        (AMX, AVX-512 BF16) and float16 is many times slower than float32
        (the user guide has the measurements). A device whose autocast does
        not run the precision is refused with a ``ValueError``. With an
        ``accelerator``, use its own ``Accelerator(mixed_precision="bf16")``
        instead.
    channels_last : bool, default=False
        Keep the convolution weights and the batches of images in torch's
        channels-last memory format (NHWC), which cuDNN's tensor-core
        kernels (and oneDNN on recent CPUs) prefer; the same values, in
        another layout. No effect on networks of 2-D feature rows (the MLP
        backbone) nor on linear layers.
    compile : bool, default=False
        Run the network through ``torch.compile`` in training and encoding
        (not a frozen backbone's features, computed once). The first batches
        pay the compilation (seconds to minutes); it needs a C++ compiler on
        the CPU and Triton on CUDA, and ``fit`` raises a ``RuntimeError``
        saying so where they are missing. ``net_.module_`` stays the
        uncompiled network, which is what is saved and exported. With an
        ``accelerator``, use its own ``Accelerator(dynamo_backend="inductor")``
        instead.
    accelerator : accelerate.Accelerator, default=None
        Trains data-parallel on the processes and devices of a Hugging Face
        Accelerate ``Accelerator`` (several GPUs or machines; the script is
        launched with ``accelerate launch`` or ``torchrun``): each process
        trains on its share of every epoch's mini-batches, and ``device`` is
        ignored. ``random_state`` must be the same int on every process. The
        trained hasher encodes in one process, like any other; the
        accelerator is not saved with it (see the user guide, "Scaling out").
    callbacks : list of skorch callbacks, default=None
        Extra callbacks, e.g. ``skorch.callbacks.EpochScoring`` or
        ``LRScheduler``.
    verbose : int, default=0
        ``1`` prints skorch's epoch table and a progress bar in ``fit``, and
        a progress bar of the images (paths or image arrays, read a batch at
        a time) that ``transform`` has encoded, on stderr.
    random_state : int, RandomState instance or None, default=None
        Seed of the weights and of the shuffling: the same seed on the same
        device gives the same codes.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network and its training history (``net_.history``).
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
    DSHHasher : Pairwise contrastive loss on real-valued outputs.

    Notes
    -----
    Follows the official PyTorch code for the continuation (``beta``
    recomputed every ``step_size`` iterations, not per epoch as in
    DeepHash-pytorch) and for ``alpha = 10 / n_bits``, and the paper for the
    weights: ``|S| / |S_1|`` on similar and ``|S| / |S_0|`` on dissimilar pairs
    (the official code weights positives by a per-dataset constant). The loss
    is computed with ``softplus``, exact for large inner products.

    References
    ----------
    .. [1] Z. Cao, M. Long, J. Wang and P. S. Yu, "HashNet: Deep learning to
       hash by continuation", ICCV 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import HashNetHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> hasher = HashNetHasher(n_bits=16, max_epochs=2, random_state=0)
    >>> hasher.fit(X / 16, y).transform(X / 16).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **BaseDeepHasher._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "power": [Interval(Real, 0, None, closed="left")],
        "step_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_bits=32,
        *,
        alpha=None,
        gamma=0.005,
        power=0.5,
        step_size=200,
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
        self.alpha = alpha
        self.gamma = gamma
        self.power = power
        self.step_size = step_size
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

    def _criterion(self):
        from ._losses import WeightedPairwiseCrossEntropy

        alpha = 10 / self.n_bits if self.alpha is None else self.alpha
        return WeightedPairwiseCrossEntropy(alpha=alpha)

    def _schedules(self):
        from ._callbacks import BetaContinuation

        return [("beta", BetaContinuation(self.gamma, self.power, self.step_size))]

    def _outputs_to_projection(self, z):
        return z  # sign(z): the limit of tanh(beta z)
