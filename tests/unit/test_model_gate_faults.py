"""Each way a bad model could ship turns the model gate red with a message naming the problem.
Bad artefacts are built in temporary copies of the project; the committed files are never
touched."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from ml_handler.model import load_model
from ml_handler.service import InferenceService

from tests.unit.events import FakeContext, post
from tests.unit.small_model import FEATURES, train_small_model, training_data
from training import gate, refresh, train
from training.artefacts import ArtefactError
from training.probe import ModelProbeError
from training.spec import load_spec


@pytest.fixture
def project(tmp_path: Path, project_root: Path) -> Path:
    """A copy of what the model gate reads: spec, data, model folder."""
    for part in ("training/model.toml", "data/wine_concat.csv"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project_root / part, tmp_path / part)
    shutil.copytree(project_root / "handler/model", tmp_path / "handler/model")
    return tmp_path


def _bundle(root: Path) -> gate.Bundle:
    return gate.Bundle.load(load_spec(root), probe=False)


def _model(root: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(root / "handler/model/model.ubj")
    return booster


def _save_with_matching_card_sha(root: Path, booster: xgb.Booster) -> None:
    path = root / "handler/model/model.ubj"
    booster.save_model(path)
    card_path = root / "handler/model/model_card.json"
    card = json.loads(card_path.read_text())
    card["model_sha256"] = gate.sha256_file(path)
    card_path.write_text(json.dumps(card, indent=2))


def test_gate_red_when_three_tree_model_has_matching_card(project):
    _save_with_matching_card_sha(project, _model(project)[:3])
    bundle = _bundle(project)
    with pytest.raises(gate.ModelGateError, match=r"num_trees is 400.*gives 3"):
        gate.check_card(bundle)
    with pytest.raises(gate.ModelGateError, match=r"golden_predictions.json was made for model"):
        gate.check_golden(bundle)
    with pytest.raises(gate.ModelGateError, match=r"3 trees bundled, 400 retrained"):
        gate.check_reproducible(bundle)


def test_gate_red_when_three_tree_model_has_regenerated_card_and_golden(project):
    _model(project)[:3].save_model(project / "handler/model/model.ubj")
    refresh.refresh(load_spec(project), probe=False)
    bundle = _bundle(project)
    gate.check_card(bundle)  # consistent with itself...
    gate.check_golden(bundle)
    with pytest.raises(gate.ModelGateError, match=r"RMSE 0.84.* above the ceiling 0.7"):
        gate.check_quality(bundle)
    with pytest.raises(gate.ModelGateError, match=r"not what `python -m training.train` produces"):
        gate.check_reproducible(bundle)


def test_gate_red_when_model_retrained_with_other_hyperparameters_and_regenerated(project):
    spec = load_spec(project)
    assert spec.training is not None
    other = dataclasses.replace(spec.training, params={**spec.training.params, "max_depth": 3})
    train.train_bundled(dataclasses.replace(spec, training=other)).save_model(spec.model_path)
    refresh.refresh(spec, probe=False)
    bundle = _bundle(project)
    for check in (gate.check_card, gate.check_golden, gate.check_schema, gate.check_quality):
        check(bundle)  # this model is plausible: only retraining shows it is not the recipe's
    with pytest.raises(gate.ModelGateError, match=r"predictions on the data set differ by up to"):
        gate.check_reproducible(bundle)


def test_gate_red_when_features_reordered_in_model(project):
    booster = _model(project)
    names = list(booster.feature_names or [])
    names[0], names[1] = names[1], names[0]
    booster.feature_names = names
    _save_with_matching_card_sha(project, booster)
    bundle = _bundle(project)
    with pytest.raises(
        gate.ModelGateError,
        match=r"feature 0 was 'fixed acidity' \(q\), the model has 'volatile acidity'.*--bump",
    ):
        gate.check_schema(bundle)
    with pytest.raises(gate.ModelGateError, match=r"feature_names"):
        gate.check_card(bundle)
    # ...and the one command refuses to paper over it without a deliberate bump.
    with pytest.raises(ArtefactError, match=r"differs from schema version 1.*--bump-schema"):
        refresh.refresh(load_spec(project), probe=False)


def test_gate_red_when_golden_prediction_edited(project):
    path = project / "handler/model/golden_predictions.json"
    text = path.read_text()
    first = json.loads(text)["rows"][5]["prediction"]
    path.write_text(text.replace(f'"prediction": "{first}"', '"prediction": "5.5"', 1))
    bundle = _bundle(project)
    with pytest.raises(gate.ModelGateError, match=r"row 5 .* says '5.5', xgboost predicts"):
        gate.check_golden(bundle)
    with pytest.raises(gate.ModelGateError, match=r"golden.sha256"):
        gate.check_card(bundle)


def test_gate_red_when_golden_feature_value_edited(project):
    path = project / "handler/model/golden_predictions.json"
    golden = json.loads(path.read_text())
    row = golden["rows"][3]
    column = next(i for i, v in enumerate(row["features"]) if v is not None)
    row["features"][column] += 1
    path.write_text(json.dumps(golden))
    with pytest.raises(gate.ModelGateError, match=r"must be drawn from the data"):
        gate.check_golden(_bundle(project))


def test_gate_red_when_golden_has_no_null_rows(project):
    spec_path = project / "training/model.toml"
    spec_path.write_text(spec_path.read_text().replace("null_fraction = 0.25", "null_fraction = 0"))
    refresh.refresh(load_spec(project), probe=False)
    with pytest.raises(gate.ModelGateError, match=r"needs rows with null features"):
        gate.check_golden(_bundle(project))


def test_gate_red_when_model_truncated(project):
    path = project / "handler/model/model.ubj"
    path.write_bytes(path.read_bytes()[:100])
    # xgboost's reason: a length in the first 100 bytes points past the end.
    with pytest.raises(
        ModelProbeError, match=r"model.ubj: the model does not load: .*Check failed: .* vs\. 100\)"
    ):
        gate.Bundle.load(load_spec(project))


def test_gate_red_not_crashed_when_model_tree_corrupt(project):
    """A child index out of range passes xgboost's loader and crashes xgboost at predict
    (SIGSEGV): the child process dies, the gate reports it."""
    path = project / "handler/model/model.ubj"
    raw = bytearray(path.read_bytes())
    at = raw.find(b"left_children[$l#L") + len(b"left_children[$l#L") + 8
    raw[at : at + 4] = struct.pack(">i", 10**9)
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelProbeError, match=r"SIGSEGV"):
        gate.Bundle.load(load_spec(project))


def test_gate_red_when_data_changed(project):
    path = project / "data/wine_concat.csv"
    path.write_text(path.read_text().replace(",5,red\n", ",6,red\n", 1))
    with pytest.raises(gate.ModelGateError, match=r"data.sha256 .* other data"):
        gate.check_card(_bundle(project))


def test_gate_red_when_card_metric_edited(project):
    card_path = project / "handler/model/model_card.json"
    card = json.loads(card_path.read_text())
    card["holdout"]["rmse"] = 0.6
    card_path.write_text(json.dumps(card))
    with pytest.raises(gate.ModelGateError, match=r"holdout.rmse records 0.6, .* scores 0.683149"):
        gate.check_card(_bundle(project))


def test_gate_red_when_ceiling_or_margin_not_met(project):
    spec_path = project / "training/model.toml"
    text = spec_path.read_text()
    spec_path.write_text(text.replace("mae_max = 0.55", "mae_max = 0.5"))
    with pytest.raises(gate.ModelGateError, match=r"MAE 0.523330 is above the ceiling 0.5"):
        gate.check_quality(_bundle(project))
    spec_path.write_text(text.replace("baseline = 0.15", "baseline = 0.25"))
    with pytest.raises(gate.ModelGateError, match=r"only 21.8% below the baseline"):
        gate.check_quality(_bundle(project))


def test_gate_red_when_image_pins_other_xgboost(project, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.4.6\nxgboost-cpu==3.1.0\n")
    with pytest.raises(gate.ModelGateError, match=r"pins xgboost 3.1.0"):
        gate.check_runtime_pins(_bundle(project), requirements=requirements)


def test_gate_red_when_schema_lock_history_rewritten(project):
    lock_path = project / "handler/model/schema_lock.json"
    lock = json.loads(lock_path.read_text())
    lock["versions"][0]["schema_version"] = 2
    lock_path.write_text(json.dumps(lock))
    with pytest.raises(gate.ModelGateError, match=r"must run 1, 2"):
        gate.check_schema(_bundle(project))


def test_schema_change_ships_when_bumped_deliberately(project):
    """GIVEN a model whose indicator features became quantitative WHEN refreshed with
    --bump-schema THEN the lock keeps version 1, adds 2, and the gate passes."""
    booster = _model(project)
    booster.feature_types = ["q"] * len(booster.feature_names or [])
    booster.save_model(project / "handler/model/model.ubj")
    with pytest.raises(ArtefactError, match=r"feature 11 was 'color_red' \(i\)"):
        refresh.refresh(load_spec(project), probe=False)
    card = refresh.refresh(load_spec(project), bump_schema=True, probe=False)
    assert card["schema_version"] == 2
    lock = json.loads((project / "handler/model/schema_lock.json").read_text())
    assert [v["schema_version"] for v in lock["versions"]] == [1, 2]
    assert lock["versions"][0]["features"][11] == {"name": "color_red", "type": "i"}
    gate.check_schema(_bundle(project))
    with pytest.raises(ArtefactError, match=r"bump only for a change"):
        refresh.refresh(load_spec(project), bump_schema=True, probe=False)


# --- bringing your own model --------------------------------------------------------------


def _own_project(root: Path, wine_root: Path) -> Path:
    (root / "training").mkdir(parents=True)
    spec = (wine_root / "training/model.toml").read_text()
    # A model trained elsewhere: no [training] recipe; its own data, target and thresholds.
    head, _, rest = spec.partition("[training]")
    _, _, tail = rest.partition("# Holdout quality")
    spec = (head + "# Holdout quality" + tail).replace("data/wine_concat.csv", "data/own.csv")
    spec = spec.replace('target = "quality"', 'target = "y"').replace('stratify_by = "color"\n', "")
    spec = spec.replace("rmse_max = 0.70", "rmse_max = 1.3").replace(
        "mae_max = 0.55", "mae_max = 1.1"
    )
    (root / "training/model.toml").write_text(spec)
    (root / "data").mkdir()
    x, y = training_data(rows=400)
    lines = [
        ",".join(f'"{n}"' if '"' not in n else '"' + n.replace('"', '""') + '"' for n in FEATURES)
        + ",y"
    ]
    lines += [
        ",".join(f"{v:.6g}" if not np.isnan(v) else "0" for v in row) + f",{t:.6g}"
        for row, t in zip(x, y, strict=True)
    ]
    (root / "data/own.csv").write_text("\n".join(lines) + "\n")
    return root


def test_own_model_imported_with_one_command_and_gate_holds(tmp_path, project_root):
    root = _own_project(tmp_path / "own", project_root)
    source = tmp_path / "mine.json"
    train_small_model().save_model(source)
    refresh.main(["--root", str(root), "--model", str(source)])  # probes it in a child process

    bundle = gate.Bundle.load(load_spec(root), probe=False)
    gate.check_card(bundle)
    gate.check_golden(bundle)
    gate.check_schema(bundle)
    gate.check_quality(bundle)
    assert gate.check_reproducible(bundle) == "imported"
    assert bundle.card["feature_names"] == list(FEATURES)
    # The handler serves the imported model exactly as the golden file says.
    service = InferenceService(model=load_model(root / "handler/model/model.ubj"), max_rows=1000)
    rows = [row["features"] for row in bundle.golden["rows"]]
    response = service.handle(post(rows), FakeContext())
    assert json.loads(response["body"]) == [float(r["prediction"]) for r in bundle.golden["rows"]]


def test_own_model_needs_schema_bump_to_replace_the_wine_model(project, tmp_path):
    source = tmp_path / "mine.ubj"
    train_small_model().save_model(source)
    with pytest.raises(ArtefactError, match=r"differs from schema version 1"):
        refresh.refresh(load_spec(project), source=source, probe=False)
    # Refused: nothing was written.
    assert _model(project).feature_names != list(FEATURES)


def test_own_model_without_feature_names_refused(project, tmp_path):
    source = tmp_path / "anonymous.json"
    train_small_model(feature_names=False).save_model(source)
    with pytest.raises(ArtefactError, match=r"no feature names"):
        refresh.refresh(load_spec(project), source=source, probe=False)
