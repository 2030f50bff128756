"""A user's torch module as backbone: fit trains a copy, never the module."""

import copy
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from skhash import CSQHasher, DSTHHasher, HashNetHasher  # noqa: E402

FAST = {"max_epochs": 2, "batch_size": 32, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:160].astype(np.float32), y[:160]


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.Tanh())


def conv():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())


# Each hasher with a module it trains: rows, images (batch norm's statistics
# move too), and DSTH with and without labels (its features build the graph;
# on images, the module gets images there too, as in the network).
CASES = {
    "hashnet-mlp": (HashNetHasher, mlp, {}, True),
    "hashnet-conv": (HashNetHasher, conv, {"input_shape": (1, 8, 8)}, True),
    "dsth-mlp": (DSTHHasher, mlp, {}, False),
    "dsth-conv": (DSTHHasher, conv, {"input_shape": (1, 8, 8)}, False),
    "dsth-labels": (DSTHHasher, mlp, {}, True),
}


def fit(hasher, X, y, supervised):
    return hasher.fit(X, y) if supervised else hasher.fit(X)


def snapshot(module):
    return {name: value.clone() for name, value in module.state_dict().items()}


def assert_state_equal(module, expected):
    state = module.state_dict()
    assert state.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(state[name], value), name


@pytest.mark.parametrize("case", CASES)
def test_refit_gives_the_same_codes(case, digits):
    Hasher, make, params, supervised = CASES[case]
    X, y = digits
    hasher = Hasher(8, backbone=make(), **params, **FAST)
    first = fit(hasher, X, y, supervised).transform(X)
    # The second fit started from the module's weights, not the first fit's.
    np.testing.assert_array_equal(fit(hasher, X, y, supervised).transform(X), first)


@pytest.mark.parametrize("case", CASES)
def test_fit_leaves_the_users_module_unchanged(case, digits):
    Hasher, make, params, supervised = CASES[case]
    X, y = digits
    module = make()
    before = snapshot(module)
    hasher = fit(Hasher(8, backbone=module, **params, **FAST), X, y, supervised)
    assert_state_equal(module, before)
    assert module.training
    assert all(parameter.requires_grad for parameter in module.parameters())
    assert hasher.backbone is module
    trained = hasher.net_.module_.backbone
    assert trained is not module
    # Its own weights, not views of the user's.
    pointers = {parameter.data_ptr() for parameter in module.parameters()}
    assert not pointers & {parameter.data_ptr() for parameter in trained.parameters()}
    assert any(
        not torch.equal(value, before[name])
        for name, value in trained.state_dict().items()
    )


def test_estimators_sharing_a_module_do_not_interfere(digits):
    X, y = digits
    module = mlp()
    first = HashNetHasher(8, backbone=module, **FAST).fit(X, y)
    codes = first.transform(X)
    second = HashNetHasher(8, backbone=module, **{**FAST, "max_epochs": 4})
    second.fit(X[::-1], y[::-1])
    # Fitting the second left the first's network alone...
    np.testing.assert_array_equal(first.transform(X), codes)
    # ... and the second started where the first did: a third like the first
    # gives the first's codes.
    third = HashNetHasher(8, backbone=module, **FAST).fit(X, y)
    np.testing.assert_array_equal(third.transform(X), codes)


def test_a_frozen_module_is_copied_too(digits):
    # Nothing trains it, but the fitted hasher holds its own copy: moving
    # the user's module to a device, or training it later, changes nothing.
    X, y = digits
    module = mlp().requires_grad_(False)
    before = snapshot(module)
    hasher = CSQHasher(8, backbone=module, **FAST).fit(X, y)
    codes = hasher.transform(X)
    assert hasher.net_.module_.backbone is not module
    assert_state_equal(hasher.net_.module_.backbone, before)
    assert_state_equal(module, before)
    with torch.no_grad():
        module[0].weight.mul_(-1)
    np.testing.assert_array_equal(hasher.transform(X), codes)


def test_a_frozen_batch_norm_keeps_its_statistics(digits):
    # The dry run that finds the features' width ran in training mode: it
    # moved the running statistics of a frozen backbone's batch norm (and
    # failed on a batch of one for BatchNorm1d).
    X, y = digits
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Tanh())
    with torch.no_grad():
        module[1].running_mean.fill_(0.3)
        module[1].running_var.fill_(2.0)
    module.requires_grad_(False)
    before = snapshot(module)
    hasher = HashNetHasher(8, backbone=module, **FAST).fit(X, y)
    assert_state_equal(hasher.net_.module_.backbone, before)


class CountedCopies(nn.Sequential):
    """Counts its deep copies, to pin the one copy per fit."""

    copies = 0

    def __deepcopy__(self, memo):
        type(self).copies += 1
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            clone.__dict__[name] = copy.deepcopy(value, memo)
        return clone


@pytest.mark.parametrize("case", CASES)
def test_one_copy_per_fit(case, digits):
    Hasher, make, params, supervised = CASES[case]
    X, y = digits
    module = CountedCopies(*make())
    CountedCopies.copies = 0
    fit(Hasher(8, backbone=module, **params, **FAST), X, y, supervised)
    assert CountedCopies.copies == 1


def test_pickled_hasher_keeps_the_users_weights_as_its_parameter(digits):
    X, y = digits
    module = mlp()
    before = snapshot(module)
    hasher = HashNetHasher(8, backbone=module, **FAST).fit(X, y)
    codes = hasher.transform(X)
    loaded = pickle.loads(pickle.dumps(hasher))
    np.testing.assert_array_equal(loaded.transform(X), codes)
    # The parameter is the user's module as given, the network the trained
    # one; refitting the loaded hasher gives the same codes again.
    assert loaded.net_.module_.backbone is not loaded.backbone
    assert_state_equal(loaded.backbone, before)
    np.testing.assert_array_equal(loaded.fit(X, y).transform(X), codes)


@pytest.mark.parametrize("backbone_lr", [None, 1e-12])
def test_backbone_lr_is_the_backbones_own_rate(backbone_lr, digits):
    # Fine-tuning recipes train the backbone slower than the new head: with
    # a negligible backbone_lr the backbone stays where it started; without
    # one, it learns at lr as the head does.
    X, y = digits
    module = mlp()
    before = snapshot(module)
    hasher = HashNetHasher(
        8, backbone=module, lr=1e-2, backbone_lr=backbone_lr, **FAST
    ).fit(X, y)
    trained = hasher.net_.module_.backbone.state_dict()
    moved = max(float((trained[name] - before[name]).abs().max()) for name in before)
    if backbone_lr is None:
        assert moved > 1e-3
    else:
        assert moved < 1e-8
