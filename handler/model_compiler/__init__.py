"""Compile an XGBoost regression model (its documented JSON schema) to a C shared library whose
predictions are bit-identical to ``Booster.inplace_predict`` in float32.

    python -m model_compiler MODEL.ubj|MODEL.json --out DIR

The library is all ``ml_handler`` serves, loaded with ctypes, without numpy or xgboost: the image
holds one built by its Dockerfile; in development a model file named by MODEL_PATH is compiled on
first use and cached (cache.py).
"""
