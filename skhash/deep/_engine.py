"""The shared machinery of the deep hashers: a skorch net inside an estimator.

A deep hasher is a scikit-learn estimator (it passes the common checks) that
composes a skorch ``NeuralNet`` as ``net_``; skorch runs the training loop,
devices, callbacks and the epoch table. The loss of every method takes the
network outputs and the batch's labels, so pairs and triplets are formed inside
each mini-batch by the loss itself and skorch's own ``get_loss`` serves as is.
torch and skorch (the ``skhash[deep]`` extra) are imported only when a deep
hasher is fitted or loaded.

Saved state (pickle, joblib, skops): the trained network is kept as NumPy
arrays of its ``state_dict`` and rebuilt from the hasher's parameters on load,
so a file holds no torch object, loads on a CPU-only machine whatever device
trained it, and skops reads it trusting only skhash's own types.

Images: file paths, uint8 arrays and memory maps of them are read a
mini-batch at a time by a torch ``DataLoader`` (:mod:`._inputs`,
:mod:`._images`), never held whole; ``augmentation`` and ``preprocessing``
transform each image on the way. A frozen backbone's features can be kept
on disk per image and read by later fits (``feature_cache``,
:mod:`._feature_cache`).

Data-parallel training: given an ``accelerator`` (Hugging Face Accelerate),
the net is skorch's accelerated net, each process trains on its shard of every
epoch's mini-batches and DistributedDataParallel keeps the replicas equal;
after training the hasher keeps the unwrapped network in a plain net, so it
encodes, pickles and loads like any other.

Device settings (``precision``, ``channels_last``, ``compile``) change how
the network computes, never what it holds: it keeps float32 weights, which
are what is saved and exported (:mod:`._net`).
"""

import copy
import copyreg
import inspect
import math
import os
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, StrOptions

from .._supervision import indicator_matrix
from ..base import BaseHasher
from ..utils._param_validation import Interval
from ..utils._torch import loading_device, resolve_device
from . import _transforms
from ._inputs import ImageInputMixin
from ._requires import require_deep

_OPTIMIZERS = {"adam": "Adam", "sgd": "SGD"}
_PRECISIONS = ("float32", "bfloat16", "float16")  # as torch names the dtypes


def _module_arrays(module):
    """A module's ``state_dict`` (parameters and buffers) as NumPy arrays."""
    import torch

    # A data-parallel wrapper would prefix every name with "module.".
    while isinstance(
        module,
        (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel),
    ):
        module = module.module
    arrays = {}
    for name, value in module.state_dict().items():
        if isinstance(value, torch.Tensor):
            # Contiguous: a channels-last weight is saved as any other.
            value = value.detach().to("cpu", copy=True).contiguous()
            if value.dtype == torch.bfloat16:
                # NumPy has no bfloat16; load_state_dict casts back exactly.
                value = value.float()
            value = value.numpy()
        arrays[name] = value
    return arrays


def _module_on_cpu(module):
    """The module, or a CPU copy of it when some of its tensors live elsewhere:
    pickled CUDA tensors do not load without CUDA."""
    tensors = [*module.parameters(), *module.buffers()]
    if all(tensor.device.type == "cpu" for tensor in tensors):
        return module
    return copy.deepcopy(module).to("cpu")


@contextmanager
def deterministic_cudnn():
    """Have cuDNN pick deterministic kernels while training, then restore its
    settings: with its fastest kernels the same seed gives different codes."""
    from torch.backends import cudnn

    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


def _check_same_seed(accelerator, seed):
    """Refuse a data-parallel fit whose processes drew different seeds: the
    replicas would start from different weights, shuffles and codebooks."""
    import torch

    if getattr(accelerator, "num_processes", 1) < 2:
        return
    seeds = accelerator.gather(torch.tensor([seed], device=accelerator.device))
    if len(set(seeds.tolist())) > 1:
        raise ValueError(
            "A data-parallel fit needs random_state set to the same int on every "
            "process; the processes drew different seeds (random_state=None?)."
        )


class BaseDeepHasher(ImageInputMixin, BaseHasher):
    """Base of the deep hashers: backbone choice, training parameters, skorch.

    Subclasses write ``_criterion()`` (the loss module) and
    ``_outputs_to_projection`` (network outputs -> values whose sign is the
    bit), and may override ``_head(in_features)`` (default: a linear layer to
    ``n_bits`` units), ``_targets(X, y)`` (what the loss gets besides the
    outputs; default: the label indicator matrix) and ``_schedules()``
    (callbacks changing the loss during training).

    Inputs (``fit`` and ``transform``, from :class:`._inputs.ImageInputMixin`):
    2-D float rows (flattened images when ``input_shape`` is given), a 1-D
    array-like of image file paths, or a 4-D uint8 array of images. Rows
    without ``augmentation`` or ``preprocessing`` train from memory, as they
    always did; anything else streams through a torch ``DataLoader``, a
    mini-batch at a time, and ``_fit`` gets a source of :mod:`._images`
    instead of an array (``_targets`` then gets ``X=None`` unless the hasher
    sets ``_targets_need_rows``: it gets every sample flattened, in memory).

    Saving: pickle, joblib and skops (:mod:`skhash.persistence`) store the
    trained network as NumPy arrays (its ``state_dict``) with the training
    history, and loading rebuilds ``net_`` from the hasher's parameters: with
    ``device="auto"`` on CUDA when the loading machine has it, otherwise on
    the training device, or on the CPU where CUDA is not available.
    ``transform`` gives the same codes after a round trip on the same device
    (another device may round an output near zero to the other sign); the
    optimiser's state and the loss's scheduled values are not kept (``fit``
    always trains from scratch), nor is the ``accelerator``, which belongs to
    the training run: a loaded (or deep-copied) hasher has
    ``accelerator=None``.
    A user-supplied ``torch.nn.Module`` backbone cannot be rebuilt from
    parameters: such a hasher is saved with pickle or joblib, and skops
    refuses it with a ``TypeError``; so are an ``augmentation`` or a
    ``preprocessing`` other than skhash's transforms (:mod:`._transforms`),
    which skops files hold as data.
    """

    # Parameters added after the first release: a file saved before them
    # loads with their defaults. A hasher adds its own.
    _added_parameters = (
        "augmentation",
        "preprocessing",
        "num_workers",
        "feature_cache",
        "backbone_lr",
        "precision",
        "channels_last",
        "compile",
    )

    _parameter_constraints = {
        **BaseHasher._parameter_constraints,
        "backbone": [StrOptions({"auto", "mlp", "cnn"}), HasMethods(["forward"])],
        "hidden_layer_sizes": ["array-like"],
        "input_shape": ["array-like", None],
        **ImageInputMixin._image_parameter_constraints,
        "feature_cache": [str, os.PathLike, None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr": [Interval(Real, 0, None, closed="neither"), None],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), callable],
        "device": [str],
        "precision": [StrOptions(set(_PRECISIONS))],
        "channels_last": ["boolean"],
        "compile": ["boolean"],
        # What skorch's AccelerateMixin and fit call: an accelerate.Accelerator.
        "accelerator": [
            HasMethods(
                ["prepare", "backward", "accumulate", "autocast", "gather"]
                + ["unwrap_model", "wait_for_everyone"]
            ),
            None,
        ],
        "callbacks": [list, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _check_input_shape(self, n_features):
        # In a streamed fit, the network's input shape (what DSTH asks for
        # with the samples' width).
        fitted = self.__dict__.get("_streaming_shape")
        if fitted is not None and len(fitted) == 3 and math.prod(fitted) == n_features:
            return tuple(fitted)
        if self.input_shape is None:
            return None
        shape = tuple(int(size) for size in self.input_shape)
        if len(shape) != 3 or min(shape) < 1 or np.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={self.input_shape!r} must be (channels, height, width) "
                f"with channels * height * width = n_features = {n_features}."
            )
        return shape

    def _backbone(self, n_features, input_shape):
        from ._modules import MLP, SmallConvNet

        if not isinstance(self.backbone, str):
            # The user's module is a parameter: training it in place (or moving
            # it to the device) would change it, and a second fit would start
            # from the first one's weights. The network gets its own copy, also
            # of a frozen backbone, so that the fitted hasher never changes
            # with the module the user goes on using.
            return copy.deepcopy(self.backbone)
        kind = self.backbone
        if kind == "auto":
            kind = "mlp" if input_shape is None else "cnn"
        if kind == "cnn":
            if input_shape is None:
                raise ValueError('backbone="cnn" needs input_shape=(C, H, W).')
            return SmallConvNet(input_shape[0])
        mlp = MLP(n_features, self.hidden_layer_sizes)
        if input_shape is not None:
            from torch import nn

            mlp.insert(0, nn.Flatten())  # the network hands it images
        return mlp

    def _network(self, n_features=None):
        from ._modules import HashNetwork, output_width

        shape = self._sample_shape() if n_features is None else None
        if shape is not None:
            n_features = math.prod(shape)
            input_shape = shape if len(shape) == 3 else None
        else:
            input_shape = self._check_input_shape(n_features)
        backbone = self._backbone(n_features, input_shape)
        width = output_width(backbone, n_features, input_shape)
        return HashNetwork(backbone, self._head(width), input_shape)

    def _fit(self, X, y):
        """Train on rows in memory (an ndarray) or a streamed source."""
        torch = require_deep(f"{type(self).__name__}.fit")
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        accelerator = self.accelerator
        if accelerator is not None:
            _check_same_seed(accelerator, seed)
        torch.manual_seed(seed)
        streamed = not isinstance(X, np.ndarray)
        if streamed:
            rows = None
            if self._targets_need_rows:
                from ._images import stacked_rows

                rows = stacked_rows(self._streamed(X, training=False), self.batch_size)
        else:
            X = rows = X.astype(np.float32)
        if accelerator is None:
            self.device_ = resolve_device(self.device)
        else:
            self._check_accelerated_settings()
            self.device_ = str(accelerator.device)
        self._check_precision()
        targets = self._targets(rows, y)
        self.net_ = self._skorch_net(
            self._network(), self.device_, accelerator=accelerator
        )
        with deterministic_cudnn():
            # skorch's fit is initialize() then partial_fit().
            self.net_.initialize()
            self._train(X, targets)
        if accelerator is not None:
            self.net_ = self._plain_net(self.net_)
        return self

    def _check_accelerated_settings(self):
        """Refuse what an ``accelerator`` does itself: two mixed-precision
        (or compiling) mechanisms would wrap one another."""
        if self.precision != "float32":
            short = {"bfloat16": "bf16", "float16": "fp16"}[self.precision]
            raise ValueError(
                f"precision={self.precision!r} with an accelerator: mixed "
                "precision is then the Accelerator's own; create it with "
                f"Accelerator(mixed_precision={short!r}) and leave "
                "precision='float32'."
            )
        if self.compile:
            raise ValueError(
                "compile=True with an accelerator: compiling is then the "
                "Accelerator's own; create it with "
                "Accelerator(dynamo_backend='inductor') and leave compile=False."
            )

    def _check_precision(self):
        """Refuse, before training, a precision that the device's autocast
        does not run (torch would warn and compute in float32)."""
        if self.precision == "float32":
            return
        import torch

        from ._net import autocast

        autocast(torch.device(self.device_).type, self.precision)

    def _plain_net(self, trained):
        """The trained network and loss, unwrapped by skorch at the end of
        training, in a plain net: it encodes in this process alone."""
        net = self._skorch_net(
            trained.module_, self.device_, criterion=trained.criterion_
        ).initialize()
        net.history_ = trained.history_
        return net

    def _train(self, X, targets):
        """Train ``net_`` on rows in memory or a streamed source; a frozen
        backbone (no parameter requiring a gradient) without augmentation
        runs once over the samples, in eval mode, and only the head trains on
        its features: the same model, epochs cheaper by the backbone's cost.
        """
        from ._modules import is_frozen

        network = self.net_.module  # the instance, whatever wraps module_
        streamed = not isinstance(X, np.ndarray)
        augmented = streamed and self.augmentation is not None
        if augmented or not is_frozen(network.backbone):
            if self.feature_cache is not None:
                from ._feature_cache import warn_unused

                warn_unused(
                    self,
                    "the backbone runs on augmented images"
                    if augmented
                    else "the backbone is not frozen (it has parameters that "
                    "train, or none)",
                )
            if streamed:
                X = self._streamed(X, training=True, targets=targets)
                targets = None
            self.net_.partial_fit(X, targets)
            return
        features = self._frozen_features(network, X, streamed)
        network.takes_features = True
        try:
            self.net_.partial_fit(features, targets)
        finally:
            network.takes_features = False

    def _frozen_features(self, network, X, streamed):
        """The frozen backbone's features of the training samples, computed
        once (eval mode), or read from ``feature_cache`` where it has them."""
        from ._feature_cache import open_cache
        from ._images import Rows
        from ._modules import output_width
        from ._net import EncodingBackbone
        from ._pretrained import extract_features

        backbone = network.backbone
        if self.precision != "float32" or self.channels_last:
            # Run as the network runs it; the settings also tell the cache's
            # features apart. Not compiled: it runs once over the samples.
            backbone = EncodingBackbone(
                backbone, precision=self.precision, channels_last=self.channels_last
            )
        cache = open_cache(self, backbone)
        if cache is None:
            if streamed:
                X = self._streamed(X, training=False)
            return extract_features(
                backbone,
                X,
                input_shape=network.input_shape,
                device=self.device_,
            )
        return cache.features(
            X if streamed else Rows(X, network.input_shape),
            lambda subset: extract_features(
                backbone,
                self._streamed(subset, training=False),
                device=self.device_,
            ),
            output_width(
                network.backbone,
                math.prod(self._sample_shape()),
                network.input_shape,
            ),
        )

    def _skorch_net(self, module, device, *, criterion=None, accelerator=None):
        from skorch.callbacks import ProgressBar

        from ._net import _AcceleratedHashingNet, _HashingNet

        callbacks = list(self._schedules())
        if self.verbose:
            callbacks.append(("progress", ProgressBar()))
        callbacks += list(self.callbacks or [])
        Net, options = _HashingNet, {"device": device}
        options |= {
            "precision": self.precision,
            "channels_last": self.channels_last,
            "compile_network": self.compile,
        }
        if accelerator is not None:
            # The accelerator places the network and the batches, unless told
            # not to; each process then uses its own device.
            Net = _AcceleratedHashingNet
            # skorch prints the epoch table through accelerator.print (the
            # main process only) whatever the verbosity: only when verbose.
            sink = getattr(accelerator, "print", print) if self.verbose else print
            options |= {
                "accelerator": accelerator,
                "device": None if accelerator.device_placement else device,
                "callbacks__print_log__sink": sink,
            }
        if device is not None and device.startswith("cuda"):
            # Page-locked batches copy to the GPU faster (streamed images pin
            # theirs in :mod:`._images` once CUDA is in use).
            options |= {
                "iterator_train__pin_memory": True,
                "iterator_valid__pin_memory": True,
            }
        if self.backbone_lr is not None:
            # skorch's parameter groups, by name: the network's "backbone.*".
            options["optimizer__param_groups"] = [
                ("backbone.*", {"lr": self.backbone_lr})
            ]
        return Net(
            module=module,
            criterion=self._criterion() if criterion is None else criterion,
            optimizer=self._optimizer_class(),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=callbacks,
            verbose=int(self.verbose),
            iterator_train__shuffle=True,
            **options,
        )

    def _head(self, in_features):
        from torch import nn

        return nn.Linear(in_features, self.n_bits)

    def _targets(self, X, y):
        return indicator_matrix(y)

    def _optimizer_class(self):
        import torch

        if isinstance(self.optimizer, str):
            return getattr(torch.optim, _OPTIMIZERS[self.optimizer])
        return self.optimizer

    def __sklearn_is_fitted__(self):
        # Fitted means trained: a fit that failed after validating X (torch
        # missing, say) leaves n_features_in_ but no network to encode with.
        return hasattr(self, "net_")

    def _project(self, X):
        outputs = self.net_.forward(X.astype(np.float32), training=False)
        return self._outputs_to_projection(outputs.cpu().numpy())

    def _schedules(self):
        return []

    def _check_exportable(self):
        """Refuse an ONNX export that would leave out the ``preprocessing``
        (the model is the network alone; ``augmentation``, used only in
        training, changes nothing in it)."""
        if self.preprocessing is not None:
            raise TypeError(
                f"to_onnx exports {type(self).__name__}'s network alone, which "
                f"takes rows of n_features_in_={self.n_features_in_} values: its "
                f"preprocessing ({self.preprocessing!r}) would not be in the "
                "model. Export a hasher without preprocessing, and preprocess "
                "its inputs before the model."
            )

    def __getstate__(self):
        # What skops reads: it may hold no torch object, so a user-supplied
        # module, which only pickle can rebuild, is refused here, and so are
        # transforms other than skhash's (saved as their names and values).
        if not isinstance(self.backbone, str):
            raise TypeError(
                f"{type(self).__name__} with a torch.nn.Module as backbone can be "
                "saved with pickle or joblib only (load such files only from "
                "sources you trust): a user-supplied module cannot be rebuilt "
                "from parameters."
            )
        state = self._saved_state()
        if isinstance(state.get("feature_cache"), os.PathLike):
            # A path as the str it names: skops files hold no pathlib object.
            state["feature_cache"] = os.fspath(state["feature_cache"])
        for name in ("augmentation", "preprocessing"):
            value = state.get(name)
            if value is None:
                continue
            if not _transforms.is_saved_transform(value):
                raise TypeError(
                    f"{type(self).__name__} with a {name} other than skhash's "
                    f"transforms ({value!r}) can be saved with pickle or joblib "
                    "only (load such files only from sources you trust): skops "
                    "files hold skhash.deep's transforms (Compose, Resize, "
                    "CenterCrop, ...) as data, not code."
                )
            state[name] = _transforms.transform_state(value)
        return state

    def __reduce_ex__(self, protocol):
        # pickle, joblib and copy come here instead of __getstate__; unlike
        # skops they can carry a user-supplied backbone module.
        state = self._saved_state()
        if not isinstance(self.backbone, str):
            state["backbone"] = _module_on_cpu(self.backbone)
        return copyreg.__newobj__, (type(self),), state

    def _saved_state(self):
        state = dict(super().__getstate__())  # a copy: never mutate the live object
        if state.get("accelerator") is not None:
            state["accelerator"] = None  # a handle on the training run's processes
        net = state.pop("net_", None)
        if net is not None:
            state["_net_weights"] = _module_arrays(net.module_)
            state["_net_history"] = list(net.history_)
        return state

    def __setstate__(self, state):
        state = dict(state)
        weights = state.pop("_net_weights", None)
        history = state.pop("_net_history", [])
        for name in ("augmentation", "preprocessing"):
            if _transforms.is_transform_state(state.get(name)):
                state[name] = _transforms.transform_from_state(state[name])
        defaults = inspect.signature(type(self).__init__).parameters
        added = {name: defaults[name].default for name in self._added_parameters}
        state = {**added, **state}
        super().__setstate__(state)
        if weights is not None:
            self.net_ = self._restored_net(weights, history)

    def _restored_net(self, weights, history):
        torch = require_deep(f"Loading a fitted {type(self).__name__}")
        from skorch.history import History

        # The parameters come from a file: they pass fit's checks before any
        # network is built from them.
        self._validate_params()
        # The network's fresh initial weights are overwritten at once; drawing
        # them must not move the caller's torch seed.
        with torch.random.fork_rng(devices=[]):
            module = self._network()
        device = loading_device(self.device, self.device_)
        net = self._skorch_net(module, device).initialize()
        try:
            net.module_.load_state_dict(
                {
                    name: torch.from_numpy(np.array(value))
                    if isinstance(value, np.ndarray)
                    else value
                    for name, value in weights.items()
                }
            )
        except RuntimeError as error:
            raise ValueError(
                "The saved weights do not fit the network that this "
                f"{type(self).__name__}'s parameters build; were its parameters "
                "changed after fit?"
            ) from error
        net.history_ = History(history)
        return net
