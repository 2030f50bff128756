"""Safe persistence with skops: every estimator, pipelines, untrusted files.

Estimators are discovered, so a new public estimator is saved, loaded and
compared here without any change to this file.
"""

import io
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_common import FAST_PARAMS

from skhash import HammingNeighbors, HashNetHasher, LSHHasher
from skhash.base import BaseHasher
from skhash.persistence import dump, get_trusted_types, load
from skhash.utils import all_estimators

sio = pytest.importorskip("skops.io")
from skops.io.exceptions import UntrustedTypesFoundException  # noqa: E402

ESTIMATORS = all_estimators()
DEEP = {"max_epochs": 1, "device": "cpu"}
# Nothing from these may appear in a file: its loading would run their code.
FORBIDDEN_MODULES = ("torch", "skorch", "numba", "faiss")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:80], y[:80]


@pytest.fixture(scope="module")
def codes(digits):
    X, y = digits
    return LSHHasher(24, random_state=0).fit_transform(X), y


def _fitted(name, cls, digits, codes):
    params = dict(FAST_PARAMS[name])
    if "max_epochs" in cls().get_params():
        params.update(DEEP)
    estimator = cls(**params)
    # Every hasher gets labels: unsupervised ones ignore them, and DSTHHasher
    # then trains its backbone on them first, the longer path to rebuild.
    return estimator.fit(*(digits if issubclass(cls, BaseHasher) else codes))


def _outputs(estimator, X):
    """Everything an estimator computes, to compare before and after loading."""
    if isinstance(estimator, BaseHasher):
        return [estimator.transform(X)]
    codes, y = X
    return [
        *estimator.kneighbors(codes[:10]),
        *estimator.kneighbors(),
        *estimator.radius_neighbors(codes[:10], radius=4, sort_results=True),
        estimator.predict(codes[:10]),
        estimator.score(codes[:20], y[:20]),
    ]


def _assert_same_outputs(first, second):
    for a, b in zip(first, second, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype == object:  # radius_neighbors: one array per query
            for row_a, row_b in zip(a, b, strict=True):
                np.testing.assert_array_equal(row_a, row_b)
        else:
            np.testing.assert_array_equal(a, b)


def _schema_types(data):
    """(module, class) of every node of a skops file."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found, stack = set(), [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node:
                found.add((node["__module__"], node["__class__"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _assert_safe_file(data):
    assert set(sio.get_untrusted_types(data=data)) <= set(get_trusted_types())
    types = _schema_types(data)
    assert not [t for t in types if t[0].split(".")[0] in FORBIDDEN_MODULES]
    # Raw bytes would be an opaque blob, such as a pickle, inside the file.
    assert ("builtins", "bytes") not in types


def test_trusted_types_are_exactly_the_public_estimators_and_the_search_core():
    from skhash.neighbors import HammingIndex

    expected = {f"{cls.__module__}.{cls.__name__}" for _, cls in ESTIMATORS}
    expected.add(f"{HammingIndex.__module__}.{HammingIndex.__name__}")
    trusted = get_trusted_types()
    assert trusted == sorted(expected)


def test_import_skhash_imports_neither_skops_nor_torch():
    code = (
        "import sys, skhash, skhash.persistence; "
        "skhash.persistence.get_trusted_types(); "
        "assert not {'skops', 'torch', 'numba'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[n for n, _ in ESTIMATORS])
def test_round_trip_gives_identical_outputs(name, cls, digits, codes):
    estimator = _fitted(name, cls, digits, codes)
    X = digits[0] if isinstance(estimator, BaseHasher) else codes
    expected = _outputs(estimator, X)
    data = sio.dumps(estimator)
    _assert_safe_file(data)
    loaded = sio.loads(data, trusted=get_trusted_types())
    assert type(loaded) is cls
    assert loaded.get_params() == estimator.get_params()
    _assert_same_outputs(_outputs(loaded, X), expected)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[n for n, _ in ESTIMATORS])
def test_unfitted_round_trip(name, cls):
    data = sio.dumps(cls(**FAST_PARAMS[name]))
    _assert_safe_file(data)
    loaded = sio.loads(data, trusted=get_trusted_types())
    assert loaded.get_params() == cls(**FAST_PARAMS[name]).get_params()


@pytest.mark.parametrize("labels", ["classes", "strings", "multilabel"])
def test_hamming_neighbors_with_labels(labels, codes):
    codes, y = codes
    y = {
        "classes": y,
        "strings": np.array(list("abcdefghij"))[y],
        "multilabel": np.column_stack([y == 3, y % 2 == 0, y > 6]).astype(int),
    }[labels]
    nn = HammingNeighbors(n_neighbors=4, radius=3, algorithm="multi_index")
    nn.fit(codes, y).radius_neighbors(codes[:5])
    # Derived search structures exist before saving; they are rebuilt, not saved.
    assert nn.index_._engines
    expected = _outputs(nn, (codes, y))
    data = sio.dumps(nn)
    _assert_safe_file(data)
    _assert_same_outputs(_outputs(load(io.BytesIO(data)), (codes, y)), expected)


def test_pipeline_of_scaler_deep_hasher_and_neighbors(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(),
        HashNetHasher(16, hidden_layer_sizes=(16,), random_state=0, **DEEP),
        HammingNeighbors(n_neighbors=3),
    ).fit(X[:60], y[:60])
    data = sio.dumps(pipe)
    _assert_safe_file(data)
    loaded = sio.loads(data, trusted=get_trusted_types())
    np.testing.assert_array_equal(loaded.predict(X[60:]), pipe.predict(X[60:]))
    assert loaded.score(X[60:], y[60:]) == pipe.score(X[60:], y[60:])
    np.testing.assert_array_equal(loaded[:-1].transform(X), pipe[:-1].transform(X))


class _Scaler(StandardScaler):
    """A type skhash does not vouch for."""


def test_a_file_with_another_type_does_not_load(digits, tmp_path):
    X, y = digits
    pipe = make_pipeline(_Scaler(), LSHHasher(8, random_state=0), HammingNeighbors())
    path = tmp_path / "model.skops"
    dump(pipe.fit(X, y), path)
    assert f"{__name__}._Scaler" in sio.get_untrusted_types(file=path)
    with pytest.raises(UntrustedTypesFoundException, match="_Scaler"):
        load(path)
    with pytest.raises(UntrustedTypesFoundException, match="_Scaler"):
        sio.load(path, trusted=get_trusted_types())
    loaded = load(path, trusted=[_Scaler])
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


def test_a_torch_optimizer_class_must_be_trusted_explicitly(tmp_path):
    torch = pytest.importorskip("torch")
    hasher = HashNetHasher(8, optimizer=torch.optim.SGD)
    dump(hasher, tmp_path / "model.skops")
    with pytest.raises(UntrustedTypesFoundException, match="torch.optim.sgd.SGD"):
        load(tmp_path / "model.skops")
    assert load(tmp_path / "model.skops", trusted=[torch.optim.SGD]).optimizer is (
        torch.optim.SGD
    )


def _torch_objects(value, torch):
    """Tensors, modules and optimisers anywhere inside a saved state."""
    if isinstance(value, (torch.Tensor, torch.nn.Module, torch.optim.Optimizer)):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [found for item in value for found in _torch_objects(item, torch)]
    return []


def test_deep_state_is_arrays_and_loading_keeps_the_seed_and_refits(digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    hasher = HashNetHasher(8, hidden_layer_sizes=(16,), random_state=0, **DEEP)
    codes = hasher.fit(X, y).transform(X)
    for state in (hasher.__getstate__(), hasher.__reduce_ex__(4)[2]):
        assert "net_" not in state and not _torch_objects(state, torch)
        assert all(isinstance(a, np.ndarray) for a in state["_net_weights"].values())
    seed_state = torch.random.get_rng_state()
    loaded = sio.loads(sio.dumps(hasher), trusted=get_trusted_types())
    assert torch.equal(torch.random.get_rng_state(), seed_state)
    assert loaded.net_.history[:, "train_loss"] == hasher.net_.history[:, "train_loss"]
    # fit trains from scratch, so the same seed gives the same codes again.
    np.testing.assert_array_equal(loaded.fit(X, y).transform(X), codes)


def test_changed_architecture_after_fit_fails_clearly(digits):
    pytest.importorskip("torch")
    X, y = digits
    hasher = HashNetHasher(8, hidden_layer_sizes=(16,), random_state=0, **DEEP)
    data = sio.dumps(hasher.fit(X, y).set_params(hidden_layer_sizes=(12,)))
    with pytest.raises(ValueError, match="changed after fit"):
        sio.loads(data, trusted=get_trusted_types())


def test_user_module_backbone_needs_pickle(digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    backbone = torch.nn.Sequential(torch.nn.Linear(64, 12), torch.nn.Tanh())
    hasher = HashNetHasher(8, backbone=backbone, random_state=0, **DEEP)
    with pytest.raises(TypeError, match="pickle or joblib"):
        sio.dumps(hasher)
    codes = hasher.fit(X, y).transform(X)
    with pytest.raises(TypeError, match="pickle or joblib"):
        sio.dumps(hasher)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(hasher)).transform(X), codes
    )


def test_model_trained_on_cuda_loads_on_the_cpu(digits, monkeypatch):
    torch = pytest.importorskip("torch")
    X, y = digits
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hasher = HashNetHasher(16, hidden_layer_sizes=(16,), random_state=0, **DEEP)
    hasher.set_params(device=device).fit(X, y)
    codes = hasher.transform(X)
    # Where no GPU trained it, the file still says one did.
    hasher.device_ = "cuda"
    data, pickled = sio.dumps(hasher), pickle.dumps(hasher)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for loaded in (sio.loads(data, trusted=get_trusted_types()), pickle.loads(pickled)):
        assert loaded.net_.device == "cpu" and loaded.device_ == "cuda"
        assert next(loaded.net_.module_.parameters()).device.type == "cpu"
        np.testing.assert_array_equal(loaded.transform(X), codes)


def test_missing_skops_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match=r"skhash\[skops\]"):
        dump(LSHHasher(), io.BytesIO())
