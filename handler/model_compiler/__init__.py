"""Compile an XGBoost regression model (its documented JSON schema) to a C shared library whose
predictions are bit-identical to ``Booster.inplace_predict`` in float32.

    python -m model_compiler MODEL.ubj|MODEL.json --out DIR

The library is what the image serves by default (see handler/Dockerfile); ``ml_handler`` loads it
with ctypes, without numpy or xgboost.
"""
