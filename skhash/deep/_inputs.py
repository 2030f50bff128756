"""What the deep hashers take as ``X``: feature rows, or images streamed.

:class:`ImageInputMixin` gives :class:`~skhash.deep._engine.BaseDeepHasher`
its ``fit`` and ``transform``: 2-D float rows without ``augmentation`` or
``preprocessing`` go the way of every hasher (scikit-learn's validation, then
training from memory); image files, uint8 image arrays (memory maps
included) and transformed rows stream through a torch ``DataLoader`` a
mini-batch at a time (:mod:`._images`). It also gives every deep hasher the
parameters ``augmentation``, ``preprocessing`` and ``num_workers``, and their
documentation, without each hasher's module repeating them. Imports neither
torch nor Pillow until a hasher fits or encodes.
"""

import math
from numbers import Integral

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._supervision import check_supervision
from ..codes import n_bytes_for, pack_codes
from ..utils._param_validation import Interval
from ._requires import require_deep


class ImageInputMixin:
    """``fit`` and ``transform`` of the deep hashers over rows or images.

    The hasher provides ``_fit(X, y)`` (``X``: float rows in memory, or a
    source of :mod:`._images`), ``_check_input_shape``, ``net_`` and
    ``_outputs_to_projection``; ``_targets`` gets ``X=None`` in a streamed
    fit unless the hasher sets ``_targets_need_rows``, and then every sample
    flattened, in memory.
    """

    _image_parameter_constraints = {
        "augmentation": [callable, None],
        "preprocessing": [callable, None],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
    }

    # Whether ``_targets`` reads ``X``: for images, only then are the samples
    # gathered in memory for it (DSTH's self-taught targets need them all).
    _targets_need_rows = False

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or of image paths \
(n_samples,), or uint8 array (n_samples, H, W, C) or (n_samples, C, H, W)
            Training data, one of:

            - 2-D float rows: feature vectors, or flattened images of
              ``input_shape`` with values in [0, 1];
            - a 1-D array-like of image file paths (``str`` or
              ``os.PathLike``; PNG, JPEG, WebP, ... read with Pillow, the
              ``skhash[images]`` extra), decoded a mini-batch at a time.
              Grey (L) and colour (RGB) images are read as they are;
              bilevel (1) images are read as grey, palette (P), CMYK and
              YCbCr ones as RGB; images with an alpha channel or more than
              8 bits per channel are refused (convert them first);
            - a 4-D uint8 array of images, (n, H, W, C) or (n, C, H, W):
              channels last when only the last axis is 1 or 3, first when
              only the first is, else as ``input_shape`` (C, H, W) says. A
              ``np.memmap`` (or ``np.load(mmap_mode="r")``) larger than
              memory is read a mini-batch at a time.

            Images are scaled to [0, 1] (uint8 / 255) as float32 before
            ``augmentation`` or ``preprocessing``; they must then all have
            one shape (a ``preprocessing`` that resizes them makes it so).
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Class labels or a multi-label indicator matrix. Required by supervised
            hashers, ignored by the others.

        Returns
        -------
        self : object
            The fitted hasher.
        """
        # A fit that fails (a file that does not decode, in the middle of an
        # epoch) leaves the hasher as it found it: no half-trained network.
        before = dict(self.__dict__)
        try:
            self._fit_input(X, y)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return self

    def _fit_input(self, X, y):
        require_deep(f"{type(self).__name__}.fit")
        from ._images import Rows, image_source

        self.__dict__.pop("sample_shape_", None)  # a previous fit's
        source = image_source(X, self.input_shape)
        if source is None:
            X = validate_data(
                self,
                X,
                dtype=[np.float64, np.float32],
                ensure_min_samples=self._min_samples,
            )
            y = self._check_targets(y, X.shape[0])
            if self._is_plain(rows=True):
                self.sample_shape_ = self._check_input_shape(X.shape[1]) or (
                    X.shape[1],
                )
                self._fitted_on_images = False
                self._check_n_bits(*X.shape)
                return self._fit(X, y)
            shape = self._check_input_shape(X.shape[1])
            source = Rows(X.astype(np.float32, copy=False), shape)
        else:
            if len(source) < self._min_samples:
                raise ValueError(
                    f"Found {len(source)} image(s) while a minimum of "
                    f"{self._min_samples} is required by {type(self).__name__}."
                )
            y = self._check_targets(y, len(source))
            self.__dict__.pop("feature_names_in_", None)  # no columns to name
        self.sample_shape_ = self._streamed(source, training=True).shape
        n_features = math.prod(self.sample_shape_)
        self._fitted_on_images = source.kind == "images"
        if self._fitted_on_images:
            self.n_features_in_ = n_features
        self._check_n_bits(len(source), n_features)
        self._streaming_shape = self.sample_shape_
        try:
            return self._fit(source, y)
        finally:
            del self._streaming_shape

    def _is_plain(self, rows):
        """Rows that train and encode from memory, as they always did."""
        return rows and self.preprocessing is None and self.augmentation is None

    def _check_targets(self, y, n_samples):
        required = self.__sklearn_tags__().target_tags.required
        if required or (self._optional_y and y is not None):
            return check_supervision(y, n_samples=n_samples)
        return None

    def _streamed(self, source, *, training, targets=None):
        """The samples of ``source`` as the network takes them in training
        (through ``augmentation``, else ``preprocessing``) or when encoding."""
        from ._images import StreamedData

        augmented = training and self.augmentation is not None
        transform = self.augmentation if augmented else self.preprocessing
        data = StreamedData(
            source,
            targets=targets,
            transform=transform,
            seeded=augmented,
            shape=getattr(self, "sample_shape_", None),
            what="augmentation" if augmented else "preprocessing",
            num_workers=self.num_workers,
        )
        if augmented and "sample_shape_" not in self.__dict__:
            # The shape is the encoding one: the augmentation must give it.
            encoded = self._streamed(source, training=False).shape
            if data.shape != encoded:
                raise ValueError(
                    f"The augmentation gives samples of shape {data.shape} and the "
                    f"preprocessing {encoded}: the network takes one shape, so "
                    "the augmentation (which replaces the preprocessing in "
                    "training) must give the preprocessing's."
                )
        return data

    def transform(self, X):
        """Encode samples as packed binary codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or of image paths \
(n_samples,), or uint8 array (n_samples, H, W, C) or (n_samples, C, H, W)
            Samples to encode, in any of the forms :meth:`fit` takes; images
            whatever form the training ones had, rows of
            ``n_features_in_`` values (after a fit on images, the images as
            the network takes them, flattened, when ``preprocessing`` is
            None).

        Returns
        -------
        codes : ndarray of shape (n_samples, ceil(n_bits / 8)), dtype uint8
            Packed codes.
        """
        check_is_fitted(self)
        from ._images import Rows, image_source

        source = image_source(X, self.input_shape)
        shape = self._sample_shape()
        if source is None:
            if self.preprocessing is None:
                return super().transform(X)
            if getattr(self, "_fitted_on_images", False):
                # n_features_in_ counts the preprocessed images' values.
                if self.input_shape is None:
                    raise ValueError(
                        f"This {type(self).__name__} was fitted on images with a "
                        "preprocessing: encode images, or rows with input_shape "
                        "set to their (channels, height, width)."
                    )
                X = check_array(X, dtype=[np.float64, np.float32])
            else:
                X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
            source = Rows(X.astype(np.float32, copy=False), self._rows_shape(X))
        elif len(shape) != 3:
            raise ValueError(
                f"This {type(self).__name__} was fitted on feature rows "
                f"(n_features_in_={self.n_features_in_}), not images: encode rows."
            )
        return self._encode(self._streamed(source, training=False))

    def _rows_shape(self, X):
        """The (C, H, W) of ``input_shape`` that rows of ``X`` hold, or None."""
        if self.input_shape is None:
            return None
        shape = tuple(int(size) for size in self.input_shape)
        if len(shape) != 3 or math.prod(shape) != X.shape[1]:
            raise ValueError(
                f"input_shape={self.input_shape!r} does not hold rows of "
                f"{X.shape[1]} values."
            )
        return shape

    def _encode(self, data):
        """Packed codes of a :class:`._images.StreamedData`, a batch at a time,
        with a progress bar on stderr when ``verbose``."""
        from tqdm.auto import tqdm

        n_bits = getattr(self, "n_bits_", self.n_bits)
        codes = np.empty((len(data), n_bytes_for(n_bits)), dtype=np.uint8)
        start = 0
        with tqdm(
            total=len(data),
            desc=f"{type(self).__name__}.transform",
            unit="image",
            disable=not self.verbose,
        ) as progress:
            for outputs in self.net_.forward_iter(data, training=False):
                block = self._outputs_to_projection(outputs.numpy())
                codes[start : start + len(block)] = pack_codes(block >= 0)
                start += len(block)
                progress.update(len(block))
        return codes

    def _sample_shape(self):
        shape = self.__dict__.get("sample_shape_")
        if shape is None:  # fitted before sample_shape_ existed
            shape = self._check_input_shape(self.n_features_in_) or (
                self.n_features_in_,
            )
        return tuple(shape)
