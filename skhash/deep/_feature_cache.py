"""A frozen backbone's features kept on disk per image (``feature_cache``).

A deep hasher whose backbone has nothing to train computes the backbone's
features once per ``fit`` (eval mode) and trains its head on them. The folds
of a cross-validation, and the candidates of a grid search, are subsets of
one collection: with a cache each image's features are computed once, by the
first fit that meets the image, and read by the others.

Layout of the directory (created when missing)::

    <feature_cache>/
      <Backbone class>-<model digest>/   the features of one model
        model.json                       what the digest is of, for people
        <chunk digest>/                  the images one fit computed
          keys.npy                       (n,) S32: each image's identity
          features.npy                   (n, width) float32, rows as keys

The model digest covers everything that determines the features besides the
image: the backbone (each submodule's class and plain settings, such as a
convolution's stride, and the bytes of its ``state_dict``), the
``preprocessing``, the shape the network takes, float32, the device type and
the versions of torch, skhash and this layout; features of another model
are in another folder, never read. An image's key is a digest of its
identity: a file's resolved path, size and modification time (ns); an
image array's row, or a float row, by its bytes, shape and layout.

A chunk is written in a hidden folder and renamed into place whole, so an
interrupted fit leaves no chunk, and fits running side by side (a grid
search's ``n_jobs``) at worst compute the same images twice. A chunk that
does not load as written (missing or truncated file, wrong dtype or shape,
non-finite values) is ignored with a warning that names it and removed, and
its images' features are computed again: the cache changes how long a fit
takes, never what it learns, so damage costs time, not the fit (in a grid
search an error would only turn into a NaN score).
"""

import hashlib
import json
import os
import pickle
import shutil
import warnings

import numpy as np

from ..utils._directories import new_directory, skhash_version, sync
from . import _transforms

FORMAT = "skhash.deep feature cache"
FORMAT_VERSION = 1
_KEY = np.dtype("S32")  # hex digests: NumPy's S strips trailing NUL bytes
_FEATURES = np.dtype("float32")
_PLAIN = (bool, int, float, str, type(None))
# Bytes of images hashed per block of an array (a memmap is read a block at
# a time, never whole).
_BLOCK_BYTES = 1 << 26


def open_cache(hasher, backbone):
    """The :class:`FeatureCache` of a hasher's fit with a frozen ``backbone``,
    or None without ``feature_cache`` (or, with a warning, where the cache
    cannot tell the model apart)."""
    if hasher.feature_cache is None:
        return None
    path = os.fspath(hasher.feature_cache)
    if os.path.exists(path) and not os.path.isdir(path):
        # A file name is a likely mistake: the cache is a folder of files.
        raise ValueError(
            f"feature_cache={path!r} exists and is not a directory: the feature "
            "cache is a directory (created when missing) of .npy files."
        )
    try:
        return FeatureCache(
            path,
            backbone,
            preprocessing=hasher.preprocessing,
            sample_shape=hasher._sample_shape(),
            device=hasher.device_,
        )
    except TypeError as error:  # a preprocessing that does not pickle
        warn_unused(hasher, str(error))
        return None


def warn_unused(hasher, reason):
    warnings.warn(
        f"{type(hasher).__name__}(feature_cache={hasher.feature_cache!r}) does "
        f"not use its cache: {reason}. The cache holds a frozen backbone's "
        "features, computed once per image without augmentation; this fit "
        "trains as without it.",
        UserWarning,
        stacklevel=3,
    )


def _digest(*parts):
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest


def _plain(value):
    if isinstance(value, (tuple, list)):
        return all(_plain(item) for item in value)
    return isinstance(value, _PLAIN)


def _weights_digest(backbone):
    """A digest of each submodule's class and plain settings (what the
    weights do not say: strides, paddings, a wrapper's ``min_size``) and of
    the backbone's ``state_dict``."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, module in backbone.named_modules():
        settings = {
            key: value
            for key, value in sorted(vars(module).items())
            if not key.startswith("_") and key != "training" and _plain(value)
        }
        kind = f"{type(module).__module__}.{type(module).__qualname__}"
        digest.update(repr((name, kind, settings)).encode() + b"\0")
    for name, value in backbone.state_dict().items():
        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu").contiguous()
            digest.update(f"{name} {value.dtype} {tuple(value.shape)}".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy())
        else:  # a module's extra state
            digest.update(f"{name} {value!r}".encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _preprocessing_digest(preprocessing):
    """A digest of the preprocessing; ``None`` when it cannot be pickled."""
    if preprocessing is None:
        return "none"
    if _transforms.is_saved_transform(preprocessing):
        return _digest(repr(_transforms.transform_state(preprocessing))).hexdigest()
    try:
        return _digest(pickle.dumps(preprocessing, protocol=4)).hexdigest()
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def image_keys(source):
    """The key of each sample of a source of :mod:`._images` (S32)."""
    from ._images import ArrayImages, PathImages

    keys = np.empty(len(source), dtype=_KEY)
    if isinstance(source, PathImages):
        for index, path in enumerate(source.paths):
            name = os.path.realpath(os.fspath(path))
            try:
                stat = os.stat(name)
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    error.errno, "No image file at this path", os.fspath(path)
                ) from error
            identity = _digest("file", name, stat.st_size, stat.st_mtime_ns)
            keys[index] = identity.hexdigest()
        return keys
    if isinstance(source, ArrayImages):
        array = source.array
        kind = ("uint8 image", array.dtype.str, array.shape[1:], source.channels_last)
    else:
        array = source.rows
        kind = ("float row", array.dtype.str, array.shape[1:], source.shape)
    row_bytes = max(1, array[:1].nbytes)
    step = max(1, _BLOCK_BYTES // row_bytes)
    for start in range(0, len(array), step):
        block = np.ascontiguousarray(array[start : start + step])
        for offset, row in enumerate(block):
            keys[start + offset] = _digest(*kind, row.tobytes()).hexdigest()
    return keys


class _Subset:
    """Some samples of a source (those to compute), read from it lazily."""

    def __init__(self, source, indices):
        self.source, self.indices = source, np.asarray(indices)
        self.kind = source.kind

    def __len__(self):
        return len(self.indices)

    def name(self, index):
        return self.source.name(int(self.indices[index]))

    def read(self, index):
        return self.source.read(int(self.indices[index]))

    def read_batch(self, indices):
        return self.source.read_batch([int(self.indices[i]) for i in indices])


class FeatureCache:
    """The cached features of one model (backbone, preprocessing, shape,
    device) under a ``feature_cache`` directory."""

    def __init__(self, root, backbone, *, preprocessing, sample_shape, device):
        import torch

        preprocessing_digest = _preprocessing_digest(preprocessing)
        if preprocessing_digest is None:
            raise TypeError(
                f"the preprocessing ({preprocessing!r}) cannot be pickled, and "
                "the cache tells models apart by it"
            )
        kind = type(backbone)
        self.description = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "backbone": f"{kind.__module__}.{kind.__qualname__}",
            "backbone_digest": _weights_digest(backbone),
            "preprocessing": repr(preprocessing),
            "preprocessing_digest": preprocessing_digest,
            "sample_shape": [int(size) for size in sample_shape],
            "dtype": _FEATURES.name,
            "device": torch.device(device).type,
            "torch_version": torch.__version__,
            "skhash_version": skhash_version(),
        }
        digest = _digest(json.dumps(self.description, sort_keys=True))
        self.directory = os.path.join(root, f"{kind.__name__}-{digest.hexdigest()}")

    def features(self, source, compute, width):
        """Features of every sample of ``source``: read where cached, else
        computed by ``compute(subset_source)`` (each distinct image once) and
        written as a new chunk."""
        keys = image_keys(source)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        features = np.empty((len(unique), width), dtype=_FEATURES)
        found = np.zeros(len(unique), dtype=bool)
        for chunk in self._chunks():
            self._read_chunk(chunk, unique, features, found, width)
            if found.all():
                break
        missing = np.flatnonzero(~found)
        if len(missing):
            computed = compute(_Subset(source, np.sort(first[missing])))
            if computed.shape != (len(missing), width):
                raise ValueError(
                    f"The backbone gave features of shape {computed.shape[1:]}, "
                    f"not ({width},) as its out_features (or a dry run) says."
                )
            # The subset is in the samples' order; the missing keys in sorted
            # key order.
            order = np.argsort(first[missing])
            features[missing[order]] = computed
            self._write_chunk(unique[missing], features[missing])
        return features[inverse.reshape(-1)]

    def _chunks(self):
        try:
            entries = sorted(os.scandir(self.directory), key=lambda entry: entry.name)
        except FileNotFoundError:
            return []
        return [
            entry.path
            for entry in entries
            if len(entry.name) == 32 and not entry.name.startswith(".")
            and entry.is_dir(follow_symlinks=False)
        ]  # fmt: skip

    def _read_chunk(self, chunk, unique, features, found, width):
        """Fill ``features`` of the ``unique`` keys this chunk has; a damaged
        chunk is reported, removed and read as empty."""
        keys_file = os.path.join(chunk, "keys.npy")
        features_file = os.path.join(chunk, "features.npy")
        try:
            keys = np.load(keys_file, allow_pickle=False)
            if keys.dtype != _KEY or keys.ndim != 1 or not len(keys):
                raise ValueError(
                    f"{keys_file} holds {keys.dtype} of shape {keys.shape}, not "
                    "S32 keys of shape (n,)"
                )
            stored = np.load(features_file, mmap_mode="r", allow_pickle=False)
            if stored.dtype != _FEATURES or stored.shape != (len(keys), width):
                raise ValueError(
                    f"{features_file} holds {stored.dtype} of shape "
                    f"{stored.shape}, not float32 of shape {(len(keys), width)}"
                )
            _, wanted, rows = np.intersect1d(
                unique, keys, assume_unique=False, return_indices=True
            )
            fresh = ~found[wanted]
            wanted, rows = wanted[fresh], rows[fresh]
            if not len(rows):
                return
            values = np.asarray(stored[np.sort(rows)])
            if not np.isfinite(values).all():
                raise ValueError(f"{features_file} holds non-finite values")
            order = np.argsort(rows)
            features[wanted[order]] = values
            found[wanted] = True
        except FileNotFoundError as error:
            if not os.path.isdir(chunk):  # removed by a fit beside this one
                return
            self._damaged(chunk, error)
        except (OSError, ValueError, EOFError) as error:
            self._damaged(chunk, error)

    def _damaged(self, chunk, error):
        warnings.warn(
            f"The feature cache's chunk {chunk} is damaged and is removed; its "
            f"images' features are computed again ({error}).",
            UserWarning,
            stacklevel=2,
        )
        shutil.rmtree(chunk, ignore_errors=True)

    def _write_chunk(self, keys, features):
        """Write one chunk whole, or nothing; a cache that cannot be written
        is a warning (the fit goes on)."""
        if not np.isfinite(features).all():
            warnings.warn(
                "The backbone gave non-finite features: they are not cached.",
                UserWarning,
                stacklevel=2,
            )
            return
        name = _digest(keys.tobytes()).hexdigest()
        final = os.path.join(self.directory, name)
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._describe()
            if os.path.isdir(final):
                return
            partial = new_directory(final, "partial")
            try:
                for file_name, array in (("features", features), ("keys", keys)):
                    with open(os.path.join(partial, f"{file_name}.npy"), "wb") as file:
                        np.save(file, array, allow_pickle=False)
                        sync(file)
                os.rename(partial, final)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                if os.path.isdir(final):  # the same chunk, from a fit beside
                    return
                raise
        except OSError as error:
            warnings.warn(
                f"The features could not be written to the feature cache "
                f"{self.directory} ({error}); the fit goes on without.",
                UserWarning,
                stacklevel=2,
            )

    def _describe(self):
        """``model.json``: what this folder's digest is of (never read)."""
        path = os.path.join(self.directory, "model.json")
        if os.path.exists(path):
            return
        partial = f"{path}.{os.getpid()}.partial"
        try:
            with open(partial, "w") as file:
                json.dump(self.description, file, indent=1)
                sync(file)
            os.replace(partial, path)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise
