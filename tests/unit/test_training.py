"""training/train.py: byte-identical output on the same data, and a complete model card."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from tests.unit.wine_schema import MEASUREMENTS
from training import train


def write_wine_csv(path: Path, rows: int = 240) -> Path:
    """A synthetic stand-in for the UCI CSV: the same columns, plausible ranges."""
    rng = np.random.default_rng(11)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*MEASUREMENTS, "quality", "color"])
        for index in range(rows):
            measurements = rng.uniform(
                [4, 0.1, 0, 0.6, 0.01, 2, 6, 0.99, 2.7, 0.2, 8],
                [15, 1.5, 1, 60, 0.6, 280, 440, 1.04, 4, 2, 15],
            )
            quality = int(rng.integers(3, 10))
            color = "red" if index % 3 == 0 else "white"
            writer.writerow([*(f"{value:.4f}" for value in measurements), quality, color])
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("training")
    data = write_wine_csv(folder / "wine.csv")
    first, second = folder / "first", folder / "second"
    train.main([str(data), "--out", str(first)])
    train.main([str(data), "--out", str(second)])
    return data, first, second


def test_training_output_byte_identical_when_run_twice(two_runs):
    _, first, second = two_runs
    assert (first / "model.ubj").read_bytes() == (second / "model.ubj").read_bytes()
    assert (first / "model_card.json").read_text() == (second / "model_card.json").read_text()


def test_model_card_records_data_hash_hyperparameters_and_holdout_errors(two_runs):
    data, first, _ = two_runs
    card = json.loads((first / "model_card.json").read_text())
    assert card["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert card["data"]["rows"] == 240
    assert card["data"]["train_rows"] + card["data"]["holdout_rows"] == 240
    assert card["model_sha256"] == hashlib.sha256((first / "model.ubj").read_bytes()).hexdigest()
    assert card["hyperparameters"] == {**train.PARAMS, "num_boost_round": train.NUM_BOOST_ROUND}
    assert card["feature_names"] == [*MEASUREMENTS, "color_red", "color_white"]
    assert card["xgboost_version"] == xgb.__version__
    for metric in ("rmse", "mae"):
        assert math.isfinite(card["holdout"][metric])
        assert card["holdout"][metric] > 0
    assert card["holdout"]["mae"] <= card["holdout"]["rmse"]


def test_trained_model_carries_feature_names_for_the_handler(two_runs):
    _, first, _ = two_runs
    booster = xgb.Booster()
    booster.load_model(first / "model.ubj")
    assert booster.feature_names == [*MEASUREMENTS, "color_red", "color_white"]


def test_training_refuses_csv_without_color_column(tmp_path):
    path = tmp_path / "wine.csv"
    path.write_text(",".join([*MEASUREMENTS, "quality"]) + "\n" + ",".join(["1"] * 12) + "\n")
    with pytest.raises(SystemExit, match="color"):
        train.main([str(path), "--out", str(tmp_path / "out")])
