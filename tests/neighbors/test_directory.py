"""A search saved as a directory reopens mapped, without rebuilding its tables,
and answers as before; a directory whose parts are missing, truncated, from
another index or of an unknown format is refused, naming the part, and one
crafted to pass those checks still never lets a kernel read out of bounds."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from skhash import HammingNeighbors
from skhash.neighbors import HammingIndex, _directory, load_index, save_index
from skhash.neighbors import _multi_index as multi_index
from skhash.neighbors._snapshot import mapped_path

N_CODES = 3000


def _codes(n_codes=N_CODES, n_bytes=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (20, n_bytes), np.uint8)
    noise = rng.random((n_codes, 8 * n_bytes)) < 0.05
    flips = np.packbits(noise, axis=1)[:, :n_bytes]
    return centres[rng.integers(0, 20, n_codes)] ^ flips


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted HammingNeighbors with labels and every table, and its directory."""
    codes = _codes()
    nn = HammingNeighbors(n_neighbors=4, radius=3, algorithm="multi_index")
    nn.fit(codes, np.arange(N_CODES) % 7)
    path = save_index(nn, tmp_path_factory.mktemp("saved") / "index")
    return nn, Path(path)


def _copy(path, tmp_path):
    """A copy of a saved directory to spoil."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in os.listdir(path):
        (copy / name).write_bytes((path / name).read_bytes())
    return copy


def _assert_same_answers(got, want, queries):
    for X in (queries, None):
        for a, b in zip(got.kneighbors(X), want.kneighbors(X), strict=True):
            np.testing.assert_array_equal(a, b)
        a = got.radius_neighbors_graph(X, mode="distance", sort_results=True)
        b = want.radius_neighbors_graph(X, mode="distance", sort_results=True)
        assert (a != b).nnz == 0


def test_reopens_mapped_with_identical_answers(saved):
    nn, path = saved
    path = os.fspath(path)
    reopened = load_index(path)
    assert type(reopened) is HammingNeighbors
    assert reopened.get_params() == nn.get_params()
    index, engine = reopened.index_, reopened.index_._engines["multi_index"]
    # Every part is a mapping of its file, nothing read into memory.
    for array, name in [
        (index.codes, "codes.npy"),
        (index.labels, "labels.npy"),
        (engine.offsets, "multi_index_offsets.npy"),
        (engine.ids, "multi_index_ids.npy"),
    ]:
        assert mapped_path(array) == os.path.join(path, name)
    queries = _codes(40, seed=1)
    _assert_same_answers(reopened, nn, queries)
    np.testing.assert_array_equal(reopened.predict(queries), nn.predict(queries))
    y = np.arange(40) % 7
    assert reopened.score(queries, y) == nn.score(queries, y)
    np.testing.assert_array_equal(reopened.classes_, nn.classes_)
    assert engine.built.all()  # checked by the searches, in place


def test_reopening_never_builds_a_table(saved, monkeypatch):
    nn, path = saved

    def build_table(*args):
        raise AssertionError("a table was built")

    monkeypatch.setattr(multi_index, "build_table", build_table)
    reopened = load_index(path)
    assert not reopened.index_._engines["multi_index"].built.any()
    _assert_same_answers(reopened, nn, _codes(20, seed=2))


@pytest.mark.parametrize(
    "n_bytes, labels, algorithm",
    [(16, "multi-label", "auto"), (5, None, "multi_index"), (8, "classes", "brute")],
)
def test_every_kind_of_index_round_trips(tmp_path, n_bytes, labels, algorithm):
    codes = _codes(2000, n_bytes, seed=n_bytes)
    rng = np.random.default_rng(0)
    y = {
        None: None,
        "classes": np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 2000)],
        "multi-label": (rng.random((2000, 4)) < 0.3).astype(np.uint8),
    }[labels]
    nn = HammingNeighbors(n_neighbors=3, radius=2, algorithm=algorithm).fit(codes, y)
    path = save_index(nn, tmp_path / "index")
    # The tables go with a search that may use them, and only then.
    has_tables = algorithm != "brute"
    assert os.path.exists(os.path.join(path, "multi_index_ids.npy")) == has_tables
    for mmap_mode in ("r", None):
        reopened = load_index(path, mmap_mode=mmap_mode)
        assert (mapped_path(reopened.index_.codes) is not None) == (mmap_mode == "r")
        _assert_same_answers(reopened, nn, _codes(30, n_bytes, seed=3))
        if y is not None:
            queries = codes[:50]
            np.testing.assert_array_equal(
                reopened.predict(queries), nn.predict(queries)
            )


def test_a_hamming_index_round_trips(tmp_path):
    codes = _codes()
    index = HammingIndex(codes, algorithm="multi_index")
    path = save_index(index, tmp_path / "index")
    reopened = load_index(path, verify=True)
    assert type(reopened) is HammingIndex
    assert reopened._engines["multi_index"].built.all()  # verify checks them all
    queries = codes[:25]
    for got, want in zip(
        reopened.kneighbors(queries, 5, exclude=np.arange(25)),
        index.kneighbors(queries, 5, exclude=np.arange(25)),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)


def test_save_replaces_a_saved_index_and_nothing_else(saved, tmp_path):
    nn, _ = saved
    path = tmp_path / "index"
    save_index(HammingNeighbors().fit(_codes(100)), path)
    save_index(nn, path)
    assert load_index(path).n_samples_fit_ == N_CODES
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no temporary left
    (tmp_path / "notes").mkdir()
    with pytest.raises(FileExistsError, match="not a saved index"):
        save_index(nn, tmp_path / "notes")
    with pytest.raises(ValueError, match="not fitted"):
        save_index(HammingNeighbors(), tmp_path / "other")
    objects = np.array(["a", "b"] * 50, dtype=object)
    with pytest.raises(ValueError, match="labels are Python objects"):
        save_index(HammingNeighbors().fit(_codes(100), objects), tmp_path / "other")


def test_an_interrupted_save_leaves_nothing_that_loads(saved, tmp_path, monkeypatch):
    nn, _ = saved
    path = tmp_path / "index"
    save_index(HammingNeighbors().fit(_codes(100)), path)
    write = _directory._write

    def write_then_crash(file, array):
        if file.endswith("labels.npy"):
            raise OSError("disk full")
        return write(file, array)

    monkeypatch.setattr(_directory, "_write", write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save_index(nn, path)
    with pytest.raises(OSError, match="disk full"):
        save_index(nn, tmp_path / "new")
    assert sorted(os.listdir(tmp_path)) == ["index"]
    assert load_index(path).n_samples_fit_ == 100  # the index it replaced


def test_a_failed_swap_puts_the_old_index_back(tmp_path, monkeypatch):
    path = tmp_path / "index"
    save_index(HammingNeighbors().fit(_codes(100)), path)
    rename = os.rename

    def failing_rename(source, target):
        if str(target) == str(path):
            raise OSError("no space left")
        return rename(source, target)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="no space left"):
        save_index(HammingNeighbors().fit(_codes(50)), path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["index"]
    assert load_index(path).n_samples_fit_ == 100


def _spoil_by_truncating(path, other):
    ids = path / "multi_index_ids.npy"
    ids.write_bytes(ids.read_bytes()[:-4096])


def _spoil_by_removing(path, other):
    (path / "labels.npy").unlink()


def _spoil_by_swapping_codes(path, other):
    (path / "codes.npy").write_bytes((other / "codes.npy").read_bytes())


def _spoil_by_swapping_tables(path, other):
    for name in ("multi_index_offsets.npy", "multi_index_ids.npy"):
        (path / name).write_bytes((other / name).read_bytes())


def _spoil_by_swapping_metadata(path, other):
    (path / "metadata.json").write_bytes((other / "metadata.json").read_bytes())


def _spoil_by_changing_classes(path, other):
    np.save(path / "classes.npy", np.arange(1, 8))  # as large as the saved ones


def _spoil_by_changing_the_header(path, other):
    codes = np.load(path / "codes.npy")
    np.save(path / "codes.npy", codes.reshape(-1, 4))  # same size, other shape


SPOILED = {
    _spoil_by_truncating: "multi_index_ids.npy: the file has .* bytes",
    _spoil_by_removing: "labels.npy: the file is missing",
    _spoil_by_swapping_codes: "codes.npy: its sampled blocks are not",
    _spoil_by_swapping_tables: "multi_index_offsets.npy: its sampled blocks",
    _spoil_by_swapping_metadata: "sampled blocks are not those saved",
    _spoil_by_changing_classes: "classes.npy: its SHA-256 is not",
    _spoil_by_changing_the_header: "codes.npy: its sampled blocks",
}


@pytest.mark.parametrize("spoil", SPOILED, ids=lambda spoil: spoil.__name__[10:])
def test_a_spoiled_directory_is_refused_naming_the_part(saved, tmp_path, spoil):
    nn, path = saved
    # Another index of the same size and kind: its parts fit every shape.
    other = save_index(
        HammingNeighbors(n_neighbors=4, radius=3, algorithm="multi_index").fit(
            _codes(seed=9), np.arange(N_CODES) % 7
        ),
        tmp_path / "other",
    )
    copy = _copy(path, tmp_path)
    spoil(copy, Path(other))
    with pytest.raises(ValueError, match=f"refused: .*{SPOILED[spoil]}"):
        load_index(copy)


def _rewrite_metadata(path, change):
    metadata = json.loads((path / "metadata.json").read_text())
    change(metadata)
    (path / "metadata.json").write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(format_version=2), "format version is 2; skhash"),
        (lambda m: m.update(format="other"), "metadata.json is unreadable"),
        (lambda m: m.update(n_codes=N_CODES + 1), "metadata.json is damaged"),
        (lambda m: m["params"].update(n_neighbors=-1), "n_neighbors"),
        (lambda m: m["parts"].pop("labels"), "metadata.json is damaged"),
        (lambda m: m["parts"]["codes"].update(dtype="<u2"), "codes.npy: it holds"),
        (
            lambda m: m["multi_index"].update(substring_bits=[12, 12]),
            r"substrings of \[12, 12\] bits, where this skhash cuts \[11, 11, 11",
        ),
    ],
)
def test_metadata_that_does_not_fit_is_refused(saved, tmp_path, change, message):
    _, path = saved
    copy = _copy(path, tmp_path)
    _rewrite_metadata(copy, change)
    with pytest.raises(ValueError, match=message):
        load_index(copy)
    (copy / "metadata.json").unlink()
    with pytest.raises(ValueError, match="metadata.json is missing"):
        load_index(copy)


def _rehash(path):
    """A change of metadata.json that makes its checksums those of the files."""

    def rehash(metadata):
        for name, part in metadata["parts"].items():
            file = os.fspath(path / f"{name}.npy")
            part["sample"] = _directory._sampled_digest(file)
            part["sha256"] = _directory._sha256(file)

    return rehash


def _ids_past_the_database(path):
    ids = np.load(path / "multi_index_ids.npy")
    ids[0, ::97] = N_CODES + 10**7
    np.save(path / "multi_index_ids.npy", ids)


def _huge_offsets(path):
    offsets = np.load(path / "multi_index_offsets.npy")
    offsets[0, 5::11] = 2**31 - 1
    np.save(path / "multi_index_offsets.npy", offsets)


def _ids_swapped_between_buckets(path):
    # Still a permutation, offsets untouched: two codes in each other's
    # buckets, where a search would miss them.
    ids = np.load(path / "multi_index_ids.npy")
    ids[0, [0, -1]] = ids[0, [-1, 0]]
    np.save(path / "multi_index_ids.npy", ids)


@pytest.mark.parametrize(
    "craft", [_ids_past_the_database, _huge_offsets, _ids_swapped_between_buckets]
)
def test_crafted_tables_raise_rather_than_crash(saved, tmp_path, craft):
    # Whoever writes the tables can write matching checksums: such a
    # directory opens, and its first search that reads the table raises.
    _, path = saved
    copy = _copy(path, tmp_path)
    craft(copy)
    _rewrite_metadata(copy, _rehash(copy))
    reopened = load_index(copy)
    with pytest.raises(ValueError, match="table 0 .*damaged or was altered"):
        reopened.radius_neighbors(_codes(5, seed=4), radius=30)
    with pytest.raises(ValueError, match="table 0 .*damaged or was altered"):
        load_index(copy, verify=True)


def test_tables_changed_after_opening_are_refused(saved, tmp_path):
    # The kernels index with the tables: a search checks their files as it
    # checks the codes', and refuses files written since they were opened.
    _, path = saved
    copy = _copy(path, tmp_path)
    reopened = load_index(copy)
    reopened.kneighbors(_codes(3, seed=5))
    ids = copy / "multi_index_ids.npy"
    stat = ids.stat()
    os.utime(ids, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="mapped as search tables, has changed"):
        reopened.kneighbors(_codes(3, seed=5))


def test_parameters_and_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    codes = pd.DataFrame(_codes(200), columns=[f"byte{i}" for i in range(8)])
    nn = HammingNeighbors(n_neighbors=np.int64(2), n_jobs=np.int32(1)).fit(codes)
    reopened = load_index(save_index(nn, tmp_path / "index"))
    assert reopened.get_params() == nn.get_params()
    np.testing.assert_array_equal(reopened.feature_names_in_, nn.feature_names_in_)
    for got, want in zip(reopened.kneighbors(codes), nn.kneighbors(codes), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
def test_randomly_crafted_tables_never_crash(saved, tmp_path, seed):
    # Random values written into the tables, checksums rewritten to match:
    # every search either raises ValueError or stays in bounds.
    _, path = saved
    copy = _copy(path, tmp_path)
    rng = np.random.default_rng(seed)
    name = ["multi_index_offsets.npy", "multi_index_ids.npy"][seed % 2]
    table = np.load(copy / name)
    spots = rng.integers(0, table.size, 1 + seed)
    table.flat[spots] = rng.integers(-(2**31), 2**31, len(spots))
    np.save(copy / name, table)
    _rewrite_metadata(copy, _rehash(copy))
    reopened = load_index(copy)
    queries = _codes(20, seed=seed)
    for search in (
        lambda: reopened.kneighbors(queries),
        lambda: reopened.radius_neighbors(queries, radius=20),
    ):
        with pytest.raises(ValueError, match="damaged or was altered"):
            search()


@pytest.mark.parametrize("classes", [[0, 1, 2, 3, 4, 5, 7], [-1, 0, 1, 2, 3, 4, 5]])
def test_classes_that_are_not_the_labels_are_refused_at_predict(
    saved, tmp_path, classes
):
    # classes.npy is read whole and its SHA-256 checked; one rewritten with
    # its checksum loads (the labels are not read to compare), and a vote
    # that meets a label it lacks raises rather than count it for another.
    _, path = saved
    copy = _copy(path, tmp_path)
    np.save(copy / "classes.npy", np.array(classes, dtype=np.int64))
    _rewrite_metadata(copy, _rehash(copy))
    reopened = load_index(copy)
    queries = _codes(50, seed=11)
    with pytest.raises(ValueError, match="not one of classes_.*damaged or was"):
        reopened.predict(queries)
