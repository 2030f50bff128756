"""Images as the deep hashers' input, read a mini-batch at a time.

Three forms of ``X``, all indexable (Pipeline, cross-validation and
GridSearchCV slice them as they slice rows):

- a 1-D array-like of image file paths (``str`` or ``os.PathLike``), decoded
  with Pillow (the ``skhash[images]`` extra) when a batch needs them;
- a 4-D ``uint8`` array of shape (n, H, W, C) or (n, C, H, W), a read-only
  ``np.memmap`` or ``np.load(mmap_mode="r")`` included, read a batch of rows
  at a time (never copied whole);
- 2-D float rows (n, n_features), viewed as images of ``input_shape`` when it
  is given.

Images come as float32 tensors of shape (C, H, W) with values in [0, 1]
(uint8 / 255), then through the hasher's ``preprocessing`` (or, in training,
its ``augmentation``). :class:`StreamedData` serves whole mini-batches to a
torch ``DataLoader`` (in its worker processes when ``num_workers`` > 0), so
memory holds a few batches whatever the number of images. Imported only when
a deep hasher is fitted or encodes (it imports torch).
"""

import math
import mmap
import os
from numbers import Integral

import numpy as np
import torch

# Pillow's modes read as they are, and those converted first: bilevel to
# grey, palette, CMYK and YCbCr to RGB. Everything else is refused: alpha
# channels (what goes under a transparent pixel is not part of the image) and
# more than 8 bits per channel (uint8 / 255 is the one scaling).
_READ_MODES = {"L": None, "RGB": None, "1": "L", "P": "RGB", "CMYK": "RGB"}
_READ_MODES |= {"YCbCr": "RGB", "RGBX": "RGB"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# What Pillow raises for a file it cannot decode (SyntaxError for some
# broken PNGs).
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError)


def _pillow():
    try:
        from PIL import Image
    except ModuleNotFoundError as error:
        raise ImportError(
            "Reading image files needs Pillow, which skhash's core install "
            f"leaves out (no module named {error.name!r}): "
            "pip install 'skhash[images]'."
        ) from error
    return Image


def read_image_file(path):
    """The image at ``path`` as a uint8 array of shape (C, H, W), C = 1 or 3.

    Raises ``FileNotFoundError`` or ``ValueError`` naming the file when it is
    missing, is no image Pillow can decode, or has a mode that is not read
    (see ``_READ_MODES``).
    """
    Image = _pillow()
    name = os.fspath(path)
    try:
        with Image.open(name) as image:
            mode = image.mode
            refusal = _refusal(image)
            if refusal is None:
                target = _READ_MODES[mode]
                image = image.convert(target) if target else image
                array = np.array(image, dtype=np.uint8)  # writable
    except FileNotFoundError as error:
        raise FileNotFoundError(
            error.errno, "No image file at this path", name
        ) from error
    except _UNREADABLE + (Image.DecompressionBombError,) as error:
        raise ValueError(f"Cannot read the image file {name!r}: {error}") from error
    if refusal is not None:
        raise ValueError(
            f"The image file {name!r} has mode {mode!r} ({refusal}), which skhash "
            "does not read: it reads 8-bit grey (L) and colour (RGB) images, and "
            "converts bilevel (1), palette (P), CMYK and YCbCr images to them. "
            "Convert the file first, e.g. with Pillow's Image.convert('RGB')."
        )
    if array.ndim == 2:
        return array[None]
    return array.transpose(2, 0, 1)


def _refusal(image):
    mode = image.mode
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        return "an alpha channel"
    if mode.startswith("I") or mode == "F":
        return "more than 8 bits per channel"
    if mode not in _READ_MODES:
        return "a colour space other than grey or RGB"
    return None


def _is_path(value):
    return isinstance(value, (str, os.PathLike))


def image_source(X, input_shape=None):
    """The images of ``X`` as a source, or ``None`` when ``X`` is not images
    (2-D rows and anything else, which scikit-learn's validation takes)."""
    ndim = getattr(X, "ndim", None)
    dtype = getattr(X, "dtype", None)
    if ndim == 4 and dtype is not None:
        if dtype != np.uint8:
            raise ValueError(
                "A 4-D array of images must be uint8, (n, H, W, C) or (n, C, H, W); "
                f"got {dtype}. Pass float images as 2-D rows (n, C * H * W) "
                "with input_shape=(C, H, W)."
            )
        return ArrayImages(X, channels_last=_channels_last(X.shape, input_shape))
    if ndim is None and isinstance(X, (list, tuple)):
        paths = X if X and all(_is_path(value) for value in X) else None
    elif ndim == 1 and dtype is not None and dtype.kind in "OU":
        values = np.asarray(X)
        paths = values if len(values) and all(map(_is_path, values)) else None
    else:
        paths = None
    if paths is None:
        return None
    return PathImages(paths)


def _channels_last(shape, input_shape):
    """Whether an image array of ``shape`` is (n, H, W, C): what
    ``input_shape`` (C, H, W) says where it matches the images, else inferred
    where only one end of the shape is 1 or 3 channels."""
    sizes = tuple(int(size) for size in shape[1:])
    if input_shape is not None and len(input_shape) == 3:
        channels, height, width = (int(size) for size in input_shape)
        if sizes == (channels, height, width):
            return False
        if sizes == (height, width, channels):
            return True
    first, last = sizes[0] in (1, 3), sizes[2] in (1, 3)
    if first != last:
        return last
    raise ValueError(
        f"Cannot tell the channels of images of shape {sizes}: "
        + (
            "either end could be 1 or 3 channels"
            if first
            else "neither end is 1 or 3 channels"
        )
        + ". Pass input_shape=(C, H, W) to say which, e.g. "
        f"input_shape={(sizes[2], sizes[0], sizes[1])} for (n, H, W, C) images."
    )


def _as_float(images):
    """uint8 images as float32 in [0, 1]."""
    return images.to(torch.float32).div_(255)


class _Source:
    """Samples by index: ``read(i)`` a float32 tensor, ``read_batch(indices)``
    a stacked batch, ``name(i)`` how errors name sample ``i``."""

    def read_batch(self, indices):
        return [self.read(index) for index in indices]


class PathImages(_Source):
    kind = "images"

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def name(self, index):
        # str(): a NumPy string's repr would show np.str_(...).
        return repr(str(os.fspath(self.paths[index])))

    def read(self, index):
        return _as_float(torch.from_numpy(read_image_file(self.paths[index])))


class ArrayImages(_Source):
    kind = "images"

    def __init__(self, array, channels_last):
        self.array, self.channels_last = array, channels_last

    def __len__(self):
        return len(self.array)

    def name(self, index):
        return f"image {index}"

    def _tensor(self, rows):
        # A copy of just these rows, writable (a memmap may be read-only).
        images = torch.from_numpy(np.array(rows, dtype=np.uint8, copy=True))
        if self.channels_last:
            images = images.movedim(-1, -3)
        return _as_float(images.contiguous())

    def read(self, index):
        return self._tensor(self.array[index])

    def read_batch(self, indices):
        start, stop = indices[0], indices[-1] + 1
        if stop - start == len(indices) and list(indices) == list(range(start, stop)):
            return self._tensor(self.array[start:stop])  # in order: one slice
        return self._tensor(self.array[np.asarray(indices)])

    def __getstate__(self):
        # Worker processes started by spawn or forkserver get this pickled:
        # a file-backed array goes as where to map it again, not as its data.
        state = dict(self.__dict__)
        location = _file_location(self.array)
        if location is not None:
            state["array"] = location
        return state

    def __setstate__(self, state):
        if isinstance(state["array"], _FileLocation):
            state["array"] = state["array"].open()
        self.__dict__.update(state)


class Rows(_Source):
    kind = "rows"

    def __init__(self, rows, shape=None):
        self.rows = rows
        self.shape = (rows.shape[1],) if shape is None else tuple(shape)

    def __len__(self):
        return len(self.rows)

    def name(self, index):
        return f"row {index}"

    def read(self, index):
        return torch.from_numpy(np.array(self.rows[index])).view(self.shape)

    def read_batch(self, indices):
        rows = np.array(self.rows[np.asarray(indices)])
        return torch.from_numpy(rows).view(len(indices), *self.shape)


class _FileLocation:
    """Where a view of a file-backed array lies: its file, the byte offset of
    its first element, its shape, strides and dtype."""

    def __init__(self, filename, offset, shape, strides, dtype):
        self.filename, self.offset = filename, offset
        self.shape, self.strides, self.dtype = shape, strides, dtype

    def open(self):
        data = np.memmap(self.filename, dtype=np.uint8, mode="r")
        return np.lib.stride_tricks.as_strided(
            data[self.offset :].view(self.dtype),
            shape=self.shape,
            strides=self.strides,
            writeable=False,
        )


def _file_location(array):
    """The :class:`_FileLocation` of ``array`` when it views a ``np.memmap``
    (or ``np.load(mmap_mode=...)``), else None."""
    root = array
    while isinstance(getattr(root, "base", None), np.ndarray):
        root = root.base
    if not isinstance(root, np.memmap) or not isinstance(root.base, mmap.mmap):
        return None
    if getattr(root, "filename", None) is None:
        return None
    start = array.__array_interface__["data"][0]
    root_start = root.__array_interface__["data"][0]
    return _FileLocation(
        root.filename,
        int(root.offset) + (start - root_start),
        array.shape,
        array.strides,
        array.dtype,
    )


def describe(shape):
    return "x".join(str(size) for size in shape)


class StreamedData(torch.utils.data.Dataset):
    """A source's samples through a transform, a whole mini-batch per item.

    ``data[keys]`` takes the keys of one mini-batch, from :class:`_Batches`:
    indices, or (index, seed) pairs in training with an augmentation, whose
    random draws are then seeded per sample (the same batches whatever
    ``num_workers``). It returns ``(samples, targets)``; the samples must all
    have ``shape`` (the network's input, fixed at fit), or an error names the
    first that does not.
    """

    def __init__(
        self, source, *, targets=None, transform=None, seeded=False, shape=None,
        what="preprocessing", num_workers=0,
    ):  # fmt: skip
        self.source, self.targets, self.transform = source, targets, transform
        self.seeded, self.what, self.num_workers = seeded, what, num_workers
        if shape is None:
            shape = tuple(self._sample(0, 0 if seeded else None).shape)
        self.shape = tuple(shape)

    def __len__(self):
        return len(self.source)

    def _sample(self, index, seed):
        sample = self.source.read(index)
        if self.transform is None:
            return sample
        if seed is None:
            result = self.transform(sample)
        else:
            with torch.random.fork_rng(devices=[]):
                # The CPU generator alone: torch.manual_seed would also queue
                # a seed for every CUDA device, formatting the stack each
                # time (0.5-0.9 ms an image against 0.05 here).
                torch.default_generator.manual_seed(seed)
                result = self.transform(sample)
        if not isinstance(result, torch.Tensor):
            raise TypeError(
                f"The {self.what} must return a torch tensor; it returned "
                f"{type(result).__name__} for {self.source.name(index)}."
            )
        return result

    def __getitem__(self, keys):
        if isinstance(keys, Integral):
            keys = [keys]
        if keys and isinstance(keys[0], tuple):
            indices = [index for index, _ in keys]
            seeds = [seed for _, seed in keys]
        else:
            indices, seeds = list(keys), [None] * len(keys)
        if self.transform is None:
            samples = self.source.read_batch(indices)
        else:
            samples = [
                self._sample(i, seed) for i, seed in zip(indices, seeds, strict=True)
            ]
        if isinstance(samples, list):
            for index, sample in zip(indices, samples, strict=True):
                self._check_shape(index, tuple(sample.shape))
            samples = torch.stack(samples)
        else:
            self._check_shape(indices[0], tuple(samples.shape[1:]))
        if self.targets is None:
            targets = torch.zeros(len(indices))
        else:
            targets = torch.from_numpy(np.asarray(self.targets[np.asarray(indices)]))
        return samples, targets

    def _check_shape(self, index, shape):
        if shape == self.shape:
            return
        if self.source.kind == "rows" or len(shape) != 3:
            raise ValueError(
                f"The {self.what} gave {self.source.name(index)} the shape "
                f"{shape}, not {self.shape} like the others; it must give every "
                "sample one shape."
            )
        step = "" if self.transform is None else f" after the {self.what}"
        raise ValueError(
            f"{self.source.name(index)} is an image of {describe(shape)} "
            f"(channels x height x width){step}, where the network takes "
            f"{describe(self.shape)}. Images of different sizes need a "
            "preprocessing (and augmentation) that resizes them to one size, "
            "e.g. preprocessing=skhash.deep.Resize((height, width)); grey and "
            "colour images together need skhash.deep.ToRGB() in it."
        )

    def loader(self, batch_size, *, training=False):
        """A DataLoader of mini-batches: shuffled in training, in order else."""
        batches = _Batches(
            len(self), batch_size, shuffle=training, seeded=training and self.seeded
        )
        return torch.utils.data.DataLoader(
            self,
            sampler=batches,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available() and torch.cuda.is_initialized(),
            # A loader draws its workers' seeds when iterated: in training
            # from torch's generator, as skorch's loaders over rows in memory
            # do (the same draws, hence the same batches); otherwise from
            # its own, so that encoding leaves torch's random state alone.
            generator=None if training else torch.Generator(),
        )


class _Batches(torch.utils.data.Sampler):
    """The keys of each mini-batch.

    Shuffled as torch's ``RandomSampler`` shuffles (a seed drawn from torch's
    generator, then ``randperm``), so that rows in memory and the same images
    streamed from files train on the same batches. With ``seeded``, a seed
    per epoch is drawn too, and each key is (index, seed of that sample).
    """

    def __init__(self, n_samples, batch_size, *, shuffle, seeded):
        self.n_samples, self.batch_size = n_samples, batch_size
        self.shuffle, self.seeded = shuffle, seeded

    def __len__(self):
        return math.ceil(self.n_samples / self.batch_size)

    def __iter__(self):
        order = range(self.n_samples)
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_()))
            order = torch.randperm(self.n_samples, generator=generator).tolist()
        if self.seeded:
            epoch = int(torch.empty((), dtype=torch.int64).random_())
        for start in range(0, self.n_samples, self.batch_size):
            indices = order[start : start + self.batch_size]
            if self.seeded:
                yield [(index, (epoch + index) % 2**63) for index in indices]
            else:
                yield list(indices)


def stacked_rows(data, batch_size):
    """Every sample of ``data`` flattened, in memory: (n_samples, n_values)."""
    blocks = [
        samples.reshape(len(samples), -1).numpy()
        for samples, _ in data.loader(batch_size)
    ]
    return np.concatenate(blocks)
