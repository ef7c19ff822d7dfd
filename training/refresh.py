"""Regenerate the model card, the golden predictions and the schema lock for the bundled model,
or import a model trained elsewhere (JSON or UBJSON, with feature names) first.

    python -m training.refresh                        # after handler/model/model.ubj changed
    python -m training.refresh --model my_model.json  # bring your own model
    python -m training.refresh --bump-schema          # ship a changed request schema
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import xgboost as xgb

from training.artefacts import (
    ArtefactError,
    build_card,
    build_golden,
    card_text,
    next_schema_lock,
    schema_lock_text,
    schema_of,
    sha256_file,
)
from training.dataset import DataError, read_dataset
from training.probe import ModelProbeError, probe_model
from training.spec import CARD_FILE, GOLDEN_FILE, MODEL_FILE, SCHEMA_LOCK_FILE, ModelSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]


def refresh(
    spec: ModelSpec,
    *,
    model_dir: Path | None = None,
    source: Path | None = None,
    bump_schema: bool = False,
    probe: bool = True,
) -> dict[str, Any]:
    """Write card, golden file and schema lock for `model_dir`/model.ubj (default: the bundle),
    after importing `source` into it as UBJSON if given. Nothing is written unless every check
    passes, so a refused model leaves the folder as it was. Returns the card."""
    folder = model_dir or spec.model_dir
    model_path = folder / MODEL_FILE
    loaded = source or model_path
    booster = xgb.Booster()
    if probe:
        probe_model(loaded)
    booster.load_model(loaded)
    if not booster.feature_names:
        raise ArtefactError(
            f"{loaded} has no feature names; the request schema comes from the model, so "
            "train it with named features (a DataFrame, or feature_names=...)"
        )
    raw = bytes(booster.save_raw("ubj")) if source is not None else model_path.read_bytes()
    schema = schema_of(booster)
    lock_path = folder / SCHEMA_LOCK_FILE
    lock: dict[str, Any] | None = None
    if lock_path.exists():
        lock = json.loads(lock_path.read_text())
    elif (folder / CARD_FILE).exists():
        raise ArtefactError(
            f"{lock_path} is missing but a model card exists: restore the lock (git checkout) "
            "so the schema change check has the schema clients were promised"
        )
    lock = next_schema_lock(lock, schema, bump=bump_schema, lock_path=lock_path)
    dataset = read_dataset(spec.data_path, features=[f["name"] for f in schema], target=spec.target)
    model_sha256 = hashlib.sha256(raw).hexdigest()
    golden = build_golden(
        booster, dataset, spec, model_sha256=model_sha256, data_sha256=sha256_file(spec.data_path)
    )
    card = build_card(
        booster=booster,
        spec=spec,
        dataset=dataset,
        model_file=MODEL_FILE,
        model_sha256=model_sha256,
        schema_version=lock["versions"][-1]["schema_version"],
        golden_text=golden,
    )
    folder.mkdir(parents=True, exist_ok=True)
    if source is not None:
        model_path.write_bytes(raw)
    (folder / GOLDEN_FILE).write_text(golden)
    lock_path.write_text(schema_lock_text(lock))
    (folder / CARD_FILE).write_text(card_text(card))
    return card


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--model", type=Path, help="import this model (JSON/UBJ) first")
    parser.add_argument(
        "--bump-schema",
        action="store_true",
        help="the model's request schema changed deliberately: record a new schema version",
    )
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.root)
        card = refresh(spec, source=args.model, bump_schema=args.bump_schema)
    except (ArtefactError, DataError, ModelProbeError, ValueError) as exc:
        raise SystemExit(f"refresh: {exc}") from None
    print(
        json.dumps(
            {
                "model": spec.relative(spec.model_path),
                "schema_version": card["schema_version"],
                **card["holdout"],
                "golden": spec.relative(spec.model_dir / GOLDEN_FILE),
            }
        )
    )


if __name__ == "__main__":
    main()
