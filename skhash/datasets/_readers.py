"""Readers for the image datasets people already have on disk.

Two layouts: the data lists of DeepHash-pytorch and FIRe (a text file of
``path label ...`` lines) and torchvision's ImageFolder tree (the CIFAR
batches are in ``_cifar.py``). No image is decoded: images come back as file
paths, which the deep hashers open.
"""

import os

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

__all__ = ["read_data_list", "read_image_folder"]

# torchvision's ImageFolder default, so that the same tree gives the same files.
_IMG_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)
_BITS = frozenset("01")


def _existing_file(path, what):
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        problem = "is not a file" if os.path.exists(path) else "does not exist"
        raise FileNotFoundError(f"The {what} {path} {problem}.")
    return path


def _existing_dir(path, what):
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path):
        problem = "is not a directory" if os.path.exists(path) else "does not exist"
        raise FileNotFoundError(f"The {what} {path} {problem}.")
    return path


# --- data lists (DeepHash-pytorch, FIRe) -------------------------------------


def _as_bits(fields, path, line_number):
    """The label fields of one line as "0" / "1" characters.

    The fast path of the caller takes the fields that already are; this one
    also accepts any number equal to 0 or 1 ("1.0", as float writers give).
    """
    bits = []
    for field in fields:
        try:
            value = float(field)
        except ValueError:
            value = None
        if value not in (0.0, 1.0):
            raise ValueError(
                f"{path}, line {line_number}: the label value {field!r} is not 0 "
                "or 1. After the image path, a line holds either one class index "
                "or a 0/1 label indicator vector."
            )
        bits.append("1" if value else "0")
    return bits


def _parse_data_list(path):
    """The paths, and the labels as "0"/"1" rows or class indices."""
    paths, labels = [], []
    n_labels = first_line = None
    try:
        with open(path, encoding="utf-8") as file:
            for line_number, line in enumerate(file, start=1):
                fields = line.split()
                if not fields:
                    continue
                if n_labels is None:
                    n_labels, first_line = len(fields) - 1, line_number
                    if n_labels == 0:
                        raise ValueError(
                            f"{path}, line {line_number}: an image path with no "
                            "label after it. Each line is `path class_index` or "
                            "`path l1 ... lC` (a 0/1 label indicator vector)."
                        )
                elif len(fields) - 1 != n_labels:
                    raise ValueError(
                        f"{path}, line {line_number}: {len(fields) - 1} label "
                        f"values after the image path, but line {first_line} has "
                        f"{n_labels}; every line needs the same number. (An image "
                        "path with a space in it is read as a path and labels.)"
                    )
                paths.append(fields[0])
                if n_labels == 1:
                    try:
                        labels.append(int(fields[1]))
                    except ValueError:
                        raise ValueError(
                            f"{path}, line {line_number}: the class index "
                            f"{fields[1]!r} is not an integer."
                        ) from None
                elif _BITS.issuperset(fields[1:]):
                    labels.append("".join(fields[1:]))
                else:
                    labels.append("".join(_as_bits(fields[1:], path, line_number)))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text file ({exc}).") from None
    if not paths:
        raise ValueError(f"The data list {path} holds no line.")
    if n_labels == 1:
        return paths, np.array(labels, dtype=np.int64)
    bits = np.frombuffer("".join(labels).encode("ascii"), dtype=np.uint8)
    return paths, (bits - ord("0")).reshape(len(paths), n_labels)


@validate_params(
    {
        "path": [str, os.PathLike],
        "root": [str, os.PathLike, None],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def read_data_list(path, *, root=None, return_X_y=False):
    """Read a data list of DeepHash-pytorch or FIRe: image paths and labels.

    A data list is a text file with one image a line: its path, then its
    labels, separated by white space. The labels are either a 0/1 label
    indicator vector (``path l1 ... lC``, DeepHash-pytorch's ``train.txt``,
    ``test.txt`` and ``database.txt``, FIRe's lists) or, when every line has
    exactly one label field, a class index (``path class``, FIRe's
    single-label lists). Blank lines are skipped.

    The images are neither opened nor checked: pass the paths to a deep
    hasher, which reads them.

    Parameters
    ----------
    path : str or path-like
        The data list.

    root : str or path-like, default=None
        The folder the image paths are relative to (DeepHash-pytorch's
        ``data_path``); each path is joined to it, and an absolute path in the
        list is kept as it is. None keeps the paths as written, so relative
        ones resolve against the current directory when they are opened, as
        in FIRe.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples,), dtype str
            The image paths, in the order of the list.
        target : ndarray of shape (n_samples, n_labels), dtype uint8, or \
ndarray of shape (n_samples,), dtype int64
            The label indicator matrix, as in the file (a one-hot row stays
            one-hot; a row of zeros is an image with no label), or the class
            indices of a ``path class`` list. Both are labels that skhash's
            hashers, metrics and HammingNeighbors take as `y`.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    FileNotFoundError
        If `path` is not a file or `root` not a directory.
    ValueError
        If a line has no label, not as many labels as the first line, or a
        label that is neither 0 nor 1 (nor an integer class index); the
        message names the file and the line. Also if the file is empty or not
        UTF-8 text.

    See Also
    --------
    read_image_folder : Paths and labels from a folder per class.

    Notes
    -----
    Fields are separated by white space, as DeepHash-pytorch and FIRe split
    them: an image path cannot contain a space. The indicator matrix is
    returned as it is even when every row has a single 1, so that the lists
    of one dataset (train, test, database) always give the same kind of
    labels; ``target.argmax(axis=1)`` gives class indices when
    ``(target.sum(axis=1) == 1).all()``.

    References
    ----------
    .. [1] DeepHash-pytorch, https://github.com/swuxyj/DeepHash-pytorch
       (``utils/tools.py``, ``ImageList``).
    .. [2] FIRe, https://github.com/CISiPLab/cisip-FIRe
       (``utils/datasets.py``, ``HashingDataset``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skhash.datasets import read_data_list
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     list_file = Path(folder, "train.txt")
    ...     _ = list_file.write_text("train2014/a.jpg 1 0 1\\ntrain2014/b.jpg 0 1 0\\n")
    ...     coco = read_data_list(list_file)
    ...     in_root = read_data_list(list_file, root=folder)
    >>> coco.data.tolist()
    ['train2014/a.jpg', 'train2014/b.jpg']
    >>> coco.target
    array([[1, 0, 1],
           [0, 1, 0]], dtype=uint8)
    >>> in_root.data[1] == str(Path(folder, "train2014", "b.jpg"))
    True
    """
    path = _existing_file(path, "data list")
    if root is not None:
        root = _existing_dir(root, "image root")
    paths, target = _parse_data_list(path)
    if root is not None:
        paths = [os.path.join(root, image_path) for image_path in paths]
    data = np.array(paths, dtype=str)
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target)


# --- ImageFolder trees (torchvision) ------------------------------------------


def _class_files(class_dir, extensions, recursive):
    """The image files of one class folder, in torchvision's order."""
    walk = os.walk(class_dir, followlinks=True)
    # Sorting the walk's (folder, sub-folders, files) tuples sorts by folder
    # path, as torchvision's make_dataset does.
    folders = sorted(walk) if recursive else [next(walk, (class_dir, [], []))]
    return [
        os.path.join(folder, name)
        for folder, _, names in folders
        for name in sorted(names)
        if name.lower().endswith(extensions)
    ]


@validate_params(
    {
        "root": [str, os.PathLike],
        "extensions": [str, list, tuple, None],
        "recursive": ["boolean"],
        "allow_empty": ["boolean"],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def read_image_folder(
    root, *, extensions=None, recursive=True, allow_empty=False, return_X_y=False
):
    """Read an ImageFolder tree: image paths, class indices and class names.

    The layout of torchvision's ``ImageFolder``: one sub-folder of `root` per
    class, holding that class's images (``root/dog/001.png``,
    ``root/cat/xyz.jpg``). Classes are the sub-folders in sorted order and
    numbered from 0; the images of a class are its files whose names end in
    one of `extensions` (in any case), with ``recursive=True`` in its
    sub-folders too, in torchvision's order. The same tree therefore gives the
    same samples, in the same order and with the same targets, as
    ``torchvision.datasets.ImageFolder(root)``. Files directly in `root` are
    ignored, and no image is opened.

    Parameters
    ----------
    root : str or path-like
        The folder holding one sub-folder per class; ``~`` is expanded.

    extensions : str or list of str, default=None
        The file name endings of images, such as ``".png"``; None means
        torchvision's list: ``.jpg``, ``.jpeg``, ``.png``, ``.ppm``, ``.bmp``,
        ``.pgm``, ``.tif``, ``.tiff`` and ``.webp``.

    recursive : bool, default=True
        Whether the images of a class are also looked for in the sub-folders
        of its folder (symbolic links followed), as torchvision does. If
        False, only the files directly in the class folder count.

    allow_empty : bool, default=False
        Whether a class folder with no image is kept as a class (with its
        index, as torchvision's ``allow_empty=True``) rather than an error.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples,), dtype str
            The image paths, each `root` joined with the class folder and the
            file's path in it (relative when `root` is).
        target : ndarray of shape (n_samples,), dtype int64
            The class index of each image.
        target_names : ndarray of shape (n_classes,), dtype str
            The class folder names, indexed by target.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays described above.

    Raises
    ------
    FileNotFoundError
        If `root` is not a directory or has no sub-folder, if a class folder
        has no image and ``allow_empty=False``, or if there is no image at
        all.

    See Also
    --------
    read_data_list : Paths and labels from a DeepHash-pytorch data list.

    Notes
    -----
    Every sub-folder is a class, hidden ones included (as in torchvision): a
    stray ``.ipynb_checkpoints`` folder is a class with no image, an error
    unless ``allow_empty=True``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skhash.datasets import read_image_folder
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name in ["dog/b.png", "dog/a.jpg", "cat/x.JPEG", "cat/notes.txt"]:
    ...         Path(root, name).parent.mkdir(exist_ok=True)
    ...         Path(root, name).touch()
    ...     images = read_image_folder(root)
    ...     relative = [str(Path(p).relative_to(root)) for p in images.data]
    >>> relative
    ['cat/x.JPEG', 'dog/a.jpg', 'dog/b.png']
    >>> images.target, images.target_names.tolist()
    (array([0, 1, 1]), ['cat', 'dog'])
    """
    root = _existing_dir(root, "image folder")
    if extensions is None:
        extensions = _IMG_EXTENSIONS
    extensions = [extensions] if isinstance(extensions, str) else list(extensions)
    if not extensions or not all(isinstance(ext, str) and ext for ext in extensions):
        raise ValueError(
            f"extensions must be file name endings such as '.png', got {extensions!r}."
        )
    extensions = tuple(ext.lower() for ext in extensions)
    with os.scandir(root) as entries:
        classes = sorted(entry.name for entry in entries if entry.is_dir())
    if not classes:
        raise FileNotFoundError(
            f"The image folder {root} has no sub-folder: an ImageFolder tree holds "
            "one folder per class, root/<class>/<image>."
        )
    paths, target, empty = [], [], []
    for index, name in enumerate(classes):
        files = _class_files(os.path.join(root, name), extensions, recursive)
        if not files:
            empty.append(name)
        paths += files
        target += [index] * len(files)
    where = "in them or their sub-folders" if recursive else "directly in them"
    if empty and not (allow_empty and paths):
        which = "any class folder" if len(empty) == len(classes) else "the folders"
        raise FileNotFoundError(
            f"No image in {which} {', '.join(map(repr, empty))} of {root}: no "
            f"file {where} ends in {', '.join(extensions)}. Pass extensions= for "
            "other kinds of files"
            + (
                ", or allow_empty=True to keep classes without images."
                if paths
                else "."
            )
        )
    data = np.array(paths, dtype=str)
    target = np.array(target, dtype=np.int64)
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, target_names=np.array(classes, dtype=str))
