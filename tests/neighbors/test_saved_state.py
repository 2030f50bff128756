"""A saved HammingNeighbors that loads can be trusted: its state and its
multi-index tables are checked against its codes when loaded, and a database
changed after fit is refused rather than searched with stale engines.

The tampered files below crashed the process (ids past the database, huge
bucket offsets) or loaded and answered wrongly (the other cases) before these
checks; each must now fail to load with a clear ValueError.
"""

import copyreg
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from skhash import HammingNeighbors
from skhash.neighbors import HammingIndex
from skhash.persistence import dump, load

N_CODES = 2000


@pytest.fixture(scope="module")
def fitted():
    codes = np.random.default_rng(0).integers(0, 256, (N_CODES, 8), np.uint8)
    nn = HammingNeighbors(algorithm="multi_index").fit(codes, np.arange(N_CODES) % 5)
    nn.radius_neighbors(codes[:10], radius=12)  # builds every table
    assert "multi_index_tables" in nn.index_.__getstate__()
    return nn


# Each tampering changes the estimator's saved state or its index's.
def _ids_past_the_database(estimator, index):
    index["multi_index_tables"]["ids"][0, ::97] = N_CODES + 10**7


def _huge_offsets(estimator, index):
    index["multi_index_tables"]["offsets"][0, 5::11] = 2**31 - 1


def _shuffled_ids(estimator, index):
    ids = index["multi_index_tables"]["ids"]
    ids[:] = np.random.default_rng(1).permuted(ids, axis=1)


def _zero_offsets(estimator, index):
    index["multi_index_tables"]["offsets"][:] = 0


def _changed_rows(estimator, index):
    index["codes"][::2] ^= np.uint8(0xA5)


def _more_samples(estimator, index):
    estimator["n_samples_fit_"] += 10


def _fewer_features(estimator, index):
    estimator["n_features_in_"] = 4


def _unsorted_classes(estimator, index):
    estimator["classes_"] = estimator["classes_"][::-1].copy()


TAMPERINGS = [
    (_ids_past_the_database, "not a permutation"),
    (_huge_offsets, "does not span|decreasing"),
    (_shuffled_ids, "digest"),
    (_zero_offsets, "does not span"),
    (_changed_rows, "digest"),
    (_more_samples, "n_samples_fit_=2010"),
    (_fewer_features, "n_features_in_=4"),
    (_unsorted_classes, "classes_"),
]


def _states(estimator):
    """The saved states of an estimator and of its index, as copies."""
    estimator = pickle.loads(pickle.dumps(estimator))
    state = estimator.__getstate__()
    return state, state["index_"].__getstate__()


@pytest.mark.parametrize(("tamper", "match"), TAMPERINGS)
def test_a_tampered_pickle_does_not_load(fitted, tamper, match):
    state, index = _states(fitted)
    tamper(state, index)
    state["index_"] = _Crafted(HammingIndex, index)
    payload = pickle.dumps(_Crafted(HammingNeighbors, state))
    with pytest.raises(ValueError, match="damaged or was altered") as error:
        pickle.loads(payload)
    assert error.match(match)


class _Crafted:
    """Pickles as an object of class ``cls`` with the given state, as a
    crafted file would hold it."""

    def __init__(self, cls, state):
        self.cls, self.state = cls, state

    def __reduce__(self):
        return copyreg._reconstructor, (self.cls, object, None), self.state


@pytest.mark.parametrize(("tamper", "match"), TAMPERINGS)
def test_a_tampered_skops_file_does_not_load(fitted, tamper, match):
    # Rewrite the arrays and values inside the zip, as an attacker would: no
    # untrusted type is involved, so skops builds the estimator.
    original = io.BytesIO()
    dump(fitted, original)
    states = _states(fitted)
    tampered = _states(fitted)
    tamper(*tampered)
    changed = {}
    for state, new in zip(states, tampered, strict=True):
        tables = new.pop("multi_index_tables", {})
        changed.update(
            (key, value)
            for key, value in [*new.items(), *tables.items()]
            if key != "index_" and not _same(_get(state, key), value)
        )
    assert changed
    with zipfile.ZipFile(original) as source:
        files = {name: source.read(name) for name in source.namelist()}
    schema = json.loads(files["schema.json"])
    for key, value in changed.items():
        node = _node(schema, key)
        if node["__loader__"] == "NdArrayNode":
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            files[node["file"]] = buffer.getvalue()
        else:
            node["content"] = json.dumps(
                value.item() if hasattr(value, "item") else value
            )
    files["schema.json"] = json.dumps(schema).encode()
    crafted = io.BytesIO()
    with zipfile.ZipFile(crafted, "w") as target:
        for name, data in files.items():
            target.writestr(name, data)
    crafted.seek(0)
    with pytest.raises(ValueError, match="damaged or was altered") as error:
        load(crafted)
    assert error.match(match)


def _get(state, key):
    return state[key] if key in state else state["multi_index_tables"][key]


def _same(a, b):
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _node(schema, key):
    """The schema node of attribute (or table) ``key``, wherever it is."""
    if isinstance(schema, dict):
        content = schema.get("content")
        if isinstance(content, dict) and key in content:
            return content[key]
        for value in schema.values():
            node = _node(value, key)
            if node is not None:
                return node
    return None


def test_untampered_files_load_with_their_tables(fitted):
    queries = fitted.get_database()[0][:50]
    expected = fitted.kneighbors(queries)
    file = io.BytesIO()
    dump(fitted, file)
    file.seek(0)
    for loaded in (pickle.loads(pickle.dumps(fitted)), load(file)):
        assert "multi_index_tables" in loaded.index_.__getstate__()
        for got, want in zip(loaded.kneighbors(queries), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def _mapped(path, codes):
    np.save(path, codes)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("algorithm", ["auto", "brute", "multi_index"])
def test_a_mapped_database_rewritten_after_fit_is_refused(tmp_path, algorithm):
    # Another writer rewrites half the rows of the file after the first
    # search built the engines: every algorithm refuses to answer, rather
    # than the tables mixing old candidates with new distances.
    path = tmp_path / "codes.npy"
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (3000, 8), np.uint8)
    nn = HammingNeighbors(algorithm=algorithm).fit(_mapped(path, codes))
    nn.kneighbors(codes[:20])
    nn.radius_neighbors(codes[:20], radius=3)
    writer = np.load(path, mmap_mode="r+")
    writer[::2] = rng.integers(0, 256, (1500, 8), np.uint8)
    writer.flush()
    for search in (
        lambda: nn.kneighbors(codes[:20]),
        lambda: nn.radius_neighbors(codes[:20], radius=3),
        lambda: nn.kneighbors(),
    ):
        with pytest.raises(ValueError, match="changed since fit"):
            search()
    # Fitting again searches the file as it is now.
    refit = HammingNeighbors(algorithm=algorithm).fit(np.load(path, mmap_mode="r"))
    reference = HammingNeighbors(algorithm="brute").fit(np.array(writer))
    for got, want in zip(
        refit.kneighbors(codes[:20]), reference.kneighbors(codes[:20]), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_a_mapped_database_truncated_after_fit_is_refused(tmp_path):
    # Reading past the end of a mapping is SIGBUS: the size is checked first.
    path = tmp_path / "codes.npy"
    codes = np.random.default_rng(3).integers(0, 256, (3000, 8), np.uint8)
    nn = HammingNeighbors().fit(_mapped(path, codes))
    nn.kneighbors(codes[:5])
    with open(path, "r+b") as file:
        file.truncate(1000)
    with pytest.raises(ValueError, match="changed since fit"):
        nn.kneighbors(codes[:5])


def test_codes_changed_in_memory_after_fit_are_refused():
    codes = np.random.default_rng(4).integers(0, 256, (500, 8), np.uint8)
    nn = HammingNeighbors(algorithm="multi_index").fit(codes)
    nn.radius_neighbors(codes[:5], radius=2)
    codes[:] = codes[::-1]
    with pytest.raises(ValueError, match="changed since fit"):
        nn.radius_neighbors(codes[:5], radius=2)


def test_a_file_from_before_the_search_core_is_refused_clearly(fitted):
    state = pickle.loads(pickle.dumps(fitted)).__getstate__()
    index = state.pop("index_")
    state["_fit_X"], state["_fit_y"] = index.codes, index.labels
    with pytest.raises(ValueError, match="earlier skhash"):
        pickle.loads(pickle.dumps(_Crafted(HammingNeighbors, state)))
