"""The deployed model is the bundled one: the endpoint answers the committed golden predictions
(xgboost's, recorded in handler/model/golden_predictions.json), not whatever the handler code
computes in-process, so a wrong model inside a deployed image fails here, locally and nightly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import invoker_client
from tests.e2e.targets import Deployment


@pytest.fixture(scope="module")
def golden(project_root: Path) -> dict[str, Any]:
    return json.loads((project_root / "handler/model/golden_predictions.json").read_text())


@pytest.mark.parametrize("form", ["rows", "records"])
def test_deployed_endpoint_answers_golden_predictions(
    deployment: Deployment, golden: dict[str, Any], form: str
) -> None:
    names = golden["feature_names"]
    rows = [row["features"] for row in golden["rows"]]
    batch = rows if form == "rows" else [dict(zip(names, row, strict=True)) for row in rows]

    with invoker_client(deployment) as client:
        predictions = client.predict(json.dumps(batch).encode())

    expected = [float(row["prediction"]) for row in golden["rows"]]
    wrong = [
        i for i, (got, want) in enumerate(zip(predictions, expected, strict=True)) if got != want
    ]
    assert wrong == [], (
        f"{len(wrong)} of {len(expected)} golden rows differ, e.g. row {wrong[:1]}: deployed "
        f"{[predictions[i] for i in wrong[:3]]}, golden {[expected[i] for i in wrong[:3]]}"
    )


def test_deployed_model_is_the_one_the_golden_file_was_made_for(
    deployment: Deployment, golden: dict[str, Any], project_root: Path
) -> None:
    card = json.loads((project_root / "handler/model/model_card.json").read_text())
    with invoker_client(deployment) as client:
        metadata = client.metadata()

    assert metadata["model_sha256"] == golden["model_sha256"] == card["model_sha256"]
    assert [f["name"] for f in metadata["features"]] == golden["feature_names"]
    assert [f["type"] for f in metadata["features"]] == card["feature_types"]
