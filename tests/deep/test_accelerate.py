"""Data-parallel training of the deep hashers with Hugging Face Accelerate.

On CPUs: one process (an ``Accelerator(cpu=True)`` in the test process), and
two processes launched by ``torchrun`` on the gloo backend. Several GPUs are
not tested here (see the user guide, "Scaling out").
"""

import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

torch = pytest.importorskip("torch")
accelerate = pytest.importorskip("accelerate")

from skhash import GreedyHashHasher, HashNetHasher, OrthoHashHasher  # noqa: E402
from skhash.deep._engine import BaseDeepHasher, _module_arrays  # noqa: E402
from skhash.utils import all_estimators  # noqa: E402

FAST = {"n_bits": 16, "max_epochs": 2, "batch_size": 32, "hidden_layer_sizes": (16,)}
SCRIPT = Path(__file__).with_name("_accelerate_script.py")
ROOT = Path(__file__).parents[2]
# Discovered, so that a new deep hasher is checked too.
DEEP = [cls for _, cls in all_estimators() if issubclass(cls, BaseDeepHasher)]


@pytest.fixture(scope="module")
def accelerator():
    return accelerate.Accelerator(cpu=True)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:256], y[:256]


@pytest.mark.parametrize("Hasher", DEEP, ids=lambda cls: cls.__name__)
def test_every_deep_hasher_has_the_parameter(Hasher):
    assert issubclass(Hasher, BaseDeepHasher)
    assert Hasher().get_params()["accelerator"] is None
    assert "accelerator" in Hasher._parameter_constraints


def test_the_accelerator_survives_get_params_and_clone(accelerator):
    hasher = HashNetHasher(accelerator=accelerator)
    assert hasher.get_params()["accelerator"] is accelerator
    # Accelerate deep-copies an Accelerator to itself: clones share it.
    assert clone(hasher).accelerator is accelerator


def test_a_bad_accelerator_is_refused(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="'accelerator' parameter"):
        HashNetHasher(accelerator="gpu", **FAST).fit(X, y)


def _frozen_mlp():
    backbone = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU())
    backbone.requires_grad_(False)
    return backbone


@pytest.mark.parametrize(
    "make",
    [
        lambda: HashNetHasher(**FAST),
        # A loss with trained parameters, then batch normalisation's buffers.
        lambda: GreedyHashHasher(**FAST),
        lambda: OrthoHashHasher(**FAST),
        # Only the head trains, on features computed once.
        lambda: HashNetHasher(backbone=_frozen_mlp(), **FAST),
    ],
    ids=["hashnet", "greedyhash", "orthohash", "frozen-backbone"],
)
def test_one_process_trains_exactly_as_without_accelerator(make, accelerator, digits):
    X, y = digits
    torch.manual_seed(0)  # the frozen backbone's weights: the same in both
    plain = make().set_params(device="cpu", random_state=0).fit(X, y)
    torch.manual_seed(0)
    accelerated = make().set_params(accelerator=accelerator, random_state=0)
    accelerated.fit(X, y)

    assert accelerated.accelerator is accelerator  # the parameter, unchanged
    assert accelerated.device_ == "cpu"
    assert not hasattr(accelerated.net_, "accelerator")  # a plain net now
    expected = _module_arrays(plain.net_.module_)
    weights = _module_arrays(accelerated.net_.module_)
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(weights[name], value)
    np.testing.assert_array_equal(
        accelerated.net_.history[:, "train_loss"], plain.net_.history[:, "train_loss"]
    )
    np.testing.assert_array_equal(accelerated.transform(X), plain.transform(X))


def test_saved_without_its_accelerator(accelerator, digits, tmp_path):
    X, y = digits
    hasher = HashNetHasher(accelerator=accelerator, random_state=0, **FAST).fit(X, y)
    codes = hasher.transform(X)

    loaded = pickle.loads(pickle.dumps(hasher))
    assert loaded.accelerator is None
    assert hasher.accelerator is accelerator
    np.testing.assert_array_equal(loaded.transform(X), codes)

    pytest.importorskip("skops.io")
    from skhash.persistence import dump, load

    path = tmp_path / "hasher.skops"
    dump(hasher, path)
    loaded = load(path)
    assert loaded.accelerator is None
    np.testing.assert_array_equal(loaded.transform(X), codes)


def test_state_of_a_wrapped_network_has_the_plain_names():
    network = torch.nn.Linear(3, 2)
    assert _module_arrays(torch.nn.DataParallel(network)).keys() == {"weight", "bias"}


def _can_listen_on_localhost():
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
    except OSError:
        return False
    return True


def _script():
    spec = importlib.util.spec_from_file_location("_accelerate_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """What two CPU processes (gloo) training data-parallel wrote."""
    if not _can_listen_on_localhost():
        pytest.skip("torchrun needs a TCP port on localhost, which cannot be bound")
    out = tmp_path_factory.mktemp("accelerate")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(SCRIPT), str(out)]
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return out, reports


def test_two_processes_train_one_model(two_processes):
    _, (first, second) = two_processes
    assert first["num_processes"] == second["num_processes"] == 2
    for name in ("hashnet", "greedyhash", "frozen"):
        # Each process trained on half of every epoch's 20 mini-batches...
        assert first[name]["batches"] == second[name]["batches"] == 10
        # ...and DistributedDataParallel kept the replicas equal (the frozen
        # backbones too, which each process drew differently: rank 0's won).
        assert first[name]["network"] == second[name]["network"]
        assert first[name]["loss"] == second[name]["loss"]
    assert first["hashnet_again"] == first["hashnet"]  # the same seed, the same fit


def test_two_processes_need_the_same_seed(two_processes):
    _, reports = two_processes
    for report in reports:
        assert "same int on every process" in report["refused_without_seed"]


@pytest.mark.parametrize("name", ["hashnet", "greedyhash", "frozen"])
def test_two_process_fit_encodes_alone_after_loading(two_processes, name):
    out, (first, _) = two_processes
    script = _script()
    X, _ = script.data()
    hasher = pickle.loads((out / f"{name}.pkl").read_bytes())
    assert hasher.accelerator is None
    assert script.digest(hasher.net_.module_) == first[name]["network"]
    codes = hasher.transform(X)  # in this process, without any process group
    assert codes.dtype == np.uint8 and codes.shape == (len(X), 2)
    np.testing.assert_array_equal(codes, np.load(out / f"{name}_codes.npy"))
    assert len(np.unique(codes, axis=0)) > 1
