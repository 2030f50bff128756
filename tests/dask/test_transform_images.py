"""skhash.dask.transform over images: a Dask array of paths, a bag of paths,
a 4-D uint8 Dask array; on the session's cluster of two worker processes.

Generated data only: 40 random 16 x 16 RGB images written as PNG files.
"""

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest

from skhash import HashNetHasher, LSHHasher

pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
skhash_dask = pytest.importorskip("skhash.dask")

N_IMAGES = 40
CHUNKS = (10, 15, 0, 15)  # uneven, with an empty block
# 12 bits: two bytes, the second padded. A small MLP on the pixels, one epoch.
FAST = {
    "n_bits": 12,
    "backbone": "mlp",
    "hidden_layer_sizes": (8,),
    "max_epochs": 1,
    "batch_size": 16,
    "device": "cpu",
    "random_state": 0,
}


@pytest.fixture(scope="module")
def images():
    """The images, (n, H, W, C) uint8, and their classes."""
    rng = np.random.default_rng(0)
    y = np.arange(N_IMAGES) % 4
    # Each class its own mean colour, so that the codes are not all alike.
    colours = rng.integers(40, 215, size=(4, 1, 1, 3))
    noise = rng.integers(-40, 40, size=(N_IMAGES, 16, 16, 3))
    return np.clip(colours[y] + noise, 0, 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def paths(images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")  # on this machine: the workers' too
    found = []
    for i, image in enumerate(images[0]):
        path = folder / f"image_{i:02d}.png"
        Image.fromarray(image).save(path)
        found.append(str(path))
    return np.array(found, dtype=object)


@pytest.fixture(scope="module")
def hasher(paths, images):
    return HashNetHasher(**FAST).fit(paths, images[1])


@pytest.fixture(scope="module")
def expected(hasher, paths):
    codes = hasher.transform(paths)
    assert len(np.unique(codes, axis=0)) > 1  # not a comparison of constants
    return codes


@pytest.mark.parametrize("dtype", [object, str])
def test_a_dask_array_of_paths(client, hasher, paths, expected, dtype):
    X = da.from_array(paths.astype(dtype), chunks=(CHUNKS,))
    codes = skhash_dask.transform(hasher, X)
    assert isinstance(codes, da.Array)
    assert codes.chunks == (CHUNKS, (2,)) and codes.dtype == np.uint8
    np.testing.assert_array_equal(codes.compute(), expected)


def test_a_dask_series_of_paths(client, hasher, paths, expected):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X = dd.from_pandas(pd.Series(list(paths)), npartitions=3)  # strings
    codes = skhash_dask.transform(hasher, X)
    assert codes.chunks == ((14, 13, 13), (2,))
    np.testing.assert_array_equal(codes.compute(), expected)


def test_a_bag_of_paths(client, hasher, paths, expected):
    # str and Path elements, partitions of 10 paths, in the bag's order.
    bag = db.from_sequence(list(paths), npartitions=4).map(Path)
    codes = skhash_dask.transform(hasher, bag)
    assert isinstance(codes, da.Array)
    # The partitions' lengths are counted: chunks known, as from an array.
    assert codes.chunks == ((10, 10, 10, 10), (2,))
    np.testing.assert_array_equal(codes.compute(), expected)
    # An empty partition, and a partition of one path.
    parts = [[], list(paths[:39]), [paths[39]]]
    bag = db.from_delayed([dask.delayed(part) for part in parts])
    np.testing.assert_array_equal(
        skhash_dask.transform(hasher, bag).compute(), expected
    )


@pytest.mark.parametrize("layout", ["hwc", "chw"])
def test_a_dask_array_of_images(client, hasher, images, expected, layout):
    array = images[0] if layout == "hwc" else images[0].transpose(0, 3, 1, 2)
    # Chunked along the pixels too: merged into whole images, rows kept.
    X = da.from_array(np.ascontiguousarray(array), chunks=(CHUNKS, 8, 8, 2))
    codes = skhash_dask.transform(hasher, X)
    assert codes.chunks == (CHUNKS, (2,))
    np.testing.assert_array_equal(codes.compute(), expected)


def test_a_missing_file_is_named(client, hasher, paths):
    missing = paths.copy()
    missing[17] = str(Path(paths[17]).with_name("no_such_image.png"))
    for X in (da.from_array(missing, chunks=10), db.from_sequence(missing)):
        codes = skhash_dask.transform(hasher, X)  # lazy: nothing read yet
        with pytest.raises(FileNotFoundError, match="no_such_image.png"):
            codes.compute()


def test_a_bag_of_other_things_than_paths(client, hasher, paths):
    bag = db.from_sequence([*paths[:5], 7, *paths[5:]], npartitions=2)
    with pytest.raises(TypeError, match="str or os.PathLike; found int 7"):
        skhash_dask.transform(hasher, bag).compute()


def test_a_classical_hasher_is_refused_before_computing(paths, images):
    rows = images[0].reshape(N_IMAGES, -1) / 255
    lsh = LSHHasher(8, random_state=0).fit(rows)
    inputs = {
        "image paths": da.from_array(paths, chunks=10),
        "a bag of image paths": db.from_sequence(paths),
        "a 4-D array of images": da.from_array(images[0], chunks=10),
    }
    for what, X in inputs.items():
        with pytest.raises(ValueError, match=f"LSHHasher encodes feature rows.*{what}"):
            skhash_dask.transform(lsh, X)
    # Its rows still encode.
    codes = skhash_dask.transform(lsh, da.from_array(rows, chunks=10))
    np.testing.assert_array_equal(codes.compute(), lsh.transform(rows))


def test_a_deep_hasher_fitted_on_rows_refuses_images(paths, images):
    rows = images[0].reshape(N_IMAGES, -1).astype(np.float32) / 255
    on_rows = HashNetHasher(**FAST).fit(rows, images[1])
    codes = skhash_dask.transform(on_rows, da.from_array(paths, chunks=10))
    # Its own error, from the first block encoded.
    with pytest.raises(ValueError, match="fitted on feature rows"):
        codes.compute(scheduler="sync")


@pytest.mark.parametrize("kind", ["paths", "bag", "images"])
def test_the_hasher_enters_the_graph_once(hasher, paths, images, kind):
    marked = copy.deepcopy(hasher)
    marked.marker_ = "a-string-found-only-in-this-hasher"
    X = {
        "paths": da.from_array(paths, chunks=4),
        "bag": db.from_sequence(paths, npartitions=10),
        "images": da.from_array(images[0], chunks=(4, 8, 8, 3)),
    }[kind]
    graph = dict(skhash_dask.transform(marked, X).__dask_graph__())
    holding = [
        key for key, task in graph.items() if b"only-in-this" in pickle.dumps(task)
    ]
    assert len(holding) == 1
    assert len(graph) > 10


def test_what_is_refused(hasher, paths, images):
    with pytest.raises(TypeError, match="DataFrame"):
        skhash_dask.transform(hasher, db.from_sequence(paths), id_column="id")
    with pytest.raises(ValueError, match="got an array of shape \\(40, 16, 48\\)"):
        skhash_dask.transform(hasher, da.from_array(images[0].reshape(40, 16, 48)))
    with pytest.raises(ValueError, match="2-D feature rows, a 1-D array of image"):
        skhash_dask.transform(hasher, da.arange(40, chunks=10))
