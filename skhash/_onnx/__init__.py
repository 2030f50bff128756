"""ONNX converters behind :func:`skhash.onnx.to_onnx`.

Every module here imports ``onnx`` and ``torch`` inside its functions only:
:func:`skhash.utils.all_estimators` imports every module of skhash, and must
work without the optional ``onnx`` extra.
"""
