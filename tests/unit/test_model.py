"""Loading models: formats (compiled on first use), refusals at init, the reference fixture, the
bundled model, config."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from ml_handler.config import HandlerConfig
from ml_handler.model import ModelLoadError, load_model
from ml_handler.service import InferenceService

from tests.unit.events import FakeContext, function_url_event, post
from tests.unit.small_model import FEATURES, SMALL_MAX_ROWS, train_small_model
from tests.unit.wine_schema import WINE_FEATURES

# Documented for tests/fixtures/xgboost_wine_quality.json (XGBoost 1.6.2) on samples.json.
REFERENCE_PREDICTIONS = [6.573914, 4.869721]


def predict_via(service: InferenceService, batch: object) -> list[float]:
    response = service.handle(post(batch), FakeContext())
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def test_predictions_identical_for_ubj_and_json_model_files(small_model_paths):
    rng = np.random.default_rng(3)
    batch = rng.normal(scale=4, size=(SMALL_MAX_ROWS, len(FEATURES))).round(4).tolist()
    batch[0] = [None] * len(FEATURES)
    answers = {
        kind: predict_via(InferenceService(model=load_model(path), max_rows=SMALL_MAX_ROWS), batch)
        for kind, path in small_model_paths.items()
    }
    assert answers["json"] == answers["ubj"]
    assert len(set(answers["json"])) > 1  # the model is not a constant


def test_model_load_error_when_model_has_no_feature_names(tmp_path):
    path = tmp_path / "anonymous.json"
    train_small_model(feature_names=False).save_model(path)
    with pytest.raises(ModelLoadError, match="no feature names") as raised:
        load_model(path)
    assert str(path) in str(raised.value)
    assert "feature_names" in str(raised.value)  # says how to fix it


def test_model_load_error_at_init_when_model_path_env_names_anonymous_model(tmp_path):
    path = tmp_path / "anonymous.ubj"
    train_small_model(feature_names=False).save_model(path)
    with pytest.raises(ModelLoadError, match="no feature names"):
        InferenceService.from_config(HandlerConfig.from_env({"MODEL_PATH": str(path)}))


def test_model_load_error_when_model_file_missing(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot read model file"):
        load_model(tmp_path / "absent.ubj")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a model",
        b'{"learner": 1}',
        b"\x00\x01\x02",
        # xgboost's error message echoes these bytes, which are not UTF-8.
        b"\xd6xB\x8d;1\xfe\xb7x\x8a\xd6\x8cye\xa3\xdc&;\xa2&\xde\xed\x85c\xbd\x03\xab\xc6\x10(",
    ],
    ids=["empty", "text", "json_not_model", "binary", "binary_non_utf8_message"],
)
def test_model_load_error_when_file_is_not_a_model(tmp_path, content):
    path = tmp_path / "junk.json"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="not an XGBoost"):
        load_model(path)


def test_reference_model_gives_documented_predictions_via_model_path_env(
    monkeypatch, fixtures_dir, samples
):
    monkeypatch.setenv("MODEL_PATH", str(fixtures_dir / "xgboost_wine_quality.json"))
    service = InferenceService.from_config(HandlerConfig.from_env())
    answer = predict_via(service, samples)
    assert answer == pytest.approx(REFERENCE_PREDICTIONS, abs=1e-5)


def test_bundled_model_used_when_model_path_env_unset(monkeypatch, bundled_model_path):
    monkeypatch.delenv("MODEL_PATH", raising=False)
    assert Path(HandlerConfig.from_env().model_path).resolve() == bundled_model_path.resolve()


def test_bundled_model_has_wine_features_in_order(bundled_model_path):
    model = load_model(bundled_model_path)
    assert list(model.feature_names) == WINE_FEATURES


def test_bundled_model_answers_finite_predictions_for_samples(bundled_model_path, samples):
    service = InferenceService(model=load_model(bundled_model_path), max_rows=10)
    answer = predict_via(service, samples)
    assert len(answer) == len(samples)
    # Wine quality is scored 0-10; a finite number outside that would be a broken model.
    assert all(math.isfinite(value) and 0 <= value <= 10 for value in answer)


def test_bundled_model_card_describes_bundled_model(bundled_model_path):
    card = json.loads((bundled_model_path.parent / "model_card.json").read_text())
    assert card["model_sha256"] == hashlib.sha256(bundled_model_path.read_bytes()).hexdigest()
    assert card["feature_names"] == WINE_FEATURES
    assert card["model_file"] == bundled_model_path.name


def test_metadata_hash_matches_model_file_bytes(bundled_model_path):
    service = InferenceService(model=load_model(bundled_model_path), max_rows=7)
    metadata = json.loads(service.handle(function_url_event("GET"), FakeContext())["body"])
    assert metadata["model_sha256"] == hashlib.sha256(bundled_model_path.read_bytes()).hexdigest()
    assert [feature["name"] for feature in metadata["features"]] == WINE_FEATURES
    assert metadata["max_rows"] == 7


@pytest.mark.parametrize("value", ["0", "-5", "two", "1.5"])
def test_config_error_when_env_value_not_positive_integer(value):
    with pytest.raises(ValueError, match="MAX_ROWS"):
        HandlerConfig.from_env({"MAX_ROWS": value})


def test_config_defaults_when_env_empty():
    config = HandlerConfig.from_env({})
    assert config.max_rows == 10_000
    assert config.model_cache_dir == "~/.cache/cdk-ml-lambda/models"


def test_predictions_served_for_single_feature_model(tmp_path):
    # One feature name: itemgetter would return a bare value instead of a one-value row.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 1)).astype(np.float32)
    dtrain = xgb.DMatrix(x, label=2 * x[:, 0], feature_names=["only feature"])
    booster = xgb.train({"max_depth": 2, "nthread": 1}, dtrain, num_boost_round=5)
    path = tmp_path / "one.json"
    booster.save_model(path)
    service = InferenceService(model=load_model(path), max_rows=1000)
    batch = [{"only feature": value} for value in (-1.0, 0.5, None)]
    expected = booster.inplace_predict(np.array([[-1.0], [0.5], [np.nan]], dtype=np.float32))
    for payload in (batch, [[-1.0], [0.5], [None]], batch * 200):
        answer = predict_via(service, payload)
        np.testing.assert_array_equal(
            np.array(answer, dtype=np.float32), np.resize(expected, len(payload))
        )
