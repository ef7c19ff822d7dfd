"""training/train.py: byte-identical output on the committed data, from the spec in one place."""

from __future__ import annotations

import shutil

import pytest
import xgboost as xgb

from tests.unit.wine_schema import MEASUREMENTS, WINE_FEATURES
from training.dataset import DataError, read_dataset


def test_trained_model_carries_wine_feature_names_in_order(bundled_model_path):
    booster = xgb.Booster()
    booster.load_model(bundled_model_path)
    assert booster.feature_names == WINE_FEATURES


def test_data_error_when_csv_lacks_color_column(tmp_path):
    path = tmp_path / "wine.csv"
    path.write_text(",".join([*MEASUREMENTS, "quality"]) + "\n" + ",".join(["1"] * 12) + "\n")
    with pytest.raises(DataError, match=r"color"):
        read_dataset(path, features=WINE_FEATURES, target="quality")


def test_data_error_when_color_not_indicated(tmp_path, project_root):
    path = tmp_path / "wine.csv"
    shutil.copy(project_root / "data" / "wine_concat.csv", path)
    path.write_text(path.read_text().replace(",red\n", ",rose\n", 1))
    with pytest.raises(DataError, match=r"rose"):
        read_dataset(path, features=WINE_FEATURES, target="quality")


def test_indicator_features_read_from_color_column(project_root):
    data = read_dataset(
        project_root / "data" / "wine_concat.csv", features=WINE_FEATURES, target="quality"
    )
    # The first data line of the CSV is a red wine (7.4, 0.7, ... 9.4, quality 5).
    assert data.values[0].tolist()[:2] == [7.4, 0.7]
    assert data.values[0].tolist()[-2:] == [1.0, 0.0]
    assert data.target[0] == 5.0
    assert len(data.target) == 5320
