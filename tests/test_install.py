"""The core install: everything but the deep hashers works without torch.

``pip install skhash`` brings no PyTorch and no skorch (the ``deep`` extra
does). The script below exercises the core in a process where torch and skorch
cannot be imported, first by hiding them from this environment, then (slow) in
a fresh virtual environment that has only the core's dependencies.
"""

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DEEP_PACKAGES = {"torch", "skorch"}

# Run as ``python script.py [--hide-torch] [fitted.pkl]``: with --hide-torch,
# importing torch or skorch fails as it does where neither is installed.
SCRIPT = textwrap.dedent(
    """
    import contextlib
    import importlib.abc
    import io
    import pickle
    import sys


    class HideDeepPackages(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "skorch"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    args = sys.argv[1:]
    if "--hide-torch" in args:
        args.remove("--hide-torch")
        sys.meta_path.insert(0, HideDeepPackages())
    for name in ("torch", "skorch"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise AssertionError(f"{name} can be imported here")

    import numpy as np
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    import skhash
    from skhash import (
        CCAITQHasher,
        ClassifierCodes,
        HammingNeighbors,
        ITQHasher,
        KSHHasher,
        LSHHasher,
        SpectralHasher,
        STHHasher,
    )
    from skhash.datasets import make_hashing_blobs
    from skhash.metrics import (
        get_retrieval_scorer,
        mean_average_precision,
        precision_within_radius,
    )

    X, y = make_hashing_blobs(120, n_features=16, n_classes=4, random_state=0)
    X_query, y_query = X[:20], y[:20]

    # Every classical hasher fits and encodes.
    hashers = [
        LSHHasher(16, random_state=0),
        ITQHasher(8, random_state=0),
        CCAITQHasher(3, random_state=0),
        SpectralHasher(8),
        KSHHasher(8, n_anchors=20, random_state=0),
        STHHasher(8, random_state=0),
        ClassifierCodes(estimator=LogisticRegression(max_iter=200)),
    ]
    for hasher in hashers:
        codes = hasher.fit(X, y).transform(X)
        assert codes.dtype == np.uint8 and len(codes) == len(X), hasher

    # Search, metrics and scorers.
    hasher = ITQHasher(16, random_state=0).fit(X)
    codes, query_codes = hasher.transform(X), hasher.transform(X_query)
    neighbors = HammingNeighbors(n_neighbors=5).fit(codes, y)
    distances, indices = neighbors.kneighbors(query_codes)
    assert distances.shape == indices.shape == (20, 5)
    distances, indices = neighbors.radius_neighbors(query_codes, radius=2)
    assert len(indices) == 20
    assert neighbors.predict(query_codes).shape == (20,)
    assert 0 <= neighbors.score(query_codes, y_query) <= 1
    assert 0 <= mean_average_precision(query_codes, codes, y_query, y, k=10) <= 1
    assert 0 <= precision_within_radius(query_codes, codes, y_query, y) <= 1
    search = GridSearchCV(
        Pipeline([("hash", LSHHasher(random_state=0)), ("nn", HammingNeighbors())]),
        {"hash__n_bits": [8, 16]},
        scoring=get_retrieval_scorer("map@10"),
        cv=2,
    ).fit(X, y)
    assert 0 <= search.best_score_ <= 1


    def raises_naming_extra(call, extra="skhash[deep]"):
        try:
            call()
        except ImportError as error:
            assert extra in str(error), str(error)
            return str(error)
        raise AssertionError(f"{call} did not raise ImportError")


    def assert_not_fitted(hasher):
        try:
            hasher.transform(X)
        except NotFittedError:
            return
        raise AssertionError(f"{hasher!r} encoded without a network")


    # The deep hashers import, construct, clone, print and pickle; fit says
    # what to install.
    for name in [name for name in skhash.deep.__all__ if name.endswith("Hasher")]:
        hasher = getattr(skhash, name)(16, max_epochs=1)
        assert clone(hasher).get_params() == hasher.get_params()
        assert name in repr(hasher)
        pickle.loads(pickle.dumps(hasher))
        assert_not_fitted(hasher)
        message = raises_naming_extra(lambda: hasher.fit(X, y))
        assert f"{name}.fit" in message, message
        # The fit that could not train left no hasher that seems fitted.
        assert_not_fitted(hasher)

    from skhash.deep import (
        efficientnet_lite0,
        extract_features,
        torchvision_backbone,
    )

    print(raises_naming_extra(efficientnet_lite0, "skhash[deep,pretrained]"))
    raises_naming_extra(lambda: torchvision_backbone(object()))
    raises_naming_extra(lambda: extract_features(object(), X))
    raises_naming_extra(lambda: HammingNeighbors(backend="torch").fit(codes))

    # The main job's deep hashers are a usage error, before any job runs.
    from skhash._cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            main(["--hashers", "lsh", "hashnet", "--bits", "8"])
        except SystemExit as exit:
            assert exit.code == 2, exit.code
        else:
            raise AssertionError("the main job ran deep hashers without torch")
    assert "skhash[deep]" in stderr.getvalue(), stderr.getvalue()

    # A deep hasher fitted elsewhere does not load without torch.
    if args:
        with open(args[0], "rb") as file:
            raises_naming_extra(lambda: pickle.load(file))

    for name in ("torch", "skorch"):
        assert name not in sys.modules, name
    print("core install OK")
    """
)


def _run(python, tmp_path, *args, env=None):
    script = tmp_path / "core_install.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [python, str(script), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "core install OK" in result.stdout


def _pickled_deep_hasher(tmp_path):
    """A fitted HashNetHasher pickled to a file, or None without torch here."""
    try:
        import skorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return None
    from skhash import HashNetHasher
    from skhash.datasets import make_hashing_blobs

    X, y = make_hashing_blobs(60, n_features=8, n_classes=3, random_state=0)
    hasher = HashNetHasher(8, max_epochs=1, random_state=0).fit(X, y)
    path = tmp_path / "hashnet.pkl"
    path.write_bytes(pickle.dumps(hasher))
    return path


def _names(requirements):
    return {Requirement(text).name for text in requirements}


def _extras_of_self(requirements):
    """The extras that ``skhash[...]`` entries of an extra pull in."""
    extras = set()
    for text in requirements:
        requirement = Requirement(text)
        if requirement.name == "skhash":
            extras |= requirement.extras
    return extras


def test_core_dependencies_leave_torch_to_the_deep_extra():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _names(project["dependencies"])
    assert not core & DEEP_PACKAGES
    assert {"numpy", "scipy", "scikit-learn", "numba"} <= core
    extras = project["optional-dependencies"]
    assert DEEP_PACKAGES <= _names(extras["deep"])
    # What needs torch pulls in the deep extra, the tests and docs included.
    for extra in ("pretrained", "accelerate", "tests", "docs"):
        assert "deep" in _extras_of_self(extras[extra]), extra


def test_core_works_with_torch_and_skorch_hidden(tmp_path):
    pickled = _pickled_deep_hasher(tmp_path)
    _run(
        sys.executable,
        tmp_path,
        "--hide-torch",
        *([str(pickled)] if pickled else []),
    )


@pytest.mark.slow
def test_core_install_in_a_fresh_environment(tmp_path):
    """``pip install`` without extras, from this machine's package index, in
    an environment that sees none of this one's packages."""
    # An editable install, as the README's, of a copy: installing the working
    # tree would write there (egg-info). The copy keeps the files' times and
    # __pycache__, where numba's cache of compiled kernels stays valid.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "skhash", source / "skhash")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = str(environment / "bin" / "python")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-compile", "-e", source],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if install.returncode != 0:
        # No package index reachable (an offline machine without a local
        # one) is not a failure of skhash; anything else is.
        output = install.stdout + install.stderr
        if "No matching distribution found" in output and (
            "Could not fetch" in output or "NewConnectionError" in output
        ):
            pytest.skip(f"no package index: {output[-500:]}")
        raise AssertionError(output)
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.split()}
    assert "skhash" in installed
    assert not installed & DEEP_PACKAGES, installed
    pickled = _pickled_deep_hasher(tmp_path)
    _run(python, tmp_path, *([str(pickled)] if pickled else []), env=env)
