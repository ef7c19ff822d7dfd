"""The model gate: the committed model, card, golden file, schema lock and data must agree with
each other and with training/model.toml. Every check raises ModelGateError with a message that
names the problem and the file; tests/unit/test_model_gate.py runs them on the bundle and
tests/unit/test_model_gate_faults.py proves each one catches its fault."""

from __future__ import annotations

import itertools
import json
import platform
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from training.artefacts import (
    ORIGIN_IMPORTED,
    ORIGIN_TRAINED,
    SERVABLE_TYPES,
    build_golden,
    describe_schema_change,
    evaluate,
    predict,
    schema_of,
    sha256_file,
)
from training.dataset import Dataset, read_dataset
from training.probe import probe_model
from training.spec import MIN_GOLDEN_ROWS, ModelSpec

# Metrics in the card are rounded to 6 decimals; recomputed ones must agree within this.
METRIC_TOLERANCE = 1e-6
# Where byte-identical retraining was measured to hold (docs/model.md, "Reproducibility").
BYTE_IDENTICAL_MACHINES = frozenset({"x86_64", "AMD64"})
REFRESH = "python -m training.refresh"
RETRAIN = "python -m training.train"


class ModelGateError(AssertionError):
    """A model artefact is wrong; the message says which and how to fix it."""


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """The committed artefacts, each read once. Building it probes the model in a child process
    first: a model that crashes xgboost fails here with a message, not by killing the gate."""

    spec: ModelSpec
    booster: xgb.Booster
    card: dict[str, Any]
    golden: dict[str, Any]
    golden_text: str
    lock: dict[str, Any]
    dataset: Dataset

    @classmethod
    def load(cls, spec: ModelSpec, *, probe: bool = True) -> Bundle:
        """`probe=False` only for models a test built itself and knows to be loadable."""
        if probe:
            probe_model(spec.model_path)
        booster = xgb.Booster()
        booster.load_model(spec.model_path)
        card = _read_json(spec.card_path, fix=REFRESH)
        golden_text = _read_text(spec.golden_path, fix=REFRESH)
        names = [feature["name"] for feature in schema_of(booster)]
        return cls(
            spec=spec,
            booster=booster,
            card=card,
            golden=_parse_json(golden_text, spec.golden_path, fix=REFRESH),
            golden_text=golden_text,
            lock=_read_json(spec.schema_lock_path, fix=f"{REFRESH} (or git checkout the lock)"),
            dataset=read_dataset(spec.data_path, features=names, target=spec.target),
        )

    def where(self, path: Path) -> str:
        return self.spec.relative(path)


# --- the card describes this model, this data and this spec --------------------------------


def check_card(bundle: Bundle) -> None:
    spec, card, booster = bundle.spec, bundle.card, bundle.booster
    where = bundle.where(spec.card_path)
    model_sha = sha256_file(spec.model_path)
    schema = schema_of(booster)
    train_rows = int(len(bundle.dataset.target) * (1 - spec.split.holdout_fraction))
    expected: dict[str, object] = {
        "model_file": spec.model_path.name,
        "model_sha256": model_sha,
        "origin": ORIGIN_TRAINED if spec.training is not None else ORIGIN_IMPORTED,
        "num_trees": booster.num_boosted_rounds(),
        "feature_names": [feature["name"] for feature in schema],
        "feature_types": [feature["type"] for feature in schema],
        "target": spec.target,
        "data.path": bundle.where(spec.data_path),
        "data.sha256": sha256_file(spec.data_path),
        "data.rows": len(bundle.dataset.target),
        "data.train_rows": train_rows,
        "data.holdout_rows": len(bundle.dataset.target) - train_rows,
        "split.seed": spec.split.seed,
        "split.holdout_fraction": spec.split.holdout_fraction,
        "hyperparameters": None if spec.training is None else spec.training.hyperparameters(),
        "golden.file": spec.golden_path.name,
        "golden.sha256": sha256_file(spec.golden_path),
        "xgboost_version": xgb.__version__,
    }
    for key, value in expected.items():
        recorded = _field(card, key)
        if recorded != value:
            raise ModelGateError(
                f"{where}: {key} is {_short(recorded)}, but {_source_of(key)} gives "
                f"{_short(value)}. {_fix_for(key)}"
            )
    metrics = evaluate(booster, bundle.dataset, spec)
    for key, value in (
        ("holdout.rmse", metrics.rmse),
        ("holdout.mae", metrics.mae),
        ("baseline.rmse", metrics.baseline_rmse),
        ("baseline.mae", metrics.baseline_mae),
    ):
        recorded = _field(card, key)
        if not isinstance(recorded, int | float) or abs(recorded - value) > METRIC_TOLERANCE:
            raise ModelGateError(
                f"{where}: {key} records {recorded}, the bundled model scores {value:.6f} on the "
                f"holdout of {bundle.where(spec.data_path)}: the card is not this model's. "
                f"Run {REFRESH}"
            )


def check_runtime_pins(bundle: Bundle, *, requirements: Path) -> None:
    """The card's xgboost is the one installed here and (if the image has xgboost) the image's."""
    recorded = bundle.card.get("xgboost_version")
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", requirements.read_text(), re.M))
    image = pins.get("xgboost-cpu") or pins.get("xgboost")
    if image is not None and image != recorded:
        raise ModelGateError(
            f"{requirements.name} pins xgboost {image}, the model card says the model was "
            f"made with {recorded}: retrain or re-import with the image's xgboost"
        )


# --- quality ---------------------------------------------------------------------------------


def check_quality(bundle: Bundle) -> None:
    quality, metrics = bundle.spec.quality, evaluate(bundle.booster, bundle.dataset, bundle.spec)
    data = bundle.where(bundle.spec.data_path)
    if metrics.rmse > quality.rmse_max:
        raise ModelGateError(
            f"holdout RMSE {metrics.rmse:.6f} is above the ceiling {quality.rmse_max} "
            f"(training/model.toml [quality]) on {data}: the model is worse than the one "
            "that may ship"
        )
    if metrics.mae > quality.mae_max:
        raise ModelGateError(
            f"holdout MAE {metrics.mae:.6f} is above the ceiling {quality.mae_max} "
            f"(training/model.toml [quality]) on {data}"
        )
    margin = quality.min_improvement_over_baseline
    for name, gained, model, baseline in (
        ("RMSE", metrics.improvement()[0], metrics.rmse, metrics.baseline_rmse),
        ("MAE", metrics.improvement()[1], metrics.mae, metrics.baseline_mae),
    ):
        if gained < margin:
            raise ModelGateError(
                f"holdout {name} {model:.6f} is only {gained:.1%} below the baseline's "
                f"{baseline:.6f} (predicting the training mean); training/model.toml requires "
                f"{margin:.0%}: the model has barely learnt anything"
            )
    outputs = predict(bundle.booster, bundle.dataset.features)
    if not np.isfinite(outputs).all():
        raise ModelGateError("the model predicts non-finite values on rows of the data set")


# --- reproducibility -------------------------------------------------------------------------


def check_reproducible(bundle: Bundle) -> str:
    """Retrain with training/train.py into a temporary folder and compare. Returns what was
    proved: "bytes", "predictions" (not on a machine where bytes were measured) or "imported"."""
    from training import train  # the real command, not a copy of its steps

    spec = bundle.spec
    if spec.training is None:
        if bundle.card.get("origin") != ORIGIN_IMPORTED:
            raise ModelGateError(
                "training/model.toml has no [training] table, but the card says the model "
                f"comes from {bundle.card.get('origin')!r}: run {REFRESH}"
            )
        return "imported"
    with tempfile.TemporaryDirectory(prefix="retrain-") as folder:
        # Saved to a file exactly as `python -m training.train` saves it.
        retrained_path = Path(folder) / spec.model_path.name
        train.train_bundled(spec).save_model(retrained_path)
        retrained = retrained_path.read_bytes()
    if retrained == spec.model_path.read_bytes():
        return "bytes"
    other = xgb.Booster()
    other.load_model(bytearray(retrained))
    features = bundle.dataset.features
    diff = float(np.max(np.abs(predict(other, features) - predict(bundle.booster, features))))
    where = bundle.where(spec.model_path)
    detail = (
        f"{where} is not what `{RETRAIN}` produces from {bundle.where(spec.data_path)} and "
        f"training/model.toml ({bundle.booster.num_boosted_rounds()} trees bundled, "
        f"{other.num_boosted_rounds()} retrained; predictions on the data set differ by up to "
        f"{diff:.3g})"
    )
    if platform.machine() in BYTE_IDENTICAL_MACHINES:
        raise ModelGateError(
            f"{detail}. Retrain with `{RETRAIN}`, or change training/model.toml to the recipe "
            "that made this model"
        )
    if diff > METRIC_TOLERANCE:
        raise ModelGateError(detail)
    warnings.warn(
        f"{detail}: on {platform.machine()} the gate accepts predictions within 1e-6 (bytes "
        "are compared on x86_64 only)",
        stacklevel=2,
    )
    return "predictions"


# --- golden predictions ----------------------------------------------------------------------


def check_golden(bundle: Bundle) -> None:
    spec, golden = bundle.spec, bundle.golden
    where = bundle.where(spec.golden_path)
    model_sha = sha256_file(spec.model_path)
    if golden.get("model_sha256") != model_sha:
        raise ModelGateError(
            f"{where} was made for model {str(golden.get('model_sha256'))[:12]}…, the bundled "
            f"model is {model_sha[:12]}…: run {REFRESH} so the prediction changes show in review"
        )
    names = [feature["name"] for feature in schema_of(bundle.booster)]
    if golden.get("feature_names") != names:
        raise ModelGateError(f"{where}: feature_names are not the model's {names}")
    rows = golden.get("rows") or []
    if len(rows) < MIN_GOLDEN_ROWS:
        raise ModelGateError(f"{where} has {len(rows)} rows; at least {MIN_GOLDEN_ROWS} needed")
    by_line = {int(line): i for i, line in enumerate(bundle.dataset.lines)}
    values = np.full((len(rows), len(names)), np.nan)
    for number, row in enumerate(rows):
        index = by_line.get(row.get("line"))
        if index is None or len(row.get("features", ())) != len(names):
            raise ModelGateError(f"{where}: row {number} does not name a data line with its values")
        for column, value in enumerate(row["features"]):
            if value is None:
                continue
            if value != bundle.dataset.values[index, column]:
                raise ModelGateError(
                    f"{where}: row {number} (data line {row['line']}) has {names[column]} = "
                    f"{value}, the data has {bundle.dataset.values[index, column]}: golden rows "
                    "must be drawn from the data"
                )
            values[number, column] = value
    _check_golden_coverage(bundle, rows, by_line, where)
    predicted = predict(bundle.booster, values)
    for number, (row, value) in enumerate(zip(rows, predicted, strict=True)):
        text = row.get("prediction")
        if not isinstance(text, str) or np.float32(float(text)) != value:
            raise ModelGateError(
                f"{where}: row {number} (data line {row['line']}) says {text!r}, xgboost "
                f"predicts {value} with the bundled model: the golden file was edited or is "
                f"stale; run {REFRESH}"
            )
    regenerated = build_golden(
        bundle.booster,
        bundle.dataset,
        spec,
        model_sha256=model_sha,
        data_sha256=sha256_file(spec.data_path),
    )
    if regenerated != bundle.golden_text:
        raise ModelGateError(
            f"{where} is not the file `{REFRESH}` writes from training/model.toml [golden] "
            "(rows, seed, nulls or formatting differ): run it"
        )


def _check_golden_coverage(
    bundle: Bundle, rows: list[dict[str, Any]], by_line: dict[int, int], where: str
) -> None:
    with_nulls = sum(None in row["features"] for row in rows)
    if not with_nulls or not any(all(v is None for v in row["features"]) for row in rows):
        raise ModelGateError(
            f"{where}: needs rows with null features, one of them all null "
            f"({with_nulls} rows have nulls)"
        )
    column = bundle.spec.golden.stratify_by
    if column:
        data_levels = {v.strip().lower() for v in bundle.dataset.columns[column]}
        levels = bundle.dataset.columns[column]
        seen = {levels[by_line[row["line"]]].strip().lower() for row in rows}
        if seen != data_levels:
            raise ModelGateError(
                f"{where}: golden rows cover {column} {sorted(seen)}, the data has "
                f"{sorted(data_levels)}"
            )


# --- schema ----------------------------------------------------------------------------------


def check_schema(bundle: Bundle) -> None:
    where = bundle.where(bundle.spec.schema_lock_path)
    versions = bundle.lock.get("versions") or []
    numbers = [version.get("schema_version") for version in versions]
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        raise ModelGateError(
            f"{where}: schema versions must run 1, 2, ... with none removed; found {numbers}"
        )
    for previous, current in itertools.pairwise(versions):
        if previous["features"] == current["features"]:
            raise ModelGateError(
                f"{where}: schema version {current['schema_version']} repeats version "
                f"{previous['schema_version']}; bump only for a change"
            )
    latest = versions[-1]
    schema = schema_of(bundle.booster)
    if schema != latest["features"]:
        raise ModelGateError(
            f"the model's request schema differs from schema version "
            f"{latest['schema_version']} in {where}: "
            f"{describe_schema_change(latest['features'], schema)}. Clients send features by "
            f"name and order; if the change is deliberate, run `{REFRESH} --bump-schema` "
            "(docs/model.md: shipping a schema change)"
        )
    if bundle.card.get("schema_version") != latest["schema_version"]:
        raise ModelGateError(
            f"{bundle.where(bundle.spec.card_path)}: schema_version is "
            f"{bundle.card.get('schema_version')}, {where} is at {latest['schema_version']}"
        )
    unservable = [f for f in schema if f["type"] not in SERVABLE_TYPES]
    if unservable:
        raise ModelGateError(
            f"feature {unservable[0]['name']!r} has type {unservable[0]['type']!r}; the handler "
            f"serves numbers only ({sorted(SERVABLE_TYPES)})"
        )


# --- helpers ---------------------------------------------------------------------------------


def _read_text(path: Path, *, fix: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ModelGateError(f"cannot read {path}: {exc.strerror}; run {fix}") from exc


def _read_json(path: Path, *, fix: str) -> dict[str, Any]:
    return _parse_json(_read_text(path, fix=fix), path, fix=fix)


def _parse_json(text: str, path: Path, *, fix: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelGateError(f"{path} is not valid JSON ({exc}); run {fix}") from exc
    if not isinstance(value, dict):
        raise ModelGateError(f"{path} must hold a JSON object; run {fix}")
    return value


def _field(card: dict[str, Any], dotted: str) -> object:
    value: object = card
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return "(missing)"
        value = value[part]
    return value


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _source_of(key: str) -> str:
    if key.startswith(("model", "num_trees", "feature")):
        return "the bundled model file"
    if key.startswith("data"):
        return "the data file"
    if key.startswith("golden"):
        return "the golden file"
    if key == "xgboost_version":
        return "the installed xgboost"
    return "training/model.toml"


def _fix_for(key: str) -> str:
    if key == "hyperparameters":
        return f"The card must record the recipe in training/model.toml: {RETRAIN}"
    if key.startswith("data"):
        return f"The model was trained or scored on other data: {RETRAIN} (or {REFRESH})"
    return f"Run {REFRESH}"
