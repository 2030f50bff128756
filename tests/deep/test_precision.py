"""Device settings of the deep hashers: precision, channels_last, compile.

On the CPU: bfloat16 and float16 autocast both run there (torch 2.13), so
both are trained here; CUDA's kernels are measured by
benchmarks/bench_precision.py, not tested. A real ``torch.compile`` takes
about a minute the first time (the C++ compiler), so those tests are slow;
the plumbing of ``compile`` is tested with a stand-in for it.
"""

import copy
import pickle
import shutil
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from skorch.callbacks import Callback  # noqa: E402
from torch import nn  # noqa: E402

from skhash import HashNetHasher  # noqa: E402
from skhash.codes import unpack_codes  # noqa: E402
from skhash.deep import _net  # noqa: E402
from skhash.deep._engine import BaseDeepHasher  # noqa: E402
from skhash.utils import all_estimators  # noqa: E402

DEEP = [cls for _, cls in all_estimators() if issubclass(cls, BaseDeepHasher)]
FAST = {"n_bits": 16, "max_epochs": 2, "batch_size": 32, "hidden_layer_sizes": (16,)}
SHAPE = (3, 12, 12)
IMAGES = {"n_bits": 16, "max_epochs": 2, "batch_size": 32, "input_shape": SHAPE}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16)[:256].astype(np.float32), y[:256]


@pytest.fixture(scope="module")
def images():
    """Flattened 3 x 12 x 12 images whose mean brightness is the class."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 96)
    X = rng.random((96, int(np.prod(SHAPE))), dtype=np.float32) * 0.5
    return X + y[:, None].astype(np.float32) / 8, y


def _valid(codes, n_samples, n_bits=16):
    assert codes.dtype == np.uint8 and codes.shape == (n_samples, -(-n_bits // 8))
    bits = unpack_codes(codes, n_bits)
    assert 0 < bits.mean() < 1  # not every bit constant


class Recorder(nn.Module):
    """A linear backbone that records the autocast state it runs under."""

    def __init__(self, n_features, freeze=False):
        super().__init__()
        self.linear = nn.Linear(n_features, 32)
        self.out_features = 32
        self.seen = []
        if freeze:
            self.requires_grad_(False)

    def forward(self, x):
        output = self.linear(x)
        self.seen.append((torch.is_autocast_enabled("cpu"), output.dtype))
        return torch.relu(output)


# --- precision ---------------------------------------------------------------


@pytest.mark.parametrize("Hasher", DEEP, ids=lambda cls: cls.__name__)
def test_every_deep_hasher_trains_and_encodes_in_bfloat16(Hasher, digits):
    X, y = digits
    hasher = Hasher(precision="bfloat16", random_state=0, **FAST).fit(X, y)
    assert hasher.net_.precision == "bfloat16"
    _valid(hasher.transform(X), len(X))
    # The weights stay float32: what is saved and exported.
    assert all(p.dtype == torch.float32 for p in hasher.net_.module_.parameters())


def test_bfloat16_losses_go_down_as_float32_ones(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 5, "hidden_layer_sizes": (64,), "lr": 3e-3}
    losses = {
        precision: HashNetHasher(precision=precision, random_state=0, **params)
        .fit(X, y)
        .net_.history[:, "train_loss"]
        for precision in ("float32", "bfloat16")
    }
    assert losses["bfloat16"][-1] < 0.8 * losses["bfloat16"][0]
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], atol=0.01)


def test_autocast_runs_in_training_and_encoding_and_codes_come_from_float32(
    digits,
):
    X, y = digits
    hasher = HashNetHasher(
        backbone=Recorder(X.shape[1]), precision="bfloat16", random_state=0, **FAST
    ).fit(X, y)
    backbone = hasher.net_.module_.backbone
    assert backbone.seen and set(backbone.seen) == {(True, torch.bfloat16)}
    backbone.seen.clear()
    codes = hasher.transform(X)
    assert set(backbone.seen) == {(True, torch.bfloat16)}
    # The signs of the network's outputs under autocast, cast up to float32.
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = hasher.net_.module_.eval()(torch.from_numpy(X))
    bits = unpack_codes(codes, 16).astype(bool)
    np.testing.assert_array_equal(bits, outputs.float().numpy() >= 0)


def test_float32_runs_without_autocast(digits):
    X, y = digits
    hasher = HashNetHasher(backbone=Recorder(X.shape[1]), random_state=0, **FAST)
    hasher.fit(X, y)
    assert set(hasher.net_.module_.backbone.seen) == {(False, torch.float32)}


def test_bfloat16_encoding_gives_float32_bits_away_from_zero(digits):
    X, y = digits
    hasher = HashNetHasher(random_state=0, **FAST).fit(X, y)
    outputs = hasher.net_.forward(X).numpy()
    # The same float32 weights, encoding in bfloat16 (rebuilt on loading).
    half = copy.deepcopy(hasher.set_params(precision="bfloat16"))
    assert half.net_.precision == "bfloat16"
    bits = unpack_codes(half.transform(X), 16).astype(bool)
    # bfloat16 keeps 8 bits of mantissa: outputs well away from zero keep
    # their sign, and most of them are.
    clear = np.abs(outputs) > 0.1 * np.abs(outputs).std()
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(bits[clear], outputs[clear] >= 0)


def test_frozen_backbone_features_are_computed_under_autocast(digits, tmp_path):
    X, y = digits
    backbone = Recorder(X.shape[1], freeze=True)
    params = {**FAST, "feature_cache": tmp_path, "random_state": 0}
    hasher = HashNetHasher(backbone=backbone, precision="bfloat16", **params)
    hasher.fit(X, y)
    # The features ran once, under autocast, and are kept apart from float32's.
    assert set(hasher.net_.module_.backbone.seen) == {(True, torch.bfloat16)}
    HashNetHasher(backbone=backbone, **params).fit(X, y)
    assert len(list(tmp_path.iterdir())) == 2


def test_float16_trains_with_a_gradient_scaler(digits):
    X, y = digits
    hasher = HashNetHasher(
        backbone=Recorder(X.shape[1]), precision="float16", random_state=0, **FAST
    ).fit(X, y)
    assert isinstance(hasher.net_.grad_scaler_, torch.amp.GradScaler)
    assert set(hasher.net_.module_.backbone.seen) == {(True, torch.float16)}
    _valid(hasher.transform(X), len(X))


class _InfiniteGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


class Overflowing(nn.Module):
    """A backbone whose gradient overflows; keeps its starting weights."""

    def __init__(self, n_features):
        super().__init__()
        self.linear = nn.Linear(n_features, 8)
        self.out_features = 8
        self.start = None

    def forward(self, x):
        if self.start is None:
            self.start = self.linear.weight.detach().clone()
        return _InfiniteGradient.apply(self.linear(x))


def test_float16_scaler_skips_a_step_whose_gradients_overflow(digits):
    X, y = digits
    params = {**FAST, "max_epochs": 1, "batch_size": len(X), "random_state": 0}
    hasher = HashNetHasher(backbone=Overflowing(X.shape[1]), precision="float16")
    hasher.set_params(**params).fit(X, y)
    backbone, scaler = hasher.net_.module_.backbone, hasher.net_.grad_scaler_
    torch.testing.assert_close(backbone.linear.weight, backbone.start, rtol=0, atol=0)
    assert scaler.get_scale() == 2.0**16 / 2  # halved after the overflow
    # Without the scaler the same step writes NaNs into the weights.
    plain = HashNetHasher(backbone=Overflowing(X.shape[1]), **params).fit(X, y)
    assert torch.isnan(plain.net_.module_.backbone.linear.weight).any()


def test_a_precision_the_device_cannot_run_is_refused(digits, monkeypatch):
    X, y = digits
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device: False)
    with pytest.raises(ValueError, match="no automatic mixed precision.*'float32'"):
        HashNetHasher(precision="bfloat16", **FAST).fit(X, y)


def test_an_autocast_that_torch_would_disable_is_refused(monkeypatch):
    # torch warns and computes in float32 where a device type lacks the
    # dtype; the hasher refuses instead of falling back silently.
    real = torch.autocast

    def disabled(device_type, dtype):
        warnings.warn(
            "In CPU autocast, but the target dtype is not supported.", stacklevel=2
        )
        return real(device_type, dtype=dtype, enabled=False)

    monkeypatch.setattr(torch, "autocast", disabled)
    with pytest.raises(ValueError, match="not supported.*precision='bfloat16'"):
        _net.autocast("cpu", "float16")


# --- channels_last -----------------------------------------------------------


class _FormatProbe(Callback):
    """Records whether the first convolution's weights are channels-last at
    each training batch."""

    def __init__(self):
        self.formats = []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        weight = net.module_.backbone.features[0].weight
        self.formats.append(weight.is_contiguous(memory_format=torch.channels_last))


def test_channels_last_during_fit_and_same_codes(images):
    X, y = images
    probe = _FormatProbe()
    hasher = HashNetHasher(
        channels_last=True, callbacks=[("probe", probe)], random_state=0, **IMAGES
    ).fit(X, y)
    assert probe.formats and all(probe.formats)
    plain = HashNetHasher(random_state=0, **IMAGES).fit(X, y)
    np.testing.assert_array_equal(hasher.transform(X), plain.transform(X))


def test_channels_last_on_streamed_image_arrays(images):
    X, y = images
    uint8 = (np.clip(X, 0, 1) * 255).astype(np.uint8).reshape(-1, *SHAPE)
    params = {**IMAGES, "input_shape": None, "random_state": 0}
    hasher = HashNetHasher(channels_last=True, **params).fit(uint8, y)
    plain = HashNetHasher(**params).fit(uint8, y)
    np.testing.assert_array_equal(hasher.transform(uint8), plain.transform(uint8))


def test_channels_last_changes_nothing_on_feature_rows(digits):
    X, y = digits
    codes = HashNetHasher(channels_last=True, random_state=0, **FAST).fit(X, y)
    plain = HashNetHasher(random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(codes.transform(X), plain.transform(X))


# --- compile -----------------------------------------------------------------


class _StandIn(nn.Module):
    """What the tests put in place of torch.compile's wrapper: counts calls."""

    def __init__(self, module):
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)


def test_compile_runs_the_compiled_module_and_keeps_the_plain_one(digits, monkeypatch):
    X, y = digits
    compiled = []

    def fake_compile(module, **kwargs):
        compiled.append(_StandIn(module))
        return compiled[-1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    hasher = HashNetHasher(compile=True, random_state=0, **FAST).fit(X, y)
    # Compiled once; 2 epochs of 8 batches, then 8 batches to encode.
    assert len(compiled) == 1 and compiled[0].calls == 2 * 8
    codes = hasher.transform(X)
    assert compiled[0].calls == 3 * 8
    # The saved and exported module is the plain network, with its names.
    assert not isinstance(hasher.net_.module_, _StandIn)
    loaded = pickle.loads(pickle.dumps(hasher))
    np.testing.assert_array_equal(loaded.transform(X), codes)
    plain = HashNetHasher(random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(plain.transform(X), codes)


def test_a_compiler_failure_is_a_clear_error(digits, monkeypatch):
    X, y = digits

    class Failing(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            error = RuntimeError("No working C++ compiler found")
            raise torch._dynamo.exc.BackendCompilerFailed(lambda: None, error, None)

    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: Failing(module))
    with pytest.raises(RuntimeError, match="compile=True.*C\\+\\+ compiler.*False"):
        HashNetHasher(compile=True, **FAST).fit(X, y)


_COMPILER = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


@pytest.mark.slow
@pytest.mark.skipif(_COMPILER is None, reason="torch.compile needs a C++ compiler")
def test_a_real_compiled_fit_gives_the_uncompiled_codes(digits):
    # About a minute the first time on two cores (the C++ compiler), seconds
    # with torch's inductor cache; hence slow.
    X, y = digits
    compiled = HashNetHasher(compile=True, random_state=0, **FAST).fit(X, y)
    plain = HashNetHasher(random_state=0, **FAST).fit(X, y)
    codes = compiled.transform(X)
    # Fused kernels round differently: the same codes up to outputs near 0.
    agree = unpack_codes(codes, 16) == unpack_codes(plain.transform(X), 16)
    assert agree.mean() > 0.98
    loaded = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(loaded.transform(X), codes)


# --- parameters, saving, the accelerator --------------------------------------

OPTIONS = [
    {"precision": "bfloat16"},
    {"precision": "float16"},
    {"channels_last": True},
    {"precision": "bfloat16", "channels_last": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_fitted_hashers_round_trip_pickle_and_skops(options, images, tmp_path):
    from skhash import persistence

    pytest.importorskip("skops")
    X, y = images
    hasher = HashNetHasher(random_state=0, **IMAGES, **options).fit(X, y)
    codes = hasher.transform(X)
    for loaded in (
        pickle.loads(pickle.dumps(hasher)),
        _skops_round_trip(persistence, hasher, tmp_path / "hasher.skops"),
    ):
        assert {name: loaded.get_params()[name] for name in options} == options
        assert loaded.net_.precision == hasher.precision
        np.testing.assert_array_equal(loaded.transform(X), codes)


def _skops_round_trip(persistence, hasher, path):
    persistence.dump(hasher, path)
    return persistence.load(path)


def test_onnx_export_is_the_float32_network(images):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from skhash.onnx import to_onnx

    X, y = images
    params = {**IMAGES, "random_state": 0}
    hasher = HashNetHasher(precision="bfloat16", channels_last=True, **params)
    hasher.fit(X, y)
    model = to_onnx(hasher, X[:1])
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    exported = session.run(["codes"], {"X": X})[0]
    # The same weights encoding in float32 (the hasher itself encodes in
    # bfloat16: the codes may differ where an output is near zero).
    float32 = copy.deepcopy(hasher.set_params(precision="float32"))
    np.testing.assert_array_equal(exported, float32.transform(X))


def test_clone_and_get_params_keep_the_settings():
    hasher = HashNetHasher(precision="float16", channels_last=True, compile=True)
    params = clone(hasher).get_params()
    assert (params["precision"], params["channels_last"], params["compile"]) == (
        "float16",
        True,
        True,
    )
    defaults = HashNetHasher().get_params()
    assert (defaults["precision"], defaults["channels_last"]) == ("float32", False)
    assert defaults["compile"] is False


@pytest.mark.parametrize("Hasher", DEEP, ids=lambda cls: cls.__name__)
def test_every_deep_hasher_has_the_settings(Hasher):
    params = Hasher().get_params()
    assert (params["precision"], params["channels_last"], params["compile"]) == (
        "float32",
        False,
        False,
    )
    assert Hasher.__init__.__kwdefaults__["precision"] == "float32"


@pytest.mark.parametrize(
    "params",
    [
        {"precision": "half"},
        {"precision": "bf16"},
        {"channels_last": "yes"},
        {"compile": "inductor"},
    ],
    ids=str,
)
def test_bad_values_are_clear_errors(params, digits):
    X, y = digits
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        HashNetHasher(**FAST, **params).fit(X, y)


def test_files_saved_before_the_later_parameters_load_with_their_defaults(digits):
    # Every parameter added after the first release: image input, the feature
    # cache, the backbone's learning rate, then these settings.
    X, y = digits
    hasher = HashNetHasher(random_state=0, **FAST).fit(X, y)
    _, args, state = hasher.__reduce_ex__(2)
    defaults = {
        "augmentation": None,
        "preprocessing": None,
        "num_workers": 0,
        "feature_cache": None,
        "backbone_lr": None,
        "precision": "float32",
        "channels_last": False,
        "compile": False,
    }
    for name in defaults:
        del state[name]
    old = HashNetHasher.__new__(HashNetHasher)
    old.__setstate__(state)
    assert {name: getattr(old, name) for name in defaults} == defaults
    np.testing.assert_array_equal(old.transform(X), hasher.transform(X))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"precision": "bfloat16"}, "mixed_precision='bf16'"),
        ({"precision": "float16"}, "mixed_precision='fp16'"),
        ({"compile": True}, "dynamo_backend"),
    ],
    ids=str,
)
def test_an_accelerator_refuses_its_own_settings(params, match, digits):
    accelerate = pytest.importorskip("accelerate")
    X, y = digits
    accelerator = accelerate.Accelerator(cpu=True)
    hasher = HashNetHasher(accelerator=accelerator, **FAST, **params)
    with pytest.raises(ValueError, match=match):
        hasher.fit(X, y)
    assert not hasattr(hasher, "net_")
