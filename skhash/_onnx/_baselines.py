"""Converter of ClassifierCodes: skl2onnx's model of the classifier, then bits.

skl2onnx converts the fitted classifier (``estimator_``); the nodes here turn
its predicted labels (``code="one_hot"``) or its decision scores
(``code="sign"``) into the bits of ``ClassifierCodes._outputs``, in the order
of ``classes_``, and pack them as every converter does. skl2onnx's output is
checked against the classifier on the sample rows first: some of its
converters make models that fail to load or answer otherwise than
scikit-learn (a pipeline's decision scores come out as probabilities), and
such a model must be refused, not exported.
"""

import warnings

import numpy as np

from ._graph import (
    INPUT,
    OPSET,
    GraphBuilder,
    Tensor,
    append_bit_packing,
    enclose,
    tensor_type,
    threshold,
)

# skl2onnx makes names into identifiers: no "/" here (its input is then read
# from its model all the same).
_CLASSIFIER_INPUT = "skhash_classifier_input"
_ML_DOMAIN = "ai.onnx.ml"


def _import_skl2onnx():
    try:
        import skl2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export of ClassifierCodes converts its classifier with "
            'skl2onnx, which is not installed: pip install "skhash[onnx]".'
        ) from error
    return skl2onnx


def _allowed_options(skl2onnx, model):
    """The options that skl2onnx's converter of ``model`` accepts."""
    # Not in skl2onnx's public API; passing an option a converter does not
    # know is an error (LinearSVC's has no zipmap), so look it up.
    from skl2onnx.common._registration import get_converter

    converter = get_converter(skl2onnx.get_model_alias(type(model)))
    return converter.get_allowed_options() or {}


def _options(skl2onnx, hasher):
    """Tensor outputs (no ZipMap); decision scores for ``code="sign"``."""
    classifier = hasher.estimator_
    options = {}
    if "zipmap" in _allowed_options(skl2onnx, classifier):
        options[id(classifier)] = {"zipmap": False}
    if hasher.code == "sign":
        # A pipeline's converter passes raw_scores on to no step: ask its
        # final classifier.
        scorer = classifier
        while hasattr(scorer, "steps"):
            scorer = scorer.steps[-1][1]
        if "raw_scores" not in _allowed_options(skl2onnx, scorer):
            raise ValueError(
                f"skl2onnx's converter of {type(scorer).__name__} outputs no "
                'decision scores (option raw_scores), which code="sign" reads.'
            )
        options.setdefault(id(scorer), {})["raw_scores"] = True
    return options


def _convert_classifier(skl2onnx, hasher, dtype):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    input_type = DoubleTensorType if dtype == np.float64 else FloatTensorType
    with warnings.catch_warnings():
        # skl2onnx reads attributes that scikit-learn deprecates (SVC's probA_
        # in 1.9): nothing a caller can act on.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return skl2onnx.to_onnx(
            hasher.estimator_,
            initial_types=[
                (_CLASSIFIER_INPUT, input_type([None, hasher.n_features_in_]))
            ],
            options=_options(skl2onnx, hasher),
            target_opset=OPSET,
        )


def _has_trees(model):
    return any(
        node.domain == _ML_DOMAIN and node.op_type.startswith("TreeEnsemble")
        for node in model.graph.node
    )


def _is_binary_sign(hasher):
    """A binary problem's one sign bit (multi-label ``y`` has no ``classes_``)."""
    binary = hasattr(hasher, "classes_") and hasher.n_outputs_ == 1
    return hasher.code == "sign" and binary


def _check(model, hasher, X_sample, dtype):
    """Raise unless ``model`` predicts as the classifier on ``X_sample``."""
    import onnxruntime
    from onnx import TensorProto

    options = onnxruntime.SessionOptions()
    # Errors only: some converters declare shapes that onnxruntime corrects
    # with a warning on stderr.
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    label, scores = model.graph.output[:2]
    feed = {model.graph.input[0].name: X_sample.astype(dtype)}
    if hasher.code == "one_hot":
        label_type = label.type.tensor_type.elem_type
        if label_type not in (TensorProto.INT64, TensorProto.STRING):
            raise ValueError(
                f"skl2onnx's model gives labels of ONNX type {label_type}, "
                "neither int64 nor string."
            )
        (predicted,) = session.run([label.name], feed)
        expected = np.asarray(hasher.estimator_.predict(X_sample))
        if not np.array_equal(predicted, expected):
            raise ValueError(
                f"skl2onnx's model predicts {predicted[:5].tolist()}, ... on the "
                f"sample rows; predict: {expected[:5].tolist()}, ..."
            )
        return
    (scores,) = session.run([scores.name], feed)
    expected = hasher.estimator_.decision_function(X_sample)
    expected = np.asarray(expected, dtype=float).reshape(len(X_sample), -1)
    if _is_binary_sign(hasher):
        scores = scores[:, -1:]  # a binary converter may give both [-s, s]
    if scores.shape != expected.shape:
        raise ValueError(
            f"skl2onnx's model gives decision scores of shape {scores.shape}; "
            f"decision_function, of shape {expected.shape}."
        )
    # Loose: skl2onnx may compute in float32 where scikit-learn does not.
    scale = max(1.0, np.abs(expected).max())
    if not np.allclose(scores, expected, rtol=1e-3, atol=1e-3 * scale):
        error = np.abs(scores - expected).max()
        raise ValueError(
            "skl2onnx's model gives decision scores that differ from "
            f"decision_function's by up to {error:.3g} on the sample rows."
        )


def _classifier_model(skl2onnx, hasher, X_sample):
    """skl2onnx's model of the classifier, checked, and the dtype it reads.

    float64 first: most classifiers compute in it whatever the input dtype
    (a float32 row converts exactly). scikit-learn's trees compute in float32,
    and skl2onnx's float64 trees fail to load or differ from them: float32.
    """
    failures = []
    for dtype in (np.float64, np.float32):
        try:
            model = _convert_classifier(skl2onnx, hasher, dtype)
            if dtype == np.float64 and _has_trees(model):
                continue
            _check(model, hasher, X_sample, dtype)
        except Exception as failure:  # skl2onnx's or onnxruntime's errors, any
            failures.append(failure)
            continue
        return model, dtype
    name = type(hasher.estimator_).__name__
    # The first failure, that of the float64 model, unless it was a tree's.
    failure = failures[0]
    reason = str(failure).strip().split("\n")[0]
    reason = reason if len(reason) <= 200 else reason[:200] + "..."
    raise TypeError(
        f"skl2onnx cannot convert the {name} of this ClassifierCodes "
        f'(code="{hasher.code}"): ONNX export of ClassifierCodes needs a '
        f"classifier skl2onnx supports. {type(failure).__name__}: {reason}"
    ) from failure


def _one_hot_bits(graph, model, hasher):
    """Bits of the predicted classes (or labels) from the label output."""
    from onnx import TensorProto

    label = model.graph.output[0]
    if not hasattr(hasher, "classes_"):
        # Multi-label: the label output is the 0/1 indicator matrix.
        return graph.node("Cast", label.name, to=TensorProto.BOOL)
    if label.type.tensor_type.elem_type == TensorProto.STRING:
        # Equal compares no strings before opset 19: map them to positions.
        classes = graph.node(
            "LabelEncoder",
            label.name,
            domain=_ML_DOMAIN,
            keys_strings=[str(c) for c in hasher.classes_],
            values_int64s=list(range(len(hasher.classes_))),
            default_int64=-1,
        )
        keys = np.arange(len(hasher.classes_), dtype=np.int64)
    else:
        # skl2onnx writes numeric labels as int(label): classes are integers,
        # booleans, or floats of integer value (scikit-learn's classifiers
        # refuse others).
        classes = label.name
        keys = np.array([int(c) for c in hasher.classes_], dtype=np.int64)
    axis = graph.constant(np.array([1], dtype=np.int64))
    column = graph.node("Unsqueeze", classes, axis)
    return graph.node("Equal", column, graph.constant(keys))


def _sign_bits(graph, model, hasher):
    """Bits ``decision_function >= 0`` per column, as ``_outputs`` orders them."""
    from onnx import helper

    output = model.graph.output[1]
    dtype = helper.tensor_dtype_to_np_dtype(output.type.tensor_type.elem_type)
    scores = Tensor(output.name, dtype)
    classifier = hasher.estimator_
    if _is_binary_sign(hasher):
        last = graph.constant(np.array([-1], dtype=np.int64))
        end = graph.constant(np.array([np.iinfo(np.int64).max], dtype=np.int64))
        axis = graph.constant(np.array([1], dtype=np.int64))
        scores = Tensor(graph.node("Slice", scores.name, last, end, axis), dtype)
        if classifier.classes_[1] != hasher.classes_[1]:
            scores = Tensor(graph.node("Neg", scores.name), dtype)
    elif hasattr(hasher, "classes_"):
        order = [list(classifier.classes_).index(c) for c in hasher.classes_]
        columns = graph.constant(np.array(order, dtype=np.int64))
        scores = Tensor(graph.node("Gather", scores.name, columns, axis=1), dtype)
    return threshold(graph, scores)


def _opset_imports(model, hasher):
    """The model's opsets, each domain once (skl2onnx may repeat one)."""
    from onnx import TensorProto, helper

    versions = {}
    for opset in model.opset_import:
        versions[opset.domain] = max(opset.version, versions.get(opset.domain, 0))
    label = model.graph.output[0].type.tensor_type.elem_type
    if hasher.code == "one_hot" and label == TensorProto.STRING:
        # LabelEncoder's keys_strings and values_int64s came with version 2;
        # versions 1 to 2 of the domain differ in LabelEncoder only.
        versions[_ML_DOMAIN] = max(2, versions.get(_ML_DOMAIN, 0))
    return [helper.make_opsetid(domain, v) for domain, v in versions.items()]


def convert(hasher, X_sample):
    """The model of a fitted ClassifierCodes for inputs like ``X_sample``."""
    from ..baselines import ClassifierCodes

    if type(hasher)._outputs is not ClassifierCodes._outputs:
        raise TypeError(
            f"{type(hasher).__name__} overrides _outputs of ClassifierCodes; "
            "to_onnx cannot export it with the converter of ClassifierCodes."
        )
    skl2onnx = _import_skl2onnx()
    model, dtype = _classifier_model(skl2onnx, hasher, X_sample)
    graph = GraphBuilder()
    (classifier_input,) = model.graph.input
    graph.node("Cast", INPUT, to=tensor_type(dtype), output=classifier_input.name)
    if hasher.code == "one_hot":
        bits = _one_hot_bits(graph, model, hasher)
    else:
        bits = _sign_bits(graph, model, hasher)
    append_bit_packing(graph, bits, hasher.n_outputs_, hasher.n_bits_)
    opsets = _opset_imports(model, hasher)
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    return enclose(model, graph, 1, hasher, X_sample.dtype)
