"""The CIFAR-10 / CIFAR-100 python batches found on disk (never downloaded),
read with an unpickler that builds NumPy arrays and nothing else."""

import codecs
import os
import pickle

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

from ._fashion_mnist import get_data_home

__all__ = ["load_cifar10", "load_cifar100"]

_CIFAR_DESCR = """\
.. _cifar{n}_dataset:

CIFAR-{n}
---------

**Data Set Characteristics:**

:Number of Instances: 60,000 (50,000 training + 10,000 test)
:Number of Attributes: 32 x 32 colour pixels, 3 uint8 channels (RGB)
:Number of Classes: {classes}
:Creator: Alex Krizhevsky, Vinod Nair and Geoffrey Hinton
:Source: https://www.cs.toronto.edu/~kriz/cifar.html (the python version)

Small colour photographs of objects, a labelled subset of the 80 million tiny
images. With ``subset="all"`` the training images come first, then the test
images, each in the files' order.

.. rubric:: References

- Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny
  Images. Technical report, University of Toronto.
"""


def _latin1_encode(text, encoding="latin1"):
    # How Python 3 pickles bytes at protocols 0 to 2: _codecs.encode(str, "latin1").
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}")
    return codecs.encode(text, "latin1")


_RECONSTRUCT = np.empty(0).__reduce__()[0]
_FROMBUFFER = np.empty(0).__reduce_ex__(5)[0]
_SCALAR = np.int64(0).__reduce__()[0]
# The only callables a CIFAR batch needs: NumPy's rebuilders of arrays (up to
# pickle protocol 4, and 5) and of scalars, under their NumPy 1 and NumPy 2
# module names, and Python 3's way of pickling bytes. A pickle that names any
# other is refused before anything runs.
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
for _core in ("numpy.core", "numpy._core"):
    _PICKLE_GLOBALS[f"{_core}.multiarray", "_reconstruct"] = _RECONSTRUCT
    _PICKLE_GLOBALS[f"{_core}.multiarray", "scalar"] = _SCALAR
    _PICKLE_GLOBALS[f"{_core}.numeric", "_frombuffer"] = _FROMBUFFER
del _core


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _PICKLE_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which a CIFAR batch never does"
            ) from None


def _text(value):
    # Python 2 str keys and names load as str under latin1; Python 3 bytes stay bytes.
    return value.decode("latin1") if isinstance(value, bytes) else value


def _read_batch(path):
    """A CIFAR pickle as a dict with str keys, or a ValueError naming the file."""
    try:
        with open(path, "rb") as file:
            content = _ArrayUnpickler(file, encoding="latin1").load()
    except Exception as exc:  # any failure to parse the file is the same problem
        raise ValueError(
            f"{path} is not a CIFAR python pickle ({type(exc).__name__}: {exc}). "
            "Get the python version of the dataset again."
        ) from None
    if not isinstance(content, dict):
        raise ValueError(f"{path} holds a {type(content).__name__}, not a dict.")
    return {_text(key): value for key, value in content.items()}


def _check_labels(batch, key, path, n_samples, n_classes):
    labels = batch.get(key)
    if labels is None:
        raise ValueError(f"{path} has no {key!r} entry; its keys: {sorted(batch)}.")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (n_samples,):
        raise ValueError(
            f"{path}: {key!r} holds {labels.dtype} values of shape {labels.shape}, "
            f"not {n_samples} integer labels (one per image)."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{path}: {key!r} holds labels outside 0..{n_classes - 1}.")
    return labels.astype(np.int64)


def _read_cifar_batch(path, label_keys):
    batch = _read_batch(path)
    data = batch.get("data")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
    ):
        found = (
            f"{data.dtype} values of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else f"{type(data).__name__}"
        )
        raise ValueError(
            f"{path}: 'data' holds {found}, not a uint8 array of shape (n, 3072)."
        )
    labels = {
        key: _check_labels(batch, key, path, len(data), n_classes)
        for key, n_classes in label_keys.items()
    }
    return data, labels


def _read_cifar_meta(path, name_keys):
    meta = _read_batch(path)
    names = {}
    for key, n_classes in name_keys.items():
        values = meta.get(key)
        if not isinstance(values, (list, tuple)) or len(values) != n_classes:
            found = (
                f"{len(values)} of them"
                if isinstance(values, (list, tuple))
                else type(values).__name__
            )
            raise ValueError(
                f"{path}: {key!r} is not a list of {n_classes} class names "
                f"(found {found})."
            )
        names[key] = np.array([str(_text(value)) for value in values], dtype=str)
    return names


_CIFAR = {
    10: {
        "folder": "cifar-10-batches-py",
        "archive": "cifar-10-python.tar.gz",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": {"labels": 10},
        "names": {"label_names": 10},
    },
    100: {
        "folder": "cifar-100-python",
        "archive": "cifar-100-python.tar.gz",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": {"fine_labels": 100, "coarse_labels": 20},
        "names": {"fine_label_names": 100, "coarse_label_names": 20},
    },
}


def _find_cifar(n_classes, data_home, subset):
    """The batch files of `subset` and the meta file, or a FileNotFoundError."""
    spec = _CIFAR[n_classes]
    subsets = ["train", "test"] if subset == "all" else [subset]
    names = [name for part in subsets for name in spec[part]] + [spec["meta"]]
    home = get_data_home(data_home)
    folders = [home / spec["folder"], home]
    for folder in folders:
        if all((folder / name).is_file() for name in names):
            return [folder / name for name in names]
    hints = []
    other = _CIFAR[110 - n_classes]
    for folder in folders:
        present = [name for name in names if (folder / name).is_file()]
        if present:
            missing = sorted(set(names) - set(present))
            hints.append(
                f"{folder} has {', '.join(present)} but not {', '.join(missing)}."
            )
        elif (folder / other["meta"]).is_file() or (folder / other["folder"]).is_dir():
            hints.append(
                f"{folder} holds CIFAR-{110 - n_classes}: use "
                f"load_cifar{110 - n_classes}."
            )
    if (home / spec["archive"]).is_file():
        hints.append(
            f"Extract {home / spec['archive']} there: tar -xzf {spec['archive']}."
        )
    looked_in = "\n".join(f"  {folder}" for folder in folders)
    raise FileNotFoundError(
        f"CIFAR-{n_classes} python batches not found. Looked for "
        f"{', '.join(names)} in:\n{looked_in}\n"
        + "".join(f"{hint}\n" for hint in hints)
        + f"Get {spec['archive']} (the python version) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and extract it into the data "
        "home (pass data_home=, or set SKHASH_DATA); nothing is downloaded for you."
    )


def _load_cifar(n_classes, data_home, subset):
    spec = _CIFAR[n_classes]
    *batch_paths, meta_path = _find_cifar(n_classes, data_home, subset)
    names = _read_cifar_meta(meta_path, spec["names"])
    batches = [_read_cifar_batch(path, spec["labels"]) for path in batch_paths]
    # One copy from the files' channel-planar rows to height x width x channel.
    images = np.empty((sum(len(data) for data, _ in batches), 32, 32, 3), np.uint8)
    start = 0
    for data, _ in batches:
        images[start : start + len(data)] = data.reshape(-1, 3, 32, 32).transpose(
            0, 2, 3, 1
        )
        start += len(data)
    labels = {
        key: np.concatenate([batch_labels[key] for _, batch_labels in batches])
        for key in spec["labels"]
    }
    return images, labels, names


_CIFAR_CONSTRAINTS = {
    "data_home": [str, os.PathLike, None],
    "subset": [StrOptions({"all", "train", "test"})],
    "return_X_y": ["boolean"],
}


@validate_params(_CIFAR_CONSTRAINTS, prefer_skip_nested_validation=True)
def load_cifar10(*, data_home=None, subset="all", return_X_y=False):
    """Load CIFAR-10 from its python batches on disk (classification, 10 classes).

    =================   ==============================
    Classes                                         10
    Samples total             60,000 (50,000 + 10,000)
    Images                   32 x 32 x 3 (RGB), uint8
    =================   ==============================

    The files of the python version (``data_batch_1`` to ``data_batch_5``,
    ``test_batch`` and ``batches.meta``, as ``cifar-10-python.tar.gz``
    extracts them) are looked for in ``<data home>/cifar-10-batches-py``,
    then in ``<data home>`` itself. The data home is `data_home` when given,
    else the ``SKHASH_DATA`` environment variable, else ``~/skhash_data``
    (see :func:`get_data_home`); torchvision's ``root`` folder is a data home
    too. Nothing is ever downloaded.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder holding ``cifar-10-batches-py``, or that folder itself.

    subset : {"all", "train", "test"}, default="all"
        ``"train"``: the 50,000 training images; ``"test"``: the 10,000 test
        images; ``"all"``: both, the training images first.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 32, 32, 3), dtype uint8
            The images, height x width x RGB channel (HWC, as torchvision's
            ``CIFAR10.data`` and Keras give them), C-contiguous, raw values
            in [0, 255]. ``data.reshape(len(data), -1)`` gives the 3,072
            features a classical hasher takes.
        target : ndarray of shape (n_samples,), dtype int64
            The class of each image, 0 to 9.
        target_names : ndarray of shape (10,), dtype str
            The class names from ``batches.meta``, indexed by target.
        DESCR : str
            A description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    FileNotFoundError
        If the files are found in neither folder; the message lists the
        folders, what is in them, and how to get the files.
    ValueError
        If a file is not a CIFAR-10 python batch (another pickle, another
        shape, labels out of range, no ``label_names``).

    See Also
    --------
    load_cifar100 : CIFAR-100, the same images format with 100 classes.
    retrieval_split : The query / training / database split of the papers.

    Notes
    -----
    The batches are pickles; they are read by an unpickler that accepts only
    the NumPy arrays and plain values a batch holds, so a file that is not
    one cannot run code when it is loaded. Loading the whole set takes a
    couple of seconds and 184 MB of memory.

    References
    ----------
    .. [1] Krizhevsky, A. (2009). "Learning Multiple Layers of Features from
       Tiny Images." Technical report, University of Toronto.

    Examples
    --------
    A stand-in for the real folder, two images a batch:

    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skhash.datasets import load_cifar10
    >>> with tempfile.TemporaryDirectory() as home:
    ...     folder = Path(home, "cifar-10-batches-py")
    ...     folder.mkdir()
    ...     names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    ...     for name in names:
    ...         batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]}
    ...         _ = Path(folder, name).write_bytes(pickle.dumps(batch))
    ...     meta = {b"label_names": [b"class %d" % i for i in range(10)]}
    ...     _ = Path(folder, "batches.meta").write_bytes(pickle.dumps(meta))
    ...     X, y = load_cifar10(data_home=home, subset="test", return_X_y=True)
    >>> X.shape, X.dtype, y
    ((2, 32, 32, 3), dtype('uint8'), array([3, 7]))

    With the real files in ``~/skhash_data/cifar-10-batches-py``:

    >>> cifar = load_cifar10()  # doctest: +SKIP
    >>> cifar.data.shape, cifar.target_names[0]  # doctest: +SKIP
    ((60000, 32, 32, 3), 'airplane')
    """
    images, labels, names = _load_cifar(10, data_home, subset)
    if return_X_y:
        return images, labels["labels"]
    return Bunch(
        data=images,
        target=labels["labels"],
        target_names=names["label_names"],
        DESCR=_CIFAR_DESCR.format(n=10, classes="10, 6,000 images each"),
    )


@validate_params(
    {**_CIFAR_CONSTRAINTS, "label_mode": [StrOptions({"fine", "coarse"})]},
    prefer_skip_nested_validation=True,
)
def load_cifar100(*, data_home=None, subset="all", label_mode="fine", return_X_y=False):
    """Load CIFAR-100 from its python batches on disk (100 classes in 20 groups).

    =================   ==============================
    Classes                  100 fine, in 20 coarse
    Samples total             60,000 (50,000 + 10,000)
    Images                   32 x 32 x 3 (RGB), uint8
    =================   ==============================

    The files of the python version (``train``, ``test`` and ``meta``, as
    ``cifar-100-python.tar.gz`` extracts them) are looked for in
    ``<data home>/cifar-100-python``, then in ``<data home>`` itself. The
    data home is `data_home` when given, else the ``SKHASH_DATA`` environment
    variable, else ``~/skhash_data`` (see :func:`get_data_home`). Nothing is
    ever downloaded.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder holding ``cifar-100-python``, or that folder itself.

    subset : {"all", "train", "test"}, default="all"
        ``"train"``: the 50,000 training images; ``"test"``: the 10,000 test
        images; ``"all"``: both, the training images first.

    label_mode : {"fine", "coarse"}, default="fine"
        Which labels are `target`: the 100 classes or their 20 superclasses.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 32, 32, 3), dtype uint8
            The images, height x width x RGB channel (HWC), C-contiguous,
            raw values in [0, 255].
        target : ndarray of shape (n_samples,), dtype int64
            The labels that `label_mode` names.
        target_names : ndarray of shape (100,) or (20,), dtype str
            Their names, indexed by target.
        fine_target, coarse_target : ndarray of shape (n_samples,), dtype int64
            Both kinds of labels, whatever `label_mode`.
        fine_target_names, coarse_target_names : ndarray of dtype str
            The 100 class names and the 20 superclass names.
        DESCR : str
            A description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The images and the labels that `label_mode` names.

    Raises
    ------
    FileNotFoundError
        If the files are found in neither folder; the message lists the
        folders, what is in them, and how to get the files.
    ValueError
        If a file is not a CIFAR-100 python batch (another pickle, another
        shape, labels out of range, no class names).

    See Also
    --------
    load_cifar10 : CIFAR-10.

    Notes
    -----
    As for :func:`load_cifar10`, the pickles are read by an unpickler that
    accepts only the NumPy arrays and plain values a batch holds.

    References
    ----------
    .. [1] Krizhevsky, A. (2009). "Learning Multiple Layers of Features from
       Tiny Images." Technical report, University of Toronto.

    Examples
    --------
    A stand-in for the real folder, two images a file:

    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skhash.datasets import load_cifar100
    >>> with tempfile.TemporaryDirectory() as home:
    ...     for name in ["train", "test"]:
    ...         batch = {b"data": np.zeros((2, 3072), np.uint8),
    ...                  b"fine_labels": [4, 30], b"coarse_labels": [3, 0]}
    ...         _ = Path(home, name).write_bytes(pickle.dumps(batch))
    ...     meta = {b"fine_label_names": [b"f%d" % i for i in range(100)],
    ...             b"coarse_label_names": [b"c%d" % i for i in range(20)]}
    ...     _ = Path(home, "meta").write_bytes(pickle.dumps(meta))
    ...     cifar = load_cifar100(data_home=home, label_mode="coarse")
    >>> cifar.data.shape, cifar.target, cifar.fine_target
    ((4, 32, 32, 3), array([3, 0, 3, 0]), array([ 4, 30,  4, 30]))
    >>> cifar.target_names[cifar.target].tolist()
    ['c3', 'c0', 'c3', 'c0']
    """
    images, labels, names = _load_cifar(100, data_home, subset)
    target = labels[f"{label_mode}_labels"]
    if return_X_y:
        return images, target
    return Bunch(
        data=images,
        target=target,
        target_names=names[f"{label_mode}_label_names"],
        fine_target=labels["fine_labels"],
        coarse_target=labels["coarse_labels"],
        fine_target_names=names["fine_label_names"],
        coarse_target_names=names["coarse_label_names"],
        DESCR=_CIFAR_DESCR.format(
            n=100, classes="100, 600 images each, grouped in 20 superclasses"
        ),
    )
