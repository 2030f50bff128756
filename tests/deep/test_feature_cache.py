"""``feature_cache``: a frozen backbone's features kept on disk per image.

Generated data only (sklearn's 8 x 8 digits as PNG files, uint8 arrays, a
memory map and float rows) and a tiny frozen convolution as the backbone.
Every fit counts the images whose features it computes by wrapping
``extract_features``, the one place a frozen backbone runs over images.
"""

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
from torch import nn  # noqa: E402

import skhash.deep  # noqa: E402
from skhash import HashNetHasher  # noqa: E402
from skhash.deep import (  # noqa: E402
    Normalize,
    RandomHorizontalFlip,
    _feature_cache,
    _pretrained,
)
from skhash.metrics import get_retrieval_scorer  # noqa: E402

N_IMAGES = 36
FAST = {"max_epochs": 2, "batch_size": 12, "device": "cpu", "random_state": 0}
FORMS = ("paths", "hwc", "memmap", "rows")


def frozen_backbone(padding=0):
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=padding), nn.ReLU(), nn.Flatten()
    )
    return backbone.requires_grad_(False)


@pytest.fixture(scope="module")
def images():
    X, y = load_digits(return_X_y=True)
    images = np.round(X[:N_IMAGES] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8)
    return images, y[:N_IMAGES]


@pytest.fixture
def forms(images, tmp_path):
    """The same images as PNG paths, an (n, H, W, C) array, a memory map and
    float rows (fresh files for each test: some tests change them)."""
    images, y = images
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i, image in enumerate(images):
        path = folder / f"digit_{i:02d}.png"
        Image.fromarray(image, mode="L").save(path)
        paths.append(str(path))
    np.save(folder / "images.npy", images[..., None])
    return {
        "paths": np.array(paths, dtype=object),
        "hwc": images[..., None].copy(),
        "memmap": np.load(folder / "images.npy", mmap_mode="r"),
        "rows": images.reshape(N_IMAGES, -1).astype(np.float32) / np.float32(255),
    }, y


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def computed(monkeypatch):
    """The number of images whose features each computation (one per fit
    that misses the cache) computes."""
    counts = []
    extract = _pretrained.extract_features

    def counting(backbone, X, **params):
        counts.append(len(X))
        return extract(backbone, X, **params)

    monkeypatch.setattr(_pretrained, "extract_features", counting)
    return counts


def hasher(cache=None, backbone=None, Hasher=HashNetHasher, **params):
    params = {"n_bits": 8, **FAST, **params}
    backbone = frozen_backbone() if backbone is None else backbone
    return Hasher(backbone=backbone, feature_cache=cache, **params)


def fit_params(form):
    return {"input_shape": (1, 8, 8)} if form == "rows" else {}


def chunks(cache):
    return sorted(Path(cache).glob("*/[!.]*/keys.npy"))


@pytest.mark.parametrize("form", FORMS)
def test_the_second_fit_reads_the_cache_and_gives_the_same_codes(
    form, forms, computed, cache
):
    X, y = forms
    params = fit_params(form)
    plain = hasher(**params).fit(X[form], y).transform(X[form])
    first = hasher(cache, **params).fit(X[form], y)
    assert computed == [N_IMAGES, N_IMAGES]
    second = hasher(cache, **params).fit(X[form], y)
    assert computed == [N_IMAGES, N_IMAGES]  # nothing computed
    np.testing.assert_array_equal(first.transform(X[form]), plain)
    np.testing.assert_array_equal(second.transform(X[form]), plain)
    (model,) = [path for path in cache.iterdir() if path.is_dir()]
    assert model.name.startswith("Sequential-")
    assert (model / "model.json").exists() and len(chunks(cache)) == 1
    features = np.load(next(model.glob("*/features.npy")), allow_pickle=False)
    assert features.dtype == np.float32 and features.shape == (N_IMAGES, 144)


@pytest.mark.parametrize("form", ["paths", "rows"])
def test_a_grid_search_computes_each_image_once(form, forms, computed, cache):
    X, y = forms
    search = GridSearchCV(
        hasher(cache, **fit_params(form)),
        {"n_bits": [4, 8, 12]},
        scoring=get_retrieval_scorer("map"),
        cv=3,
    ).fit(X[form], y)
    # The first fold computes two thirds, the second the last third; the
    # other seven fits and the refit read them all.
    assert computed == [2 * N_IMAGES // 3, N_IMAGES // 3]
    assert search.best_estimator_.transform(X[form]).shape[0] == N_IMAGES


def test_each_distinct_image_is_computed_once(forms, computed, cache):
    X, y = forms
    rows = np.concatenate([X["rows"], X["rows"][:6]])
    codes = hasher(cache, input_shape=(1, 8, 8)).fit(rows, [*y, *y[:6]])
    assert computed == [N_IMAGES]
    np.testing.assert_array_equal(codes.transform(rows[-6:]), codes.transform(rows[:6]))


def test_another_model_is_a_miss(forms, computed, cache):
    X, y = forms
    hasher(cache).fit(X["paths"], y)
    changed = frozen_backbone()
    with torch.no_grad():
        changed[0].weight[0, 0, 0, 0] += 1e-3
    hasher(cache, backbone=changed).fit(X["paths"], y)
    # Same weights, another setting that the weights do not show.
    hasher(cache, backbone=frozen_backbone(padding=1)).fit(X["paths"], y)
    hasher(cache, preprocessing=Normalize([0.5], [0.5])).fit(X["paths"], y)
    hasher(cache, preprocessing=Normalize([0.5], [0.25])).fit(X["paths"], y)
    assert computed == [N_IMAGES] * 5
    models = [path for path in cache.iterdir() if path.is_dir()]
    assert len(models) == 5
    # Each model reads its own features back.
    hasher(cache, backbone=changed).fit(X["paths"], y)
    hasher(cache, preprocessing=Normalize([0.5], [0.25])).fit(X["paths"], y)
    assert computed == [N_IMAGES] * 5


def test_a_changed_image_is_a_miss(forms, computed, cache):
    X, y = forms
    for form in ("paths", "hwc", "rows"):
        hasher(cache, **fit_params(form)).fit(X[form], y)
    assert computed == [N_IMAGES] * 3
    computed.clear()
    paths = X["paths"]
    stat = os.stat(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    Image.fromarray(np.full((8, 8), 7, np.uint8), mode="L").save(paths[1])
    hasher(cache).fit(paths, y)
    array = X["hwc"].copy()
    array[2, 3, 4, 0] ^= 1
    hasher(cache).fit(array, y)
    rows = X["rows"].copy()
    rows[3, 5] += np.float32(1e-6)
    hasher(cache, input_shape=(1, 8, 8)).fit(rows, y)
    assert computed == [2, 1, 1]
    # A memory map of the same images has their keys: nothing to compute.
    hasher(cache).fit(X["memmap"][::2], y[::2])
    assert computed == [2, 1, 1]


def _damage(chunk, how):
    features_file, keys_file = chunk / "features.npy", chunk / "keys.npy"
    features = np.load(features_file)
    if how == "truncated":
        size = features_file.stat().st_size
        with open(features_file, "r+b") as file:
            file.truncate(size // 2)
    elif how == "dtype":
        np.save(features_file, features.astype(np.float64))
    elif how == "shape":
        np.save(features_file, features[:-1])
    elif how == "non-finite":
        features[3, 7] = np.nan
        np.save(features_file, features)
    elif how == "keys":
        keys_file.write_bytes(b"\x93NUMPY not quite")
    elif how == "missing":
        features_file.unlink()


@pytest.mark.parametrize(
    "how", ["truncated", "dtype", "shape", "non-finite", "keys", "missing"]
)
def test_a_damaged_chunk_is_named_removed_and_computed_again(
    how, forms, computed, cache
):
    X, y = forms
    plain = hasher().fit(X["paths"], y).transform(X["paths"])
    hasher(cache).fit(X["paths"], y)
    (keys_file,) = chunks(cache)
    _damage(keys_file.parent, how)
    with pytest.warns(UserWarning, match="damaged") as caught:
        damaged = hasher(cache).fit(X["paths"], y)
    assert keys_file.parent.name in str(caught[0].message)
    np.testing.assert_array_equal(damaged.transform(X["paths"]), plain)
    # Written again whole: the next fit reads it without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hasher(cache).fit(X["paths"], y)
    assert computed == [N_IMAGES, N_IMAGES, N_IMAGES]


def test_an_interrupted_write_leaves_nothing_that_loads(
    forms, computed, cache, monkeypatch
):
    X, y = forms

    sync = _feature_cache.sync

    def interrupted(file):
        if file.name.endswith("features.npy"):
            raise KeyboardInterrupt  # after the features, before the keys
        sync(file)

    estimator = hasher(cache)
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(_feature_cache, "sync", interrupted)
        estimator.fit(X["paths"], y)
    assert not hasattr(estimator, "net_")
    (model,) = cache.iterdir()
    assert [path.name for path in model.iterdir()] == ["model.json"]
    # A fit killed before its rename leaves a hidden folder: never read.
    hasher(cache).fit(X["paths"], y)
    (chunk,) = [path for path in model.iterdir() if path.is_dir()]
    chunk.rename(model / f".{chunk.name}.0123.partial")
    hasher(cache).fit(X["paths"], y)
    assert computed == [N_IMAGES, N_IMAGES, N_IMAGES]


def test_not_used_where_features_are_not_computed_once(forms, computed, cache):
    X, y = forms
    trainable = frozen_backbone().requires_grad_(True)
    for estimator in (
        hasher(cache, backbone=trainable),
        hasher(cache, backbone="cnn"),
        hasher(cache, augmentation=RandomHorizontalFlip()),
    ):
        with pytest.warns(UserWarning, match="does not use its cache"):
            estimator.fit(X["hwc"], y)
    with pytest.warns(UserWarning, match="cannot be pickled"):
        hasher(cache, preprocessing=lambda image: image).fit(X["hwc"], y)
    assert computed == [N_IMAGES] and not cache.exists()


def test_the_parameter_clones_pickles_and_is_validated(forms, cache, tmp_path):
    X, y = forms
    estimator = hasher(cache)
    assert clone(estimator).get_params()["feature_cache"] == cache
    estimator.fit(X["hwc"], y)
    loaded = pickle.loads(pickle.dumps(estimator))
    assert loaded.feature_cache == cache
    np.testing.assert_array_equal(
        loaded.transform(X["hwc"]), estimator.transform(X["hwc"])
    )
    # Every deep hasher takes it, through the shared base.
    for name in skhash.deep.__all__:
        if name.endswith("Hasher"):
            assert getattr(skhash.deep, name)().get_params()["feature_cache"] is None
    with pytest.raises(ValueError, match="feature_cache"):
        hasher(3).fit(X["hwc"], y)
    (tmp_path / "features.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="not a directory"):
        hasher(tmp_path / "features.npy").fit(X["hwc"], y)


def test_skops_and_onnx_keep_working(forms, cache, tmp_path):
    X, y = forms
    pytest.importorskip("skops.io")
    from skhash.persistence import dump, load

    estimator = HashNetHasher(8, backbone="mlp", feature_cache=cache, **FAST)
    with pytest.warns(UserWarning, match="does not use its cache"):
        estimator.fit(X["rows"], y)
    dump(estimator, tmp_path / "hasher.skops")
    loaded = load(tmp_path / "hasher.skops")
    # A path is saved as the str it names: skops files hold no pathlib type.
    assert loaded.feature_cache == str(cache)
    np.testing.assert_array_equal(
        loaded.transform(X["rows"]), estimator.transform(X["rows"])
    )
    pytest.importorskip("onnxruntime")
    from skhash.onnx import to_onnx

    frozen = hasher(cache / "cache", input_shape=(1, 8, 8)).fit(X["rows"], y)
    assert to_onnx(frozen, X["rows"][:1]) is not None


@pytest.mark.parametrize(
    "Hasher",
    [getattr(skhash.deep, name) for name in skhash.deep.__all__ if "Hasher" in name],
    ids=lambda cls: cls.__name__,
)
def test_every_deep_hasher_reads_its_features_back(Hasher, forms, computed, cache):
    from test_common import FAST_PARAMS

    X, y = forms
    params = {**FAST_PARAMS[Hasher.__name__], **FAST}
    params.pop("hidden_layer_sizes", None)
    first = hasher(cache, Hasher=Hasher, **params).fit(X["hwc"], y)
    second = hasher(cache, Hasher=Hasher, **params).fit(X["hwc"], y)
    assert computed == [N_IMAGES]
    np.testing.assert_array_equal(first.transform(X["hwc"]), second.transform(X["hwc"]))
