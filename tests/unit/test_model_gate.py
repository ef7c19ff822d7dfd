"""The model gate on the committed artefacts: the bundled model loads in a child process, is
what training/train.py makes from data/, scores what its card says and within the ceilings of
training/model.toml, keeps the locked request schema, and the handler answers the golden file."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from ml_handler.model import load_model
from ml_handler.service import InferenceService

from tests.unit.events import FakeContext, post
from tests.unit.wine_schema import MEASUREMENTS, WINE_FEATURES
from training import gate
from training.probe import ProbeResult, probe_model
from training.spec import load_spec

# One worker builds this module's session fixtures (pytest-xdist --dist loadgroup).
pytestmark = pytest.mark.xdist_group("model-gate")


@pytest.fixture(scope="session")
def bundled_probe(bundled_model_path: Path) -> ProbeResult:
    """The bundled model loaded and used in a child process, before any in-process load."""
    return probe_model(bundled_model_path)


@pytest.fixture(scope="session")
def bundle(project_root: Path, bundled_probe: ProbeResult) -> gate.Bundle:
    return gate.Bundle.load(load_spec(project_root), probe=False)


@pytest.fixture(scope="session")
def golden(project_root: Path) -> dict:
    return json.loads((project_root / "handler/model/golden_predictions.json").read_text())


def test_bundled_model_loads_and_predicts_in_a_child_process(bundled_probe):
    result = bundled_probe
    assert result.num_trees == 400
    assert result.feature_names == WINE_FEATURES
    assert result.prediction_shape == [2]


def test_bundled_model_reproduced_byte_for_byte_by_training(bundle):
    assert gate.check_reproducible(bundle) == "bytes"


def test_model_card_describes_bundled_model_data_and_spec(bundle):
    gate.check_card(bundle)


def test_bundled_model_quality_within_ceilings_and_beats_baseline(bundle):
    gate.check_quality(bundle)


def test_golden_file_is_the_bundled_models_predictions(bundle):
    gate.check_golden(bundle)


def test_bundled_model_schema_matches_schema_lock(bundle):
    gate.check_schema(bundle)


def test_model_card_xgboost_matches_image_pin(bundle, handler_dir):
    # The builder stage's xgboost reads the model: its pin must be the card's.
    requirements = handler_dir / "requirements-build.txt"
    assert "xgboost-cpu==" in requirements.read_text(), "the builder pins no xgboost"
    gate.check_runtime_pins(bundle, requirements=requirements)


def test_holdout_metrics_in_card_match_an_independent_recomputation(project_root, bundle):
    """An oracle kept apart from training/: csv + numpy only, the split from the spec."""
    spec = bundle.spec
    with (project_root / "data" / "wine_concat.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    x = np.array(
        [
            [float(r[m]) for m in MEASUREMENTS]
            + [float(r["color"] == "red"), float(r["color"] == "white")]
            for r in records
        ],
        dtype=np.float32,
    )
    y = np.array([float(r["quality"]) for r in records])
    order = np.random.default_rng(spec.split.seed).permutation(len(y))
    holdout = order[int(len(y) * (1 - spec.split.holdout_fraction)) :]
    booster = xgb.Booster()
    booster.load_model(project_root / "handler/model/model.ubj")
    errors = booster.inplace_predict(x[holdout]).astype(np.float64) - y[holdout]
    card = bundle.card
    assert math.isclose(float(np.sqrt(np.mean(errors**2))), card["holdout"]["rmse"], abs_tol=1e-6)
    assert math.isclose(float(np.mean(np.abs(errors))), card["holdout"]["mae"], abs_tol=1e-6)
    assert card["holdout"]["rmse"] <= spec.quality.rmse_max


def test_golden_file_covers_both_colours_nulls_and_200_rows(golden):
    rows = golden["rows"]
    assert len(rows) >= 200
    red = WINE_FEATURES.index("color_red")
    assert {row["features"][red] for row in rows} >= {0.0, 1.0}
    assert sum(None in row["features"] for row in rows) >= 20
    assert any(all(v is None for v in row["features"]) for row in rows)


def _predict(service: InferenceService, batch: object) -> str:
    response = service.handle(post(batch), FakeContext())
    assert response["statusCode"] == 200, response["body"]
    return response["body"]


@pytest.fixture(scope="module")
def bundled_service(bundled_model_path) -> InferenceService:
    return InferenceService(model=load_model(bundled_model_path), max_rows=10_000)


@pytest.mark.parametrize("form", ["rows", "records"])
def test_handler_answers_golden_predictions_exactly(bundled_service, golden, form):
    names = golden["feature_names"]
    rows = [row["features"] for row in golden["rows"]]
    batch = rows if form == "rows" else [dict(zip(names, row, strict=True)) for row in rows]
    answer = json.loads(_predict(bundled_service, batch))
    expected = [float(row["prediction"]) for row in golden["rows"]]
    mismatches = [i for i, (a, e) in enumerate(zip(answer, expected, strict=True)) if a != e]
    assert mismatches == [], f"golden rows {mismatches[:5]} differ: handler {answer[:3]}"


def test_handler_sends_golden_float32_text(bundled_service, golden):
    body = _predict(bundled_service, [row["features"] for row in golden["rows"]])
    assert body == "[" + ",".join(row["prediction"] for row in golden["rows"]) + "]"
