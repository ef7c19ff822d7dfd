"""Train the bundled wine-quality model, deterministically, from the committed UCI Wine Quality
CSV and training/model.toml, then regenerate its card, golden predictions and schema lock.

Data: P. Cortez, A. Cerdeira, F. Almeida, T. Matos, J. Reis, "Modeling wine preferences by data
mining from physicochemical properties", Decision Support Systems 47(4), 2009; UCI Machine
Learning Repository, CC BY 4.0 (data/README.md).

    python -m training.train                  # handler/model/ from data/wine_concat.csv
    python -m training.train --out /tmp/m     # the same files elsewhere (e.g. to compare)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import xgboost as xgb

from training.artefacts import ArtefactError
from training.dataset import DataError, Dataset, read_dataset, split
from training.probe import ModelProbeError
from training.refresh import ROOT, refresh
from training.spec import MODEL_FILE, ModelSpec, Recipe, SpecError, load_spec


def train(dataset: Dataset, recipe: Recipe) -> xgb.Booster:
    dtrain = xgb.DMatrix(
        dataset.features,
        label=dataset.target,
        feature_names=list(recipe.features),
        feature_types=list(recipe.feature_types),
    )
    return xgb.train(dict(recipe.params), dtrain, num_boost_round=recipe.num_boost_round)


def train_bundled(spec: ModelSpec) -> xgb.Booster:
    """The bundled model, as training/model.toml says to train it from its data."""
    if spec.training is None:
        raise SpecError(
            "training/model.toml has no [training] table: the bundled model was imported, "
            "not trained here (python -m training.refresh regenerates its card)"
        )
    dataset = read_dataset(spec.data_path, features=spec.training.features, target=spec.target)
    train_set, _ = split(dataset, spec.split)
    return train(train_set, spec.training)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--out", type=Path, help="output folder (default: handler/model)")
    parser.add_argument("--bump-schema", action="store_true", help="see training.refresh")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.root)
        booster = train_bundled(spec)
        out = args.out or spec.model_dir
        out.mkdir(parents=True, exist_ok=True)
        booster.save_model(out / MODEL_FILE)
        card = refresh(spec, model_dir=out, bump_schema=args.bump_schema)
    except (ArtefactError, DataError, ModelProbeError, SpecError) as exc:
        raise SystemExit(f"train: {exc}") from None
    print(json.dumps({"model": str(out / MODEL_FILE), **card["holdout"]}))


if __name__ == "__main__":
    main()
