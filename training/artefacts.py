"""What the model folder holds besides the model: the card (what the model is and how well it
does), the golden predictions (what it answers, as float32 text) and the schema lock (every
request schema ever shipped). Built from the model, the data and training/model.toml only, so
the same inputs give the same bytes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from training.dataset import Dataset, split
from training.spec import ModelSpec

ORIGIN_TRAINED = "training/train.py"
ORIGIN_IMPORTED = "imported"
# Request schema types the handler can serve: numbers. xgboost's "c" (categorical) is not.
SERVABLE_TYPES = frozenset({"q", "i", "int", "float"})


class ArtefactError(ValueError):
    """The model or data cannot give a card, golden file or schema lock; says why."""


@dataclass(frozen=True, kw_only=True)
class Metrics:
    rmse: float
    mae: float
    baseline_rmse: float
    baseline_mae: float

    def improvement(self) -> tuple[float, float]:
        return 1 - self.rmse / self.baseline_rmse, 1 - self.mae / self.baseline_mae


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def schema_of(booster: xgb.Booster) -> list[dict[str, str]]:
    names = booster.feature_names
    if not names:
        raise ArtefactError(
            "the model has no feature names; the request schema comes from the model, so "
            "train it with named features (a DataFrame, or feature_names=...)"
        )
    types = booster.feature_types or ["float"] * len(names)
    return [{"name": name, "type": ftype} for name, ftype in zip(names, types, strict=True)]


def predict(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    booster.set_param({"nthread": 1})
    out = booster.inplace_predict(features.astype(np.float32), validate_features=False)
    if out.ndim != 1:
        raise ArtefactError(
            f"the model gives {out.shape[1:]} outputs per row; the handler serves one number"
        )
    return np.asarray(out, dtype=np.float32)


def evaluate(booster: xgb.Booster, dataset: Dataset, spec: ModelSpec) -> Metrics:
    train, holdout = split(dataset, spec.split)
    errors = predict(booster, holdout.features).astype(np.float64) - holdout.target
    baseline = float(np.mean(train.target)) - holdout.target
    return Metrics(
        rmse=float(np.sqrt(np.mean(errors**2))),
        mae=float(np.mean(np.abs(errors))),
        baseline_rmse=float(np.sqrt(np.mean(baseline**2))),
        baseline_mae=float(np.mean(np.abs(baseline))),
    )


def float32_text(value: np.float32) -> str:
    """The shortest text that reads back as this float32: what the handler sends."""
    return str(np.float32(value))


# --- golden predictions --------------------------------------------------------------------


def golden_rows(dataset: Dataset, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(indexes into the data, the values to send with NaN for null): stratified, seeded."""
    settings = spec.golden
    rng = np.random.default_rng(settings.seed)
    if settings.stratify_by:
        if settings.stratify_by not in dataset.columns:
            raise ArtefactError(f"golden.stratify_by: no data column {settings.stratify_by!r}")
        labels = np.array([v.strip().lower() for v in dataset.columns[settings.stratify_by]])
    else:
        labels = np.zeros(len(dataset.target), dtype=str)
    levels = sorted(set(labels.tolist()))
    chosen: list[np.ndarray] = []
    for position, level in enumerate(levels):
        wanted = settings.rows // len(levels) + (position < settings.rows % len(levels))
        members = np.flatnonzero(labels == level)
        if len(members) < wanted:
            raise ArtefactError(f"golden: only {len(members)} rows have {level!r}, {wanted} wanted")
        chosen.append(np.sort(rng.choice(members, size=wanted, replace=False)))
    index = np.concatenate(chosen)
    values = dataset.values[index].copy()
    width = values.shape[1]
    nulled = rng.choice(len(index), size=round(len(index) * settings.null_fraction), replace=False)
    for count, row in enumerate(sorted(nulled.tolist())):
        # The first nulled row loses every feature: the model's default path, end to end.
        k = width if count == 0 else int(rng.integers(1, min(3, width) + 1))
        values[row, rng.choice(width, size=k, replace=False)] = np.nan
    return index, values


def build_golden(
    booster: xgb.Booster, dataset: Dataset, spec: ModelSpec, *, model_sha256: str, data_sha256: str
) -> str:
    index, values = golden_rows(dataset, spec)
    predictions = predict(booster, values)
    names = [feature["name"] for feature in schema_of(booster)]
    lines = []
    for row, data_index in enumerate(index):
        features = [None if np.isnan(v) else float(v) for v in values[row]]
        entry = {
            "line": int(dataset.lines[data_index]),
            "features": features,
            "prediction": float32_text(predictions[row]),
        }
        lines.append("    " + json.dumps(entry, ensure_ascii=False))
    header = {
        "model_sha256": model_sha256,
        "data": spec.relative(spec.data_path),
        "data_sha256": data_sha256,
        "feature_names": names,
    }
    head = json.dumps(header, indent=2, ensure_ascii=False)[:-2]
    return head + ',\n  "rows": [\n' + ",\n".join(lines) + "\n  ]\n}\n"


# --- schema lock ---------------------------------------------------------------------------


def describe_schema_change(old: list[dict[str, str]], new: list[dict[str, str]]) -> str:
    for position, (was, now) in enumerate(zip(old, new, strict=False)):
        if was != now:
            return (
                f"feature {position} was {was['name']!r} ({was['type']}), "
                f"the model has {now['name']!r} ({now['type']})"
            )
    if len(old) != len(new):
        return f"the locked schema has {len(old)} features, the model {len(new)}"
    return "no change"


def next_schema_lock(
    lock: dict[str, Any] | None, schema: list[dict[str, str]], *, bump: bool, lock_path: Path
) -> dict[str, Any]:
    """The lock after this model: unchanged, or (bump) with the model's schema appended."""
    if lock is None:
        return {"versions": [{"schema_version": 1, "features": schema}]}
    latest = lock["versions"][-1]
    if latest["features"] == schema:
        if bump:
            raise ArtefactError(
                f"--bump-schema: the model's schema equals schema version "
                f"{latest['schema_version']} in {lock_path}; bump only for a change"
            )
        return lock
    if not bump:
        raise ArtefactError(
            f"the model's request schema differs from schema version {latest['schema_version']} "
            f"in {lock_path}: {describe_schema_change(latest['features'], schema)}. Clients "
            "send features by name and order, so this breaks them; if it is deliberate, rerun "
            "with --bump-schema (docs/model.md: shipping a schema change)"
        )
    version = {"schema_version": latest["schema_version"] + 1, "features": schema}
    return {**lock, "versions": [*lock["versions"], version]}


def schema_lock_text(lock: dict[str, Any]) -> str:
    versions = []
    for version in lock["versions"]:
        features = ",\n".join(
            "        " + json.dumps(feature, ensure_ascii=False) for feature in version["features"]
        )
        versions.append(
            f'    {{\n      "schema_version": {version["schema_version"]},\n'
            f'      "features": [\n{features}\n      ]\n    }}'
        )
    return '{\n  "versions": [\n' + ",\n".join(versions) + "\n  ]\n}\n"


# --- card ----------------------------------------------------------------------------------


def build_card(
    *,
    booster: xgb.Booster,
    spec: ModelSpec,
    dataset: Dataset,
    model_file: str,
    model_sha256: str,
    schema_version: int,
    golden_text: str,
) -> dict[str, Any]:
    schema = schema_of(booster)
    train, holdout = split(dataset, spec.split)
    metrics = evaluate(booster, dataset, spec)
    return {
        "model_file": model_file,
        "model_sha256": model_sha256,
        "origin": ORIGIN_TRAINED if spec.training is not None else ORIGIN_IMPORTED,
        "num_trees": booster.num_boosted_rounds(),
        "schema_version": schema_version,
        "feature_names": [feature["name"] for feature in schema],
        "feature_types": [feature["type"] for feature in schema],
        "target": spec.target,
        "data": {
            "source": spec.data_source,
            "path": spec.relative(spec.data_path),
            "sha256": sha256_file(spec.data_path),
            "rows": len(dataset.target),
            "train_rows": len(train.target),
            "holdout_rows": len(holdout.target),
        },
        "split": {"seed": spec.split.seed, "holdout_fraction": spec.split.holdout_fraction},
        "hyperparameters": None if spec.training is None else spec.training.hyperparameters(),
        "holdout": {"rmse": round(metrics.rmse, 6), "mae": round(metrics.mae, 6)},
        "baseline": {
            "predicts": "mean target of the training split",
            "rmse": round(metrics.baseline_rmse, 6),
            "mae": round(metrics.baseline_mae, 6),
        },
        "golden": {
            "file": spec.golden_path.name,
            "sha256": hashlib.sha256(golden_text.encode()).hexdigest(),
            "rows": spec.golden.rows,
        },
        "xgboost_version": xgb.__version__,
    }


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, indent=2, ensure_ascii=False) + "\n"
