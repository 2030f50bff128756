"""The readers of on-disk layouts: data lists, ImageFolder trees, CIFAR batches.

Each test writes a small fixture in the real format (DeepHash-pytorch's list
writer, PNG files, pickles with the official CIFAR keys, Python 2 pickles
included) and checks every returned field against it.
"""

import io
import os
import pickle
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skhash.datasets import (
    load_cifar10,
    load_cifar100,
    read_data_list,
    read_image_folder,
)

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a reader tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --- data lists ---------------------------------------------------------------


def _deephash_line(path, row):
    # How DeepHash-pytorch's data/*/code.py scripts write a line.
    return path + " " + str(list(row))[1:-1].replace(", ", " ") + "\n"


def test_data_list_written_as_deephash_does(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(50, 38)).astype(np.uint8)
    labels[7] = 0  # an image with no label is kept
    names = [f"im{i}.jpg" for i in range(50)]
    list_file = tmp_path / "train.txt"
    list_file.write_text(
        "".join(
            _deephash_line(n, r.tolist()) for n, r in zip(names, labels, strict=True)
        )
    )
    (tmp_path / "mirflickr").mkdir()

    bunch = read_data_list(list_file, root=tmp_path / "mirflickr")
    assert set(bunch) == {"data", "target"}
    assert bunch.data.dtype.kind == "U" and bunch.data.shape == (50,)
    assert bunch.data.tolist() == [str(tmp_path / "mirflickr" / n) for n in names]
    assert bunch.target.dtype == np.uint8
    np.testing.assert_array_equal(bunch.target, labels)
    X, y = read_data_list(str(list_file), return_X_y=True)
    assert X.tolist() == names  # without a root, the paths stay as written
    np.testing.assert_array_equal(y, labels)


def test_data_list_one_hot_rows_stay_an_indicator_matrix(tmp_path):
    list_file = tmp_path / "test.txt"
    list_file.write_text("a.png 0 0 1\nb.png 1 0 0\n")
    _, target = read_data_list(list_file, return_X_y=True)
    assert target.shape == (2, 3)
    np.testing.assert_array_equal(target, [[0, 0, 1], [1, 0, 0]])


def test_data_list_white_space_and_absolute_paths(tmp_path):
    # COCO's lists end lines with a space; blank lines, tabs, CRLF endings
    # and an absolute path (kept as it is whatever the root) are all read.
    list_file = tmp_path / "database.txt"
    list_file.write_bytes(
        b"train2014/x.jpg 0 1 1 \r\n\n/abs/y.jpg\t1 0 0\r\n   \nval2014/z.jpg 0 0 0"
    )
    data, target = read_data_list(list_file, root=tmp_path, return_X_y=True)
    assert data.tolist() == [
        str(tmp_path / "train2014" / "x.jpg"),
        "/abs/y.jpg",
        str(tmp_path / "val2014" / "z.jpg"),
    ]
    np.testing.assert_array_equal(target, [[0, 1, 1], [1, 0, 0], [0, 0, 0]])


def test_data_list_float_labels(tmp_path):
    list_file = tmp_path / "train.txt"
    list_file.write_text("a.jpg 1.0 0.0 1e0\nb.jpg 0 1 0.000\n")
    _, target = read_data_list(list_file, return_X_y=True)
    assert target.dtype == np.uint8
    np.testing.assert_array_equal(target, [[1, 0, 1], [0, 1, 0]])


def test_data_list_of_class_indices(tmp_path):
    # FIRe's single-label lists: one field after the path is a class index.
    list_file = tmp_path / "train.txt"
    list_file.write_text("n01/a.JPEG 12\nn02/b.JPEG 0\nn03/c.JPEG 99\n")
    bunch = read_data_list(list_file)
    assert bunch.target.dtype == np.int64 and bunch.target.ndim == 1
    np.testing.assert_array_equal(bunch.target, [12, 0, 99])
    assert bunch.data.tolist() == ["n01/a.JPEG", "n02/b.JPEG", "n03/c.JPEG"]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "a.jpg 1 0 1\nb.jpg 0 1\n",
            r"train\.txt, line 2: 2 label values after the image path, but line 1 "
            r"has 3",
        ),
        (
            "\na.jpg 1 0\nb.jpg 0 1\nmy image.jpg 1 0\n",
            r"train\.txt, line 4: 3 label values .* but line 2 has 2.*space",
        ),
        ("a.jpg\nb.jpg 1 0\n", r"train\.txt, line 1: an image path with no label"),
        ("a.jpg 1 0\nb.jpg 0 2\n", r"train\.txt, line 2: the label value '2' is not"),
        ("a.jpg 1 0\nb.jpg 0 yes\n", r"line 2: the label value 'yes' is not 0 or 1"),
        ("a.jpg 1 0\nb.jpg 0 nan\n", r"line 2: the label value 'nan'"),
        ("a.jpg 3\nb.jpg 4.0\n", r"train\.txt, line 2: the class index '4.0' is not"),
        ("\n  \n", r"train\.txt holds no line"),
        ("", r"train\.txt holds no line"),
    ],
    ids=[
        "too few",
        "path with space",
        "no label",
        "not a bit",
        "word",
        "nan",
        "float class",
        "blank",
        "empty",
    ],
)
def test_data_list_malformed(tmp_path, content, message):
    list_file = tmp_path / "train.txt"
    list_file.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_data_list(list_file)


def test_data_list_not_text(tmp_path):
    list_file = tmp_path / "train.txt"
    list_file.write_bytes(b"a.jpg 1 0\n\xff\xfe\x00 1 0\n")
    with pytest.raises(ValueError, match=r"train\.txt is not a UTF-8 text file"):
        read_data_list(list_file)


def test_data_list_missing_file_or_root(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data list .*nope\.txt does not"):
        read_data_list(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match=r"data list .* is not a file"):
        read_data_list(tmp_path)
    list_file = tmp_path / "train.txt"
    list_file.write_text("a.jpg 1 0\n")
    with pytest.raises(FileNotFoundError, match=r"image root .*gone does not exist"):
        read_data_list(list_file, root=tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match=r"image root .* is not a directory"):
        read_data_list(list_file, root=list_file)
    with pytest.raises(InvalidParameterError):
        read_data_list(list_file, root=3)


# --- ImageFolder trees --------------------------------------------------------


def _write_png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 5, 3), value, dtype=np.uint8)).save(path)


@pytest.fixture
def tree(tmp_path):
    """An ImageFolder tree; each PNG's pixel value identifies the file."""
    root = tmp_path / "tree"
    files = {
        "dog/b.png": 11,
        "dog/A.PNG": 10,  # upper case: an image too; sorts before "b.png"
        "dog/sub/c.png": 12,  # in a sub-folder: found when recursive
        "dog/sub-x/d.png": 13,
        # Folders sort by path: "sub" < "sub-x" < "sub/deeper" ("-" < "/"), so
        # torchvision's order is not depth-first.
        "dog/sub/deeper/e.png": 14,
        "cat/z.png": 20,
        "cat/01.png": 21,
        "bird/only.png": 30,
    }
    for name, value in files.items():
        _write_png(root / name, value)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "cat" / "image.png.bak").write_bytes(b"")
    _write_png(root / "stray.png", 99)  # directly in the root: ignored
    return root


def test_image_folder_order_and_targets(tree):
    bunch = read_image_folder(tree)
    assert set(bunch) == {"data", "target", "target_names"}
    assert bunch.target_names.tolist() == ["bird", "cat", "dog"]
    assert bunch.target.dtype == np.int64
    # torchvision's make_dataset: classes sorted; per class, sorted(os.walk())
    # (by folder path) then sorted file names.
    expected = [
        ("bird/only.png", 0),
        ("cat/01.png", 1),
        ("cat/z.png", 1),
        ("dog/A.PNG", 2),
        ("dog/b.png", 2),
        ("dog/sub/c.png", 2),
        ("dog/sub-x/d.png", 2),
        ("dog/sub/deeper/e.png", 2),
    ]
    assert bunch.data.tolist() == [os.path.join(tree, name) for name, _ in expected]
    np.testing.assert_array_equal(bunch.target, [index for _, index in expected])
    # The paths are the real files, untouched: what they hold says which.
    values = [int(np.asarray(Image.open(path))[0, 0, 0]) for path in bunch.data]
    assert values == [30, 21, 20, 10, 11, 12, 13, 14]


def test_image_folder_not_recursive_and_return_X_y(tree):
    data, target = read_image_folder(str(tree), recursive=False, return_X_y=True)
    assert [os.path.relpath(p, tree) for p in data] == [
        "bird/only.png",
        "cat/01.png",
        "cat/z.png",
        "dog/A.PNG",
        "dog/b.png",
    ]
    np.testing.assert_array_equal(target, [0, 1, 1, 2, 2])


def test_image_folder_extensions(tree):
    bunch = read_image_folder(tree, extensions=".TXT", allow_empty=True)
    assert [os.path.relpath(p, tree) for p in bunch.data] == ["dog/notes.txt"]
    np.testing.assert_array_equal(bunch.target, [2])
    data, target = read_image_folder(
        tree, extensions=[".bak", ".txt"], allow_empty=True, return_X_y=True
    )
    assert [os.path.relpath(p, tree) for p in data] == [
        "cat/image.png.bak",
        "dog/notes.txt",
    ]
    np.testing.assert_array_equal(target, [1, 2])
    with pytest.raises(FileNotFoundError, match=r"'bird', 'cat' of .* ends in \.txt"):
        read_image_folder(tree, extensions=".txt")


@pytest.mark.parametrize("extensions", [[], "", [".png", ""], [".png", 3]])
def test_image_folder_bad_extensions(tree, extensions):
    with pytest.raises((ValueError, InvalidParameterError), match="extensions"):
        read_image_folder(tree, extensions=extensions)


def test_image_folder_relative_root(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    data, _ = read_image_folder("tree", return_X_y=True)
    assert data[0] == os.path.join("tree", "bird", "only.png")


def test_image_folder_follows_symbolic_links(tree, tmp_path):
    _write_png(tmp_path / "elsewhere" / "e.png", 40)
    os.symlink(tmp_path / "elsewhere", tree / "cat" / "linked")
    os.symlink(tmp_path / "elsewhere", tree / "eagle")  # a linked class folder
    bunch = read_image_folder(tree)
    assert bunch.target_names.tolist() == ["bird", "cat", "dog", "eagle"]
    relative = [os.path.relpath(p, tree) for p in bunch.data]
    assert relative[:4] == [
        "bird/only.png",
        "cat/01.png",
        "cat/z.png",
        "cat/linked/e.png",
    ]
    assert relative[-1] == "eagle/e.png" and bunch.target[-1] == 3


def test_image_folder_empty_class(tree):
    (tree / "cow" / "sub").mkdir(parents=True)
    (tree / "cow" / "readme.md").write_text("")
    (tree / ".ipynb_checkpoints").mkdir()
    with pytest.raises(FileNotFoundError) as error:
        read_image_folder(tree)
    message = str(error.value)
    assert "No image in the folders '.ipynb_checkpoints', 'cow' of" in message
    assert ".png" in message and "allow_empty=True" in message
    # Kept as classes with no image, the others' indices shift as torchvision's.
    bunch = read_image_folder(tree, allow_empty=True)
    assert bunch.target_names.tolist() == [
        ".ipynb_checkpoints",
        "bird",
        "cat",
        "cow",
        "dog",
    ]
    assert sorted(set(bunch.target.tolist())) == [1, 2, 4]
    assert len(bunch.data) == 8


def test_image_folder_without_images_or_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder .*absent does not"):
        read_image_folder(tmp_path / "absent")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(FileNotFoundError, match=r"root has no sub-folder"):
        read_image_folder(root)
    _write_png(root / "loose.png", 1)  # files, but no class folder
    with pytest.raises(FileNotFoundError, match=r"root has no sub-folder"):
        read_image_folder(root)
    with pytest.raises(FileNotFoundError, match=r"is not a directory"):
        read_image_folder(root / "loose.png")
    (root / "a").mkdir()
    (root / "b").mkdir()
    for allow_empty in (False, True):
        with pytest.raises(FileNotFoundError, match=r"No image in any class folder"):
            read_image_folder(root, allow_empty=allow_empty)
    _write_png(root / "b" / "deep" / "x.png", 1)
    with pytest.raises(FileNotFoundError, match=r"'b' .*directly in them"):
        read_image_folder(root, recursive=False, allow_empty=True)


# --- CIFAR batches ------------------------------------------------------------


class _Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 str, as the official CIFAR files hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _pickle(content, style):
    if style == "str keys":  # re-saved by someone in Python 3
        content = {key.decode(): value for key, value in content.items()}
    if style != "python 2":
        return pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(content)
    # NumPy 1 (all Python 2 had) named its module numpy.core.
    return buffer.getvalue().replace(
        b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"
    )


def _images_rows(n_samples, seed):
    return np.random.default_rng(seed).integers(0, 256, (n_samples, 3072), np.uint8)


def _write_cifar10(folder, style="bytes keys", n_per_batch=3):
    """Fake CIFAR-10 files; returns {file name: (rows, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        rows = _images_rows(n_per_batch, seed)
        labels = [(seed + i) % 10 for i in range(n_per_batch)]
        batch = {
            b"batch_label": b"training batch %d of 5" % seed,
            b"labels": labels,
            b"data": rows,
            b"filenames": [b"img_%d.png" % i for i in range(n_per_batch)],
        }
        (folder / name).write_bytes(_pickle(batch, style))
        written[name] = rows, labels
    meta = {
        b"num_cases_per_batch": n_per_batch,
        b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
        + [b"dog", b"frog", b"horse", b"ship", b"truck"],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(_pickle(meta, style))
    return written


def _write_cifar100(folder, style="bytes keys", n_train=4, n_test=2):
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for seed, (name, n_samples) in enumerate([("train", n_train), ("test", n_test)]):
        rows = _images_rows(n_samples, 10 + seed)
        fine = [(7 * i + seed) % 100 for i in range(n_samples)]
        coarse = [f % 20 for f in fine]
        batch = {
            b"filenames": [b"x.png"] * n_samples,
            b"batch_label": name.encode(),
            b"fine_labels": fine,
            b"coarse_labels": coarse,
            b"data": rows,
        }
        (folder / name).write_bytes(_pickle(batch, style))
        written[name] = rows, fine, coarse
    meta = {
        b"fine_label_names": [b"fine_%d" % i for i in range(100)],
        b"coarse_label_names": [b"coarse_%d" % i for i in range(20)],
    }
    (folder / "meta").write_bytes(_pickle(meta, style))
    return written


def _check_pixels(images, rows):
    # The documented layout of a row: 1,024 red values, then 1,024 green, then
    # 1,024 blue, each channel row-major 32 x 32.
    for i in range(len(rows)):
        for row, col in [(0, 0), (0, 31), (5, 17), (31, 0), (31, 31)]:
            for channel in range(3):
                assert (
                    images[i, row, col, channel]
                    == rows[i, channel * 1024 + row * 32 + col]
                )


@pytest.mark.parametrize("style", ["bytes keys", "str keys", "python 2"])
def test_load_cifar10(tmp_path, style):
    written = _write_cifar10(tmp_path / "cifar-10-batches-py", style)
    bunch = load_cifar10(data_home=tmp_path)
    assert set(bunch) == {"data", "target", "target_names", "DESCR"}
    assert bunch.data.shape == (18, 32, 32, 3) and bunch.data.dtype == np.uint8
    assert bunch.data.flags.c_contiguous
    order = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    rows = np.concatenate([written[name][0] for name in order])
    _check_pixels(bunch.data, rows)
    np.testing.assert_array_equal(
        bunch.data, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    )
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(
        bunch.target, sum((written[name][1] for name in order), [])
    )
    assert bunch.target_names.tolist()[:3] == ["airplane", "automobile", "bird"]
    assert bunch.target_names[9] == "truck" and len(bunch.target_names) == 10
    assert "CIFAR-10" in bunch.DESCR


def test_load_cifar10_subsets_and_where_it_looks(tmp_path, monkeypatch):
    written = _write_cifar10(tmp_path / "home", n_per_batch=2)  # no sub-folder
    X, y = load_cifar10(data_home=tmp_path / "home", subset="test", return_X_y=True)
    _check_pixels(X, written["test_batch"][0])
    np.testing.assert_array_equal(y, written["test_batch"][1])
    monkeypatch.setenv("SKHASH_DATA", str(tmp_path / "home"))
    X, y = load_cifar10(subset="train", return_X_y=True)
    assert X.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(
        y, sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    )
    # Only the subset's files are needed.
    (tmp_path / "home" / "test_batch").unlink()
    assert len(load_cifar10(subset="train").target) == 10
    with pytest.raises(
        FileNotFoundError, match=r"has data_batch_1.*but not test_batch"
    ):
        load_cifar10(subset="all")


@pytest.mark.parametrize("style", ["bytes keys", "python 2"])
@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_load_cifar100(tmp_path, style, label_mode):
    written = _write_cifar100(tmp_path / "cifar-100-python", style)
    bunch = load_cifar100(data_home=tmp_path, label_mode=label_mode)
    rows = np.concatenate([written["train"][0], written["test"][0]])
    fine = written["train"][1] + written["test"][1]
    coarse = written["train"][2] + written["test"][2]
    assert bunch.data.shape == (6, 32, 32, 3) and bunch.data.dtype == np.uint8
    _check_pixels(bunch.data, rows)
    np.testing.assert_array_equal(bunch.fine_target, fine)
    np.testing.assert_array_equal(bunch.coarse_target, coarse)
    np.testing.assert_array_equal(
        bunch.target, fine if label_mode == "fine" else coarse
    )
    assert bunch.fine_target_names[37] == "fine_37"
    assert bunch.coarse_target_names.tolist() == [f"coarse_{i}" for i in range(20)]
    assert len(bunch.target_names) == (100 if label_mode == "fine" else 20)
    assert bunch.target_names[bunch.target[1]] == (
        f"{label_mode}_{fine[1] if label_mode == 'fine' else coarse[1]}"
    )
    X, y = load_cifar100(
        data_home=tmp_path, subset="test", label_mode=label_mode, return_X_y=True
    )
    _check_pixels(X, written["test"][0])
    assert y.tolist() == written["test"][1 if label_mode == "fine" else 2]


def test_cifar_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_cifar10(data_home=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "batches.meta" in message
    assert "cifar-10-python.tar.gz" in message and "nothing is downloaded" in message
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"Extract .*cifar-10-python\.tar\.gz"):
        load_cifar10(data_home=tmp_path)


def test_cifar_the_other_layout(tmp_path):
    _write_cifar100(tmp_path / "cifar-100-python")
    with pytest.raises(FileNotFoundError, match=r"holds CIFAR-100: use load_cifar100"):
        load_cifar10(data_home=tmp_path)
    _write_cifar10(tmp_path / "ten")
    with pytest.raises(
        FileNotFoundError, match=r"ten holds CIFAR-10: use load_cifar10"
    ):
        load_cifar100(data_home=tmp_path / "ten")


def _damage(folder, name, changes):
    batch = pickle.loads((folder / name).read_bytes())
    batch.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del batch[key]
    (folder / name).write_bytes(pickle.dumps(batch))


@pytest.mark.parametrize(
    "name, changes, message",
    [
        (
            "data_batch_2",
            {b"data": np.zeros((3, 3073), np.uint8)},
            r"data_batch_2: 'data' holds uint8 values of shape \(3, 3073\), not",
        ),
        (
            "data_batch_2",
            {b"data": np.zeros((3, 3072), np.float32)},
            r"'data' holds float32 values",
        ),
        ("test_batch", {b"data": [1, 2]}, r"test_batch: 'data' holds list, not"),
        ("data_batch_5", {b"labels": [1, 2]}, r"'labels' holds int64 values of shape"),
        ("data_batch_5", {b"labels": [1, 2, 10]}, r"labels outside 0\.\.9"),
        ("data_batch_5", {b"labels": [1, 2, -1]}, r"labels outside 0\.\.9"),
        ("data_batch_5", {b"labels": [1.0, 2.0, 3.0]}, r"holds float64 values"),
        ("data_batch_1", {b"labels": None}, r"data_batch_1 has no 'labels' entry"),
        (
            "batches.meta",
            {b"label_names": [b"a"] * 9},
            r"'label_names' is not a list of 10 class names \(found 9 of them\)",
        ),
        (
            "batches.meta",
            {b"label_names": None},
            r"'label_names' is not .* \(found NoneType\)",
        ),
    ],
)
def test_cifar_malformed_batches(tmp_path, name, changes, message):
    _write_cifar10(tmp_path)
    _damage(tmp_path, name, changes)
    with pytest.raises(ValueError, match=message):
        load_cifar10(data_home=tmp_path)


def test_cifar100_labels_checked_against_their_own_range(tmp_path):
    _write_cifar100(tmp_path)
    _damage(tmp_path, "train", {b"coarse_labels": [0, 1, 20, 3]})
    with pytest.raises(
        ValueError, match=r"train: 'coarse_labels' holds labels outside 0\.\.19"
    ):
        load_cifar100(data_home=tmp_path)


def test_cifar_file_that_is_not_a_batch(tmp_path):
    _write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"\x1f\x8b not a pickle at all")
    with pytest.raises(ValueError, match=r"data_batch_3 is not a CIFAR python pickle"):
        load_cifar10(data_home=tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match=r"data_batch_3 holds a list, not a dict"):
        load_cifar10(data_home=tmp_path)


class _Payload:
    """Unpickling it would create a file; the reader must refuse first."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_cifar_pickle_cannot_run_code(tmp_path):
    _write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    batch = {b"data": _images_rows(3, 0), b"labels": [0, 1, 2], b"x": _Payload(marker)}
    (tmp_path / "data_batch_4").write_bytes(pickle.dumps(batch))
    pickle.loads((tmp_path / "data_batch_4").read_bytes())  # the payload works...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=r"data_batch_4 .*refers to pathlib"):
        load_cifar10(data_home=tmp_path)  # ...but not through the reader
    assert not marker.exists()


def test_cifar_labels_as_numpy_values(tmp_path):
    _write_cifar10(tmp_path)
    _damage(tmp_path, "test_batch", {b"labels": [np.int64(4), np.uint8(5), 6]})
    _, y = load_cifar10(data_home=tmp_path, subset="test", return_X_y=True)
    np.testing.assert_array_equal(y, [4, 5, 6])
    _damage(tmp_path, "test_batch", {b"labels": np.array([1, 2, 3], np.uint8)})
    _, y = load_cifar10(data_home=tmp_path, subset="test", return_X_y=True)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [1, 2, 3])


def test_cifar_parameters_are_validated(tmp_path):
    with pytest.raises(InvalidParameterError, match="subset"):
        load_cifar10(data_home=tmp_path, subset="validation")
    with pytest.raises(InvalidParameterError, match="label_mode"):
        load_cifar100(data_home=tmp_path, label_mode="medium")
