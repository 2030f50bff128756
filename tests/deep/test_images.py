"""Images as the deep hashers' input: files, uint8 arrays, memory maps.

Generated data only: sklearn's 8 x 8 digits written as PNG files, a uint8
array and a memory-mapped ``.npy`` file.
"""

import pickle
import tracemalloc

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from test_common import FAST_PARAMS  # noqa: E402

import skhash.deep  # noqa: E402
from skhash import HammingNeighbors, HashNetHasher  # noqa: E402
from skhash.deep import (  # noqa: E402
    CenterCrop,
    Compose,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToRGB,
    extract_features,
    imagenet_augmentation,
    imagenet_preprocessing,
)
from skhash.metrics import get_retrieval_scorer  # noqa: E402

HASHERS = [
    getattr(skhash.deep, name)
    for name in skhash.deep.__all__
    if name.endswith("Hasher")
]
# A small MLP on the flattened pixels: every hasher, every input form, fast.
TINY = {"backbone": "mlp", "max_epochs": 1, "batch_size": 16}
N_IMAGES = 40


def tiny(Hasher, **params):
    return Hasher(**{**FAST_PARAMS[Hasher.__name__], **TINY, **params})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    images = np.round(X[:N_IMAGES] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8)
    return images, y[:N_IMAGES]


@pytest.fixture(scope="module")
def forms(digits, tmp_path_factory):
    """The same images as PNG paths, (n, H, W, C) and (n, C, H, W) arrays, a
    memory map and float rows in [0, 1]."""
    images, y = digits
    folder = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, image in enumerate(images):
        path = folder / f"digit_{i:02d}.png"
        Image.fromarray(image, mode="L").save(path)
        paths.append(str(path))
    np.save(folder / "images.npy", images[..., None])
    rows = images.reshape(N_IMAGES, -1).astype(np.float32) / np.float32(255)
    return {
        "paths": np.array(paths, dtype=object),
        "hwc": images[..., None],
        "chw": np.ascontiguousarray(images[:, None]),
        "memmap": np.load(folder / "images.npy", mmap_mode="r"),
        "rows": rows,
    }, y


@pytest.mark.parametrize("Hasher", HASHERS, ids=lambda cls: cls.__name__)
def test_every_form_gives_the_same_codes(Hasher, forms):
    X, y = forms
    codes = {}
    for form in ("paths", "hwc", "chw", "memmap", "rows"):
        params = {"input_shape": (1, 8, 8)} if form == "rows" else {}
        hasher = tiny(Hasher, random_state=0, **params).fit(X[form], y)
        assert hasher.sample_shape_ == (1, 8, 8)
        assert hasher.n_features_in_ == 64
        codes[form] = hasher.transform(X[form])
        # Any form encodes, whatever form trained.
        np.testing.assert_array_equal(hasher.transform(X["paths"]), codes[form])
        np.testing.assert_array_equal(hasher.transform(X["rows"]), codes[form])
    assert codes["paths"].shape == (N_IMAGES, -(-hasher.n_bits // 8))
    for form, form_codes in codes.items():
        np.testing.assert_array_equal(form_codes, codes["paths"], err_msg=form)


def test_pipeline_and_grid_search_over_paths(forms):
    X, y = forms
    pipe = Pipeline(
        [("hash", tiny(HashNetHasher, random_state=0)), ("nn", HammingNeighbors())]
    )
    search = GridSearchCV(
        pipe,
        {"hash__n_bits": [4, 8]},
        scoring=get_retrieval_scorer("map"),
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(X["paths"], y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (2,) and ((scores > 0) & (scores <= 1)).all()
    assert search.best_estimator_.named_steps["hash"].sample_shape_ == (1, 8, 8)
    assert search.predict(X["paths"][:5]).shape == (5,)


def test_same_seed_same_codes_with_augmentation_and_workers(forms):
    X, y = forms
    augmentation = Compose(
        [RandomResizedCrop(8, scale=(0.5, 1.0)), RandomHorizontalFlip()]
    )
    params = {"augmentation": augmentation, "random_state": 3, "max_epochs": 2}
    fitted = [
        tiny(HashNetHasher, num_workers=workers, **params).fit(X["paths"], y)
        for workers in (2, 2, 0)
    ]
    codes = [hasher.transform(X["paths"]) for hasher in fitted]
    np.testing.assert_array_equal(codes[0], codes[1])
    # Seeded per image, not per worker: the same batches with no worker.
    np.testing.assert_array_equal(codes[0], codes[2])
    plain = tiny(HashNetHasher, random_state=3, max_epochs=2).fit(X["paths"], y)
    weights = fitted[0].net_.module_.state_dict()
    assert any(
        not torch.equal(value, weights[name])
        for name, value in plain.net_.module_.state_dict().items()
    ), "the augmentation changed nothing in training"


def test_augmentation_must_give_the_preprocessing_shape(forms):
    X, y = forms
    hasher = tiny(HashNetHasher, augmentation=RandomResizedCrop(6))
    with pytest.raises(ValueError, match="augmentation gives samples of shape"):
        hasher.fit(X["hwc"], y)
    assert not hasattr(hasher, "sample_shape_")


def test_a_memmap_larger_than_the_budget_encodes_within_it(tmp_path):
    # 16,384 colour images of 64 x 64: 201 MB on disk, never in memory.
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.uint8, shape=(16_384, 64, 64, 3)
    )
    pattern = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    for start in range(0, len(big), 2048):
        big[start : start + 2048] = (
            pattern + np.arange(2048, dtype=np.uint8)[:, None, None, None]
        )
    big.flush()
    del big
    X = np.load(path, mmap_mode="r")
    y = np.arange(len(X)) % 4
    hasher = HashNetHasher(
        8,
        backbone="mlp",
        hidden_layer_sizes=(),
        max_epochs=1,
        batch_size=512,
        device="cpu",
        random_state=0,
    )
    budget = 50 * 2**20  # the Python heap (NumPy's arrays included)
    assert X.nbytes > 3.5 * budget
    # Fitted on a part (a memory-mapped slice: streamed too), encoded whole.
    hasher.fit(X[:1024], y[:1024])
    tracemalloc.start()
    try:
        codes = hasher.transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert codes.shape == (16_384, 1) and hasher.n_features_in_ == 64 * 64 * 3
    assert peak < budget, f"transform held {peak / 2**20:.0f} MiB"
    # The same codes as a slice read at once.
    np.testing.assert_array_equal(hasher.transform(np.array(X[:100])), codes[:100])


def _write(path, image):
    image.save(path)
    return str(path)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda d: str(d / "missing.png"), FileNotFoundError, "missing.png"),
        (
            lambda d: (
                (d / "corrupt.png").write_bytes(b"not a PNG") and d / "corrupt.png"
            ),
            ValueError,
            "corrupt.png",
        ),
        (
            lambda d: _write(d / "alpha.png", Image.new("RGBA", (8, 8))),
            ValueError,
            "alpha.png.*alpha channel",
        ),
        (
            lambda d: _write(
                d / "deep.png", Image.fromarray(np.zeros((8, 8), np.uint16))
            ),
            ValueError,
            "deep.png.*8 bits",
        ),
    ],
    ids=["missing", "corrupt", "alpha", "16-bit"],
)
def test_a_bad_file_is_named_and_leaves_nothing_fitted(
    make, error, match, forms, tmp_path
):
    X, y = forms
    # Last: the error comes in the middle of the epoch, after training began.
    paths = [*X["paths"][:-1], str(make(tmp_path))]
    hasher = tiny(HashNetHasher, random_state=0)
    with pytest.raises(error, match=match):
        hasher.fit(paths, y)
    assert not hasattr(hasher, "net_") and not hasattr(hasher, "n_features_in_")
    with pytest.raises(NotFittedError):
        hasher.transform(X["paths"])
    # A fitted hasher that fails to refit keeps its network.
    hasher.fit(X["paths"], y)
    codes = hasher.transform(X["paths"])
    with pytest.raises(error, match=match):
        hasher.fit(paths, y)
    np.testing.assert_array_equal(hasher.transform(X["paths"]), codes)


def test_palette_images_are_read_as_rgb(tmp_path):
    from skhash.deep._images import read_image_file

    palette = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P")
    image = read_image_file(_write(tmp_path / "palette.png", palette))
    assert image.shape == (3, 8, 8) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0], np.arange(64).reshape(8, 8))


def test_images_of_different_sizes_need_a_resizing_preprocessing(forms, tmp_path):
    X, y = forms
    large = _write(tmp_path / "large.png", Image.new("L", (16, 16), color=200))
    paths = [*X["paths"][:-1], large]
    with pytest.raises(ValueError, match="large.png.*16x16.*different sizes"):
        tiny(HashNetHasher).fit(paths, y)
    # Paths as a NumPy string array (as the readers return them) are named
    # as plain strings.
    with pytest.raises(ValueError, match=f"^(?!.*np.str_).*'{large}'"):
        tiny(HashNetHasher).fit(np.array(paths), y)
    hasher = tiny(HashNetHasher, preprocessing=Resize((8, 8))).fit(paths, y)
    assert hasher.sample_shape_ == (1, 8, 8)
    assert hasher.transform(paths).shape == (N_IMAGES, 1)


def test_rows_stream_through_the_preprocessing_too(forms):
    X, y = forms
    params = {"preprocessing": Resize(6), "random_state": 0}
    on_rows = tiny(HashNetHasher, input_shape=(1, 8, 8), **params)
    codes = on_rows.fit(X["rows"], y).transform(X["rows"])
    assert on_rows.sample_shape_ == (1, 6, 6) and on_rows.n_features_in_ == 64
    on_images = tiny(HashNetHasher, **params).fit(X["chw"], y)
    assert on_images.n_features_in_ == 36
    np.testing.assert_array_equal(on_images.transform(X["chw"]), codes)
    np.testing.assert_array_equal(on_rows.transform(X["paths"]), codes)
    # Rows of images before a preprocessing need input_shape to be read.
    with pytest.raises(ValueError, match="fitted on images with a preprocessing"):
        on_images.transform(X["rows"])
    with pytest.raises(ValueError, match="fitted on feature rows"):
        tiny(HashNetHasher).fit(X["rows"], y).transform(X["paths"])


def test_the_layout_of_image_arrays(forms):
    X, y = forms
    from skhash.deep._images import image_source

    assert image_source(X["hwc"]).channels_last
    assert not image_source(X["chw"]).channels_last
    ambiguous = np.zeros((4, 3, 5, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="input_shape"):
        image_source(ambiguous)
    assert image_source(ambiguous, input_shape=(3, 3, 5)).channels_last
    with pytest.raises(ValueError, match="must be uint8"):
        tiny(HashNetHasher).fit(X["hwc"].astype(np.float32), y)
    # 1-D numbers stay scikit-learn's error; 1-D paths are images.
    with pytest.raises(ValueError, match="2D array"):
        tiny(HashNetHasher).fit(np.arange(10.0), np.arange(10) % 2)


def test_memory_maps_travel_to_workers_as_their_file(forms):
    from skhash.deep._images import ArrayImages

    X, _ = forms
    view = X["memmap"][5:25:2]
    images = ArrayImages(view, channels_last=True)
    data = pickle.dumps(images)
    assert len(data) < 1000  # the location, not the 10 images' bytes
    torch.testing.assert_close(
        pickle.loads(data).read_batch([0, 3]), images.read_batch([0, 3])
    )
    np.testing.assert_array_equal(pickle.loads(data).array, view)


def test_transforms():
    torch.manual_seed(0)
    image = torch.rand(1, 10, 20)
    assert Resize(5)(image).shape == (1, 5, 10)
    assert Resize((4, 6))(image).shape == (1, 4, 6)
    assert CenterCrop(4)(image).shape == (1, 4, 4)
    torch.testing.assert_close(CenterCrop((10, 20))(image), image)
    assert CenterCrop(12)(image).shape == (1, 12, 12)  # zero-padded
    assert ToRGB()(image).shape == (3, 10, 20)
    assert RandomResizedCrop(7)(image).shape == (1, 7, 7)
    torch.testing.assert_close(RandomHorizontalFlip(p=1)(image), image.flip(-1))
    normal = Normalize([0.5], [0.25])(image)
    torch.testing.assert_close(normal, (image - 0.5) / 0.25)
    # Seeded draws repeat.
    crop = RandomResizedCrop(5, scale=(0.1, 0.5))
    first = [torch.manual_seed(1) and crop(image) for _ in range(2)]
    torch.testing.assert_close(first[0], first[1])
    recipe = imagenet_augmentation(8, normalize=True)
    assert recipe(image).shape == (3, 8, 8)
    assert imagenet_preprocessing(8)(image).shape == (3, 8, 8)
    assert "RandomResizedCrop(size=8" in repr(recipe)
    assert pickle.loads(pickle.dumps(recipe)) == recipe


def test_parameters_clone_and_are_validated():
    augmentation = imagenet_augmentation(8)
    hasher = HashNetHasher(augmentation=augmentation, num_workers=2)
    params = clone(hasher).get_params()
    assert params["augmentation"] == augmentation and params["num_workers"] == 2
    assert params["preprocessing"] is None
    with pytest.raises(ValueError, match="num_workers"):
        HashNetHasher(num_workers=-1).fit(np.ones((4, 2)), [0, 1, 0, 1])


def test_skops_saves_skhash_transforms_as_data_and_refuses_others(forms, tmp_path):
    sio = pytest.importorskip("skops.io")
    from skhash.persistence import dump, load

    X, y = forms
    preprocessing = Compose([Resize(10), CenterCrop(8), Normalize([0.5], [0.5])])
    hasher = tiny(HashNetHasher, preprocessing=preprocessing, random_state=0)
    hasher.fit(X["paths"], y)
    dump(hasher, tmp_path / "hasher.skops")
    untrusted = sio.get_untrusted_types(file=tmp_path / "hasher.skops")
    assert not [name for name in untrusted if "transform" in name]
    loaded = load(tmp_path / "hasher.skops")
    assert loaded.preprocessing == preprocessing
    np.testing.assert_array_equal(
        loaded.transform(X["paths"]), hasher.transform(X["paths"])
    )
    hasher.set_params(preprocessing=np.negative)
    with pytest.raises(TypeError, match="preprocessing other than skhash's"):
        dump(hasher, tmp_path / "custom.skops")
    # Pickle carries any picklable callable.
    assert pickle.loads(pickle.dumps(hasher)).preprocessing is np.negative


def test_onnx_export_is_refused_with_a_preprocessing(forms):
    X, y = forms
    pytest.importorskip("onnxruntime")
    from skhash.onnx import to_onnx

    hasher = tiny(HashNetHasher, preprocessing=Resize(8)).fit(X["hwc"], y)
    with pytest.raises(TypeError, match="preprocessing"):
        to_onnx(hasher, X["rows"][:1])
    # Augmentation is training-only: the network is the whole model.
    hasher.set_params(preprocessing=None, augmentation=RandomHorizontalFlip())
    assert to_onnx(hasher, X["rows"][:1]) is not None


def test_extract_features_from_files_equals_from_rows(forms):
    X, _ = forms
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    from_rows = extract_features(
        backbone, X["rows"], input_shape=(1, 8, 8), device="cpu", batch_size=16
    )
    from_files = extract_features(
        backbone, X["paths"], device="cpu", batch_size=16, num_workers=2
    )
    assert from_rows.shape == (N_IMAGES, 72)
    np.testing.assert_array_equal(from_files, from_rows)
    resized = extract_features(
        backbone, X["memmap"], device="cpu", preprocessing=Resize(6)
    )
    assert resized.shape == (N_IMAGES, 2 * 4 * 4)
