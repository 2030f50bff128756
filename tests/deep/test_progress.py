"""A verbose deep hasher shows how far transform has got through images (paths
or arrays, read a batch at a time); a quiet one prints nothing."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

pytest.importorskip("torch")

from skhash import HashNetHasher  # noqa: E402


@pytest.mark.parametrize("verbose", [0, 1])
def test_transform_progress_bar_only_when_verbose(verbose, capsys):
    X, y = load_digits(return_X_y=True)
    X = (X * 15).astype(np.uint8)[:300].reshape(-1, 8, 8, 1)  # images
    hasher = HashNetHasher(
        8, max_epochs=1, batch_size=64, device="cpu", random_state=0
    ).fit(X, y[:300])
    hasher.set_params(verbose=verbose)
    capsys.readouterr()
    codes = hasher.transform(X)
    err = capsys.readouterr().err
    assert codes.shape == (300, 1)
    if verbose:
        assert "HashNetHasher.transform" in err and "300/300" in err
    else:
        assert err == ""
