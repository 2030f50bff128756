"""ONNX export of the hashers' encoders.

:func:`to_onnx` turns a fitted hasher into an ONNX model that computes its
packed codes, so that a service can encode queries with onnxruntime (C, C++,
C#, Java, JavaScript, ...) and no Python. Needs the optional packages of
``pip install "skhash[onnx]"``.
"""

from functools import partial

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from .base import BaseHasher

__all__ = ["to_onnx"]


def _converter(hasher):
    """The function that converts ``hasher``, found along its class's MRO."""
    from ._onnx import _baselines, _classical, _deep
    from .baselines import ClassifierCodes
    from .deep._engine import BaseDeepHasher

    if not isinstance(hasher, BaseHasher):
        raise TypeError(
            f"to_onnx converts skhash hashers; got {type(hasher).__name__}, "
            "which is not a skhash.base.BaseHasher."
        )
    converters = {
        cls: partial(_classical.convert, project=project)
        for cls, project in _classical.PROJECTIONS.items()
    }
    converters[BaseDeepHasher] = _deep.convert
    converters[ClassifierCodes] = _baselines.convert
    name = type(hasher).__name__
    for cls in type(hasher).__mro__:
        if cls not in converters:
            continue
        # A subclass that computes its projection differently would get codes
        # from the parent's formula: refuse rather than export wrong codes.
        if type(hasher)._project is not cls._project:
            raise TypeError(
                f"{name} overrides _project of {cls.__name__}; to_onnx cannot "
                f"export it with the converter of {cls.__name__}."
            )
        return converters[cls]
    raise TypeError(f"to_onnx has no converter for {name}.")


def to_onnx(hasher, X_sample):
    """Export a fitted hasher's encoder as an ONNX model.

    The model's output under onnxruntime is ``hasher.transform(X)`` (see the
    Notes for how exactly): the classical hashers are rebuilt operation by
    operation, in the dtypes and the order in which NumPy computes their
    projections, the deep hashers' networks go through torch's exporter, and
    the classifier of :class:`~skhash.ClassifierCodes` through skl2onnx; all
    end with the same packing nodes.

    Parameters
    ----------
    hasher : BaseHasher
        A fitted skhash hasher (any of :func:`skhash.utils.all_estimators`
        except :class:`~skhash.HammingNeighbors`).
    X_sample : array-like of shape (n_samples, n_features)
        Example input. Its dtype and width matter: float32 rows give a model
        that takes float32, anything else float64, as ``transform`` converts
        them. For :class:`~skhash.ClassifierCodes` its rows matter too: the
        converted classifier must predict as the classifier on them.

    Returns
    -------
    model : onnx.ModelProto
        Opset 18. Input ``"X"`` of shape ``(n_samples, n_features)``, any
        ``n_samples``; output ``"codes"``, uint8 of shape
        ``(n_samples, ceil(n_bits / 8))``. Save it with ``onnx.save``.

    Raises
    ------
    TypeError
        If ``hasher`` is not a skhash hasher, or has no converter, or is a
        :class:`~skhash.ClassifierCodes` whose classifier skl2onnx cannot
        convert (or converts into a model that predicts otherwise on
        ``X_sample``).
    ImportError
        If a package the hasher's converter needs is missing: onnxscript for
        the deep hashers, skl2onnx for :class:`~skhash.ClassifierCodes`.
    sklearn.exceptions.NotFittedError
        If ``hasher`` is not fitted.
    ValueError
        If ``X_sample`` is not 2-D or its width differs from the training data.

    See Also
    --------
    skhash.base.BaseHasher.transform : The codes the model reproduces.

    Notes
    -----
    How exact: NumPy's BLAS and onnxruntime may add the terms of a matrix
    product in different orders (NumPy itself does, for one row and for
    many), and onnxruntime's ``Cos``, ``Exp``, ``Sigmoid`` and convolutions
    are not NumPy's or torch's, so projections may differ in their last
    digits (about 1e-16 relative in float64, 1e-7 in float32). A bit can
    differ only where a projection is that close to zero: none did in 13
    million bits of LSH and ITQ codes of random data, and 1 did in 3.5
    million bits of deep hashers' codes. A projection of exactly zero gives
    bit 1 in both.

    The model does not check its input: a NaN gives bit 0. A hasher fitted
    on a GPU is exported from a CPU copy of its network. The deep hashers
    need the ``onnxscript`` package (torch's exporter), and a user-supplied
    backbone must be traceable by ``torch.export``.

    :class:`~skhash.ClassifierCodes` exports where skl2onnx converts its
    classifier (scikit-learn's linear models, SVMs, trees and forests, naive
    Bayes, nearest neighbours, MLPs, pipelines of them and
    ``OneVsRestClassifier`` among others): the one-hot bits come from the
    predicted label, the sign bits from the decision scores (skl2onnx's
    ``raw_scores``). The classifier computes in float64 whatever the input
    dtype, as most of scikit-learn's do, and in float32 where skl2onnx's
    model has trees (as scikit-learn's trees do) or skl2onnx has no float64
    model. One-hot bits can differ where two classes' scores tie (a small
    forest's votes do: 79 of 23,594 rows for 20 trees and two classes), sign
    bits where a score is zero within rounding.

    Examples
    --------
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_digits
    >>> from skhash import ITQHasher
    >>> from skhash.onnx import to_onnx
    >>> X, _ = load_digits(return_X_y=True)
    >>> hasher = ITQHasher(n_bits=16, random_state=0).fit(X)
    >>> model = to_onnx(hasher, X[:1])
    >>> session = ort.InferenceSession(
    ...     model.SerializeToString(), providers=["CPUExecutionProvider"]
    ... )
    >>> codes = session.run(["codes"], {"X": X})[0]
    >>> codes.shape, codes.dtype
    ((1797, 2), dtype('uint8'))
    >>> bool((codes == hasher.transform(X)).all())
    True
    """
    convert = _converter(hasher)
    check_is_fitted(hasher)
    X_sample = validate_data(
        hasher, X_sample, dtype=[np.float64, np.float32], reset=False
    )
    return convert(hasher, X_sample)
