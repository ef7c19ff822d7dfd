"""Train the bundled wine-quality model, deterministically, from the UCI Wine Quality CSV.

Data: P. Cortez, A. Cerdeira, F. Almeida, T. Matos, J. Reis, "Modeling wine preferences by data
mining from physicochemical properties", Decision Support Systems 47(4), 2009; UCI Machine
Learning Repository, CC BY 4.0. The CSV is not part of this repository.

    python -m training.train ../shared/data/wine_concat.csv --out handler/model
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

MEASUREMENTS = (
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
)
FEATURES = (*MEASUREMENTS, "color_red", "color_white")
# "q" quantitative, "i" indicator: stored in the model, served as the request schema.
FEATURE_TYPES = ("q",) * len(MEASUREMENTS) + ("i", "i")
TARGET = "quality"
SEED = 20091001
HOLDOUT_FRACTION = 0.2
NUM_BOOST_ROUND = 400
PARAMS: dict[str, object] = {
    "objective": "reg:squarederror",
    "tree_method": "hist",
    "max_depth": 5,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 2,
    "seed": SEED,
    # One thread: histogram sums are then accumulated in a fixed order, so the bytes repeat.
    "nthread": 1,
}


@dataclass(frozen=True, kw_only=True)
class Dataset:
    features: np.ndarray
    target: np.ndarray


def read_wine_csv(path: Path) -> Dataset:
    rows: list[list[float]] = []
    target: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {*MEASUREMENTS, TARGET, "color"} - set(reader.fieldnames or ())
        if missing:
            raise SystemExit(f"{path}: missing columns {sorted(missing)}")
        for line_no, record in enumerate(reader, start=2):
            color = record["color"].strip().lower()
            if color not in ("red", "white"):
                raise SystemExit(f"{path}:{line_no}: color must be red or white, got {color!r}")
            rows.append(
                [float(record[name]) for name in MEASUREMENTS]
                + [float(color == "red"), float(color == "white")]
            )
            target.append(float(record[TARGET]))
    return Dataset(features=np.asarray(rows, dtype=np.float32), target=np.asarray(target))


def split(dataset: Dataset) -> tuple[Dataset, Dataset]:
    order = np.random.default_rng(SEED).permutation(len(dataset.target))
    cut = int(len(order) * (1 - HOLDOUT_FRACTION))
    train, holdout = order[:cut], order[cut:]
    return (
        Dataset(features=dataset.features[train], target=dataset.target[train]),
        Dataset(features=dataset.features[holdout], target=dataset.target[holdout]),
    )


def train(dataset: Dataset) -> xgb.Booster:
    dtrain = xgb.DMatrix(
        dataset.features,
        label=dataset.target,
        feature_names=list(FEATURES),
        feature_types=list(FEATURE_TYPES),
    )
    return xgb.train(PARAMS, dtrain, num_boost_round=NUM_BOOST_ROUND)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="UCI Wine Quality CSV (red + white, with color)")
    parser.add_argument("--out", type=Path, default=Path("handler/model"), help="output folder")
    args = parser.parse_args(argv)

    dataset = read_wine_csv(args.csv)
    train_set, holdout = split(dataset)
    booster = train(train_set)
    predicted = booster.inplace_predict(holdout.features)
    errors = predicted - holdout.target

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.ubj"
    booster.save_model(model_path)
    card = {
        "model_file": model_path.name,
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "data": {
            "source": "UCI Wine Quality (Cortez et al. 2009), CC BY 4.0",
            "sha256": hashlib.sha256(args.csv.read_bytes()).hexdigest(),
            "rows": len(dataset.target),
            "train_rows": len(train_set.target),
            "holdout_rows": len(holdout.target),
        },
        "target": TARGET,
        "feature_names": list(FEATURES),
        "feature_types": list(FEATURE_TYPES),
        "hyperparameters": {**PARAMS, "num_boost_round": NUM_BOOST_ROUND},
        "holdout": {
            "rmse": round(float(np.sqrt(np.mean(errors**2))), 6),
            "mae": round(float(np.mean(np.abs(errors))), 6),
        },
        "xgboost_version": xgb.__version__,
    }
    (args.out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({"model": str(model_path), **card["holdout"]}))


if __name__ == "__main__":
    main()
