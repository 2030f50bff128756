"""scikit-learn's common checks over every public estimator skhash has."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)
from sklearn.utils.validation import validate_data

import skhash
from skhash import HammingNeighbors
from skhash.utils import all_estimators


class _HammingNeighborsOnFeatures(HammingNeighbors):
    """HammingNeighbors that reads each real feature as one byte of code.

    The common checks feed real-valued features, which HammingNeighbors rejects
    (it takes packed uint8 codes). This adapter replaces only that input
    validation with a deterministic map from features to bytes, so every check
    exercises HammingNeighbors' own fitting, searching, pickling and parameter
    handling.
    """

    def _validate_codes(self, X, *, reset):
        X = validate_data(self, X, reset=reset)
        return ((np.abs(X) * 37).astype(np.int64) % 256).astype(np.uint8)


# Small, fast settings per estimator: the checks fit on ~20-30 samples with a
# handful of features.
_DEEP = {"max_epochs": 2, "batch_size": 8, "hidden_layer_sizes": (8,), "device": "cpu"}
FAST_PARAMS = {
    "CCAITQHasher": {"n_bits": 2, "n_iter": 5, "random_state": 0},
    "ClassifierCodes": {"n_bits": 12},
    "CSQHasher": {"n_bits": 3, **_DEEP, "random_state": 0},
    "DPNHasher": {"n_bits": 3, **_DEEP, "random_state": 0},
    "GreedyHashHasher": {"n_bits": 3, **_DEEP, "random_state": 0},
    "OrthoHashHasher": {"n_bits": 3, **_DEEP, "random_state": 0},
    "DNNHHasher": {"n_bits": 3, "slice_size": 4, **_DEEP, "random_state": 0},
    "DSHHasher": {"n_bits": 3, **_DEEP, "random_state": 0},
    "DSTHHasher": {"n_bits": 2, "n_neighbors": 5, **_DEEP, "random_state": 0},
    "HashNetHasher": {"n_bits": 3, **_DEEP, "random_state": 0},
    "HammingNeighbors": {"n_neighbors": 3},
    "RescoringNeighbors": {"n_neighbors": 3},
    "ITQHasher": {"n_bits": 2, "n_iter": 5, "random_state": 0},
    "KSHHasher": {"n_bits": 3, "n_anchors": 8, "n_labeled": None, "random_state": 0},
    "LSHHasher": {"n_bits": 4, "random_state": 0},
    "STHHasher": {"n_bits": 2, "n_neighbors": 5, "random_state": 0},
    "SignHasher": {"n_bits": 2},
    "SpectralHasher": {"n_bits": 3},
    "SSHHasher": {"n_bits": 2, "rotation": "itq", "n_iter": 5, "random_state": 0},
}
# Estimators run through the checks in an adapted form (see the class's docstring).
ADAPTED = {"HammingNeighbors": _HammingNeighborsOnFeatures}

# Checks an estimator is known to fail, each with the reason.
EXPECTED_FAILURES = {}


def _fast_instances():
    return [
        ADAPTED.get(name, cls)(**FAST_PARAMS[name]) for name, cls in all_estimators()
    ]


def _expected_failures(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(_fast_instances(), expected_failed_checks=_expected_failures)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", _fast_instances(), ids=type)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


def test_no_public_estimator_escapes_the_checks():
    discovered = {name for name, _ in all_estimators()}
    assert discovered == set(FAST_PARAMS), (
        "Give every public estimator fast parameters in FAST_PARAMS (and remove "
        "entries of estimators that no longer exist)."
    )
    assert set(EXPECTED_FAILURES) <= discovered


def test_every_public_estimator_is_exported_at_top_level():
    for name, cls in all_estimators():
        assert getattr(skhash, name, None) is cls, f"skhash.{name} is missing"
        assert name in skhash.__all__


@pytest.mark.parametrize(
    "heavy", ["torch", "numba", "faiss", "skops", "onnx", "onnxruntime"]
)
def test_import_skhash_does_not_import_heavy_libraries(heavy):
    import subprocess
    import sys

    code = (
        f"import sys, skhash; assert {heavy!r} not in sys.modules, '{heavy} imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
