"""skhash.dask.fit: the model fitted from partitions' sums is the local one."""

import subprocess
import sys

import numpy as np
import pytest

from skhash import CCAITQHasher, ITQHasher, KSHHasher, LSHHasher, SpectralHasher

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
skhash_dask = pytest.importorskip("skhash.dask")

# Uneven partitions, one of them empty.
CHUNKS = (400, 0, 1100, 37, 463)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 5, sum(CHUNKS))
    X = rng.standard_normal((len(y), 20))
    X[:, :5] += y[:, None]
    Y = (rng.rand(len(y), 4) < 0.4).astype(np.uint8)
    return X, y, Y


CASES = {
    "lsh": (LSHHasher(16, random_state=0), None),
    "itq": (ITQHasher(16, random_state=0), None),
    "itq-expanded": (ITQHasher(48, random_state=0), None),
    "cca-itq-auto": (CCAITQHasher(16, random_state=0), "y"),
    "cca-itq-fixed": (CCAITQHasher(8, reg=0.01, random_state=0), "y"),
    "cca-itq-multilabel": (CCAITQHasher(8, random_state=0), "Y"),
}


@pytest.mark.parametrize("case", CASES)
def test_distributed_fit_is_the_local_fit(client, data, case):
    hasher, target = CASES[case]
    X, y, Y = data
    labels = {"y": y, "Y": Y, None: None}[target]
    local = type(hasher)(**hasher.get_params()).fit(X, labels)
    fitted = skhash_dask.fit(
        hasher,
        da.from_array(X, chunks=(CHUNKS, 20)),
        None if labels is None else da.from_array(labels, chunks=300),
    )
    assert fitted is hasher
    assert fitted.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(fitted.mean_, local.mean_, rtol=1e-12)
    if hasattr(local, "reg_"):
        assert fitted.reg_ == local.reg_
    # Directions with zero canonical correlation (and the null space of
    # expanded ITQ) leave the rotation free there; the projection is what the
    # model is. Its relative error is sqrt(eps)-sized where generalised
    # eigenvalues near zero meet rounding, so 1e-6 and not 1e-12.
    np.testing.assert_allclose(
        fitted._project(X),
        local._project(X),
        atol=1e-6 * np.abs(local._project(X)).max(),
    )
    if hasattr(local, "quantization_loss_"):
        np.testing.assert_allclose(
            fitted.quantization_loss_, local.quantization_loss_, rtol=1e-8
        )
    np.testing.assert_array_equal(fitted.transform(X), local.transform(X))


def test_lsh_keeps_float32(client, data):
    X = data[0].astype(np.float32)
    fitted = skhash_dask.fit(LSHHasher(8, random_state=0), da.from_array(X, 500))
    local = LSHHasher(8, random_state=0).fit(X)
    assert fitted.mean_.dtype == fitted.projection_.dtype == np.float32
    # float32 sums of a few thousand values of |x| < 10 in two orders:
    # pairwise summation errs by about log2(n) * eps * max|x| < 1e-5.
    np.testing.assert_allclose(fitted.mean_, local.mean_, atol=1e-5)


def test_dataframe_records_feature_names(client, data):
    import pandas as pd

    X = data[0]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    fitted = skhash_dask.fit(
        ITQHasher(8, random_state=0), dd.from_pandas(frame, npartitions=3)
    )
    local = ITQHasher(8, random_state=0).fit(frame)
    np.testing.assert_array_equal(fitted.feature_names_in_, local.feature_names_in_)
    np.testing.assert_array_equal(fitted.transform(frame), local.transform(frame))


def test_other_hashers_need_a_sample(client, data):
    X, y, _ = data
    dX, dy = da.from_array(X, chunks=(CHUNKS, 20)), da.from_array(y, chunks=500)
    with pytest.raises(ValueError, match="pass n_samples"):
        skhash_dask.fit(KSHHasher(8), dX, dy)
    # All the rows, in their order: the local fit exactly.
    everything = skhash_dask.fit(SpectralHasher(8), dX, n_samples=10**9)
    local = SpectralHasher(8).fit(X)
    np.testing.assert_array_equal(everything.transform(X), local.transform(X))
    # A sample: reproducible by random_state, and a different one by another.
    codes = [
        skhash_dask.fit(
            ITQHasher(8, random_state=0), dX, n_samples=200, random_state=s
        ).transform(X)
        for s in (1, 1, 2)
    ]
    np.testing.assert_array_equal(codes[0], codes[1])
    assert not np.array_equal(codes[0], codes[2])


def test_fit_checks_the_data_as_fit_does(client, data):
    X, y, _ = data
    bad = X.copy()
    bad[1500, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        skhash_dask.fit(ITQHasher(8), da.from_array(bad, chunks=500))
    dX = da.from_array(X, chunks=500)
    with pytest.raises(ValueError, match="requires y"):
        skhash_dask.fit(CCAITQHasher(8), dX)
    with pytest.raises(ValueError, match="1 class"):
        skhash_dask.fit(CCAITQHasher(8), dX, da.zeros(len(X), chunks=500))
    Y = np.ones((len(X), 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="shared by every sample"):
        skhash_dask.fit(CCAITQHasher(8), dX, da.from_array(Y, chunks=500))
    Y[:, 0] = 2
    with pytest.raises(ValueError, match="indicator matrix of 0 and 1"):
        skhash_dask.fit(CCAITQHasher(8), dX, da.from_array(Y, chunks=500))
    with pytest.raises(ValueError, match="does not match"):
        skhash_dask.fit(CCAITQHasher(8), dX, y[:-1])
    with pytest.raises(ValueError, match="at most 20"):
        skhash_dask.fit(ITQHasher(21, extra_bits="raise"), dX)
    with pytest.raises(ValueError, match="n_bits"):
        skhash_dask.fit(ITQHasher(0), dX)


def test_import_skhash_does_not_import_dask():
    code = "import sys, skhash; assert 'dask' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
