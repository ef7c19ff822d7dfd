"""Small models trained here for the compiled-vs-xgboost proofs: each stresses one thing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xgboost as xgb

from tests.unit.small_model import train_small_model


def _data(rows: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)).astype(np.float32) * rng.uniform(0.1, 50, size=width)
    y = x @ rng.normal(size=width) + np.sin(x[:, 0]) * 3 + rng.normal(size=rows)
    # Missing values in training: splits learn default directions both ways.
    x[rng.random(size=x.shape) < 0.15] = np.nan
    return x.astype(np.float32), y.astype(np.float32)


def _train(
    params: dict, *, rounds: int, width: int = 4, rows: int = 600, seed: int = 1
) -> xgb.Booster:
    x, y = _data(rows, width, seed)
    names = [f"f{index}" for index in range(width)]
    dtrain = xgb.DMatrix(x, label=y, feature_names=names)
    return xgb.train({"nthread": 1, "seed": 3, **params}, dtrain, num_boost_round=rounds)


CASES: dict[str, Callable[[], xgb.Booster]] = {
    "small_model": train_small_model,
    "depth_one": lambda: _train({"max_depth": 1, "eta": 0.5}, rounds=25),
    "one_tree": lambda: _train({"max_depth": 5}, rounds=1),
    "one_feature": lambda: _train({"max_depth": 4}, rounds=10, width=1),
    "many_trees": lambda: _train({"max_depth": 3, "eta": 0.02}, rounds=600, width=6),
    "deep_lossguide": lambda: _train(
        {"tree_method": "hist", "grow_policy": "lossguide", "max_depth": 0, "max_leaves": 200},
        rounds=5,
        rows=3000,
    ),
    "absolute_error": lambda: _train({"objective": "reg:absoluteerror", "max_depth": 3}, rounds=8),
    "pseudo_huber": lambda: _train({"objective": "reg:pseudohubererror", "max_depth": 3}, rounds=8),
    "quantile": lambda: _train(
        {"objective": "reg:quantileerror", "quantile_alpha": 0.8, "max_depth": 3}, rounds=8
    ),
    "random_forest": lambda: _train(
        {"num_parallel_tree": 4, "subsample": 0.6, "colsample_bynode": 0.7, "max_depth": 3},
        rounds=3,
    ),
}
