"""A tiny deterministic model whose feature names are awkward on purpose (spaces, quotes,
non-ASCII, punctuation), so that records keyed by them exercise JSON escaping and lookup."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

FEATURES = ("fixed acidity", "pH", "alcohol %", 'sulfur "free"', "température")
FEATURE_TYPES = ("q", "q", "q", "q", "i")
# The row limit the unit tests serve this model with.
SMALL_MAX_ROWS = 256


def training_data(rows: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240607)
    x = rng.normal(size=(rows, len(FEATURES))).astype(np.float32) * [1.0, 0.5, 3.0, 10.0, 1.0]
    x[:, 4] = rng.integers(0, 2, size=rows)
    y = x[:, 0] - 2 * x[:, 1] + 0.3 * x[:, 2] + 0.05 * x[:, 3] + x[:, 4] + rng.normal(size=rows)
    # Missing values in training give every split a learned default direction.
    x[rng.random(size=x.shape) < 0.1] = np.nan
    return x.astype(np.float32), y.astype(np.float32)


def train_small_model(*, feature_names: bool = True) -> xgb.Booster:
    x, y = training_data()
    dtrain = xgb.DMatrix(
        x,
        label=y,
        feature_names=list(FEATURES) if feature_names else None,
        feature_types=list(FEATURE_TYPES) if feature_names else None,
    )
    params = {"max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 7, "tree_method": "hist"}
    return xgb.train(params, dtrain, num_boost_round=12)
