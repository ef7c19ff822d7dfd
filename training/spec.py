"""training/model.toml, read once: the data, split, training recipe, quality thresholds and golden
file settings that training, the refresh command and the model gate share."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SPEC_PATH = Path("training") / "model.toml"
MODEL_DIR = Path("handler") / "model"
MODEL_FILE = "model.ubj"
CARD_FILE = "model_card.json"
GOLDEN_FILE = "golden_predictions.json"
SCHEMA_LOCK_FILE = "schema_lock.json"
# The floor: fewer golden rows would leave too little of the model's surface checked.
MIN_GOLDEN_ROWS = 200


class SpecError(ValueError):
    """training/model.toml is missing a value or has one of the wrong kind."""


@dataclass(frozen=True, kw_only=True)
class Split:
    seed: int
    holdout_fraction: float


@dataclass(frozen=True, kw_only=True)
class Recipe:
    features: tuple[str, ...]
    feature_types: tuple[str, ...]
    num_boost_round: int
    params: dict[str, object]

    def hyperparameters(self) -> dict[str, object]:
        return {**self.params, "num_boost_round": self.num_boost_round}


@dataclass(frozen=True, kw_only=True)
class Quality:
    rmse_max: float
    mae_max: float
    min_improvement_over_baseline: float


@dataclass(frozen=True, kw_only=True)
class Golden:
    rows: int
    seed: int
    stratify_by: str | None
    null_fraction: float


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    root: Path
    data_path: Path
    data_source: str
    target: str
    split: Split
    training: Recipe | None
    quality: Quality
    golden: Golden

    @property
    def model_dir(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def model_path(self) -> Path:
        return self.model_dir / MODEL_FILE

    @property
    def card_path(self) -> Path:
        return self.model_dir / CARD_FILE

    @property
    def golden_path(self) -> Path:
        return self.model_dir / GOLDEN_FILE

    @property
    def schema_lock_path(self) -> Path:
        return self.model_dir / SCHEMA_LOCK_FILE

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def load_spec(root: Path) -> ModelSpec:
    path = root / SPEC_PATH
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from exc
    data, split, quality, golden = (
        _table(raw, name, path) for name in ("data", "split", "quality", "golden")
    )
    training = raw.get("training")
    spec = ModelSpec(
        root=root,
        data_path=root / _get(data, "path", str, path),
        data_source=_get(data, "source", str, path),
        target=_get(data, "target", str, path),
        split=Split(
            seed=_get(split, "seed", int, path),
            holdout_fraction=_get(split, "holdout_fraction", float, path),
        ),
        training=None if training is None else _recipe(training, path),
        quality=Quality(
            rmse_max=_get(quality, "rmse_max", float, path),
            mae_max=_get(quality, "mae_max", float, path),
            min_improvement_over_baseline=_get(
                quality, "min_improvement_over_baseline", float, path
            ),
        ),
        golden=Golden(
            rows=_get(golden, "rows", int, path),
            seed=_get(golden, "seed", int, path),
            stratify_by=str(golden["stratify_by"]) if golden.get("stratify_by") else None,
            null_fraction=_get(golden, "null_fraction", float, path),
        ),
    )
    if not 0 < spec.split.holdout_fraction < 1:
        raise SpecError(f"{path}: split.holdout_fraction must be between 0 and 1")
    if spec.golden.rows < MIN_GOLDEN_ROWS:
        raise SpecError(f"{path}: golden.rows must be at least {MIN_GOLDEN_ROWS}")
    return spec


def _recipe(table: object, path: Path) -> Recipe:
    if not isinstance(table, dict):
        raise SpecError(f"{path}: [training] must be a table")
    features = tuple(_get(table, "features", list, path))
    types = tuple(_get(table, "feature_types", list, path))
    if len(features) != len(types):
        raise SpecError(f"{path}: training.features and training.feature_types differ in length")
    return Recipe(
        features=features,
        feature_types=types,
        num_boost_round=_get(table, "num_boost_round", int, path),
        params=dict(_get(table, "params", dict, path)),
    )


def _table(raw: dict[str, object], name: str, path: Path) -> dict[str, object]:
    table = raw.get(name)
    if not isinstance(table, dict):
        raise SpecError(f"{path}: missing table [{name}]")
    return table


def _get(table: dict[str, object], key: str, kind: type[T], path: Path) -> T:
    value = table.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SpecError(f"{path}: {key} must be a {kind.__name__}, got {value!r}")
    return value
