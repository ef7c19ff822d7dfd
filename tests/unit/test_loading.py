"""Loading a model inside the test, from each form MODEL_PATH may name (a library, or an XGBoost
JSON/UBJSON file compiled on first use): the schema GET reports, the attributes a caller may
read, and the refusals at init.

The models here are loaded in each test rather than taken from the session fixtures on purpose:
mutmut credits a call made while a session fixture is set up to the first test that asked for
it, so code that only runs at load time would be checked by that one test alone."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from ml_handler.batch import to_matrix
from ml_handler.config import HandlerConfig
from ml_handler.model import ModelLoadError, load_model
from ml_handler.service import InferenceService
from model_compiler.codegen import ABI_VERSION

from tests.unit.events import FakeContext, function_url_event, post
from tests.unit.small_model import FEATURE_TYPES, FEATURES, training_data

MODEL_FILES = ["ubj", "json", "compiled"]


@pytest.fixture
def model_file(request: pytest.FixtureRequest, small_model_paths, small_library) -> Path:
    return small_library if request.param == "compiled" else small_model_paths[request.param]


def get_schema(service: InferenceService) -> dict[str, object]:
    response = service.handle(function_url_event("GET"), FakeContext())
    assert response["statusCode"] == 200
    return json.loads(response["body"])


@pytest.mark.parametrize("model_file", MODEL_FILES, indirect=True)
def test_schema_describes_loaded_model_for_each_model_file(model_file, small_model_paths):
    model = load_model(model_file)
    service = InferenceService(model=model, max_rows=17)
    schema = get_schema(service)
    assert schema["features"] == [
        {"name": name, "type": kind} for name, kind in zip(FEATURES, FEATURE_TYPES, strict=True)
    ]
    # The compiled library reports the model it was built from.
    source = small_model_paths["ubj"] if model_file.suffix == ".so" else model_file
    assert schema["model_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert schema["xgboost_version"] == xgb.__version__
    assert schema["max_rows"] == 17
    assert (model.path, model.sha256, model.feature_names) == (
        model_file,
        schema["model_sha256"],
        FEATURES,
    )


@pytest.mark.parametrize("model_file", MODEL_FILES, indirect=True)
def test_predictions_match_booster_right_after_loading(model_file, reference_booster):
    batch = [[1.5, None, -3.0, 20.0, 1], [None] * len(FEATURES), [0.25, 2.0, 9.5, -4.0, 0]]
    service = InferenceService(model=load_model(model_file), max_rows=8)
    response = service.handle(post(batch), FakeContext())
    assert response["statusCode"] == 200, response["body"]
    expected = reference_booster.inplace_predict(np.array(batch, dtype=np.float32))
    np.testing.assert_array_equal(np.array(json.loads(response["body"]), np.float32), expected)


def test_feature_types_reported_as_float_when_model_has_none(tmp_path):
    x, y = training_data()
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=y, feature_names=list(FEATURES)), 2)
    assert booster.feature_types is None  # the case under test
    path = tmp_path / "untyped.ubj"
    booster.save_model(path)
    schema = get_schema(InferenceService(model=load_model(path), max_rows=4))
    assert [feature["type"] for feature in schema["features"]] == ["float"] * len(FEATURES)
    assert [feature["name"] for feature in schema["features"]] == list(FEATURES)


@pytest.mark.parametrize("name", ["absent.so", "absent.ubj", "absent.json"])
def test_model_load_error_names_file_when_model_file_missing(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ModelLoadError, match="cannot read model file") as raised:
        load_model(path)
    assert str(path) in str(raised.value)


def test_model_load_error_names_file_when_model_path_is_a_directory(tmp_path):
    folder = tmp_path / "model.json"
    folder.mkdir()
    with pytest.raises(ModelLoadError, match="cannot read model file") as raised:
        load_model(folder)
    assert str(folder) in str(raised.value)


def shared_library(folder: Path, source: str) -> Path:
    """A real shared library built from `source` with the C compiler the fixtures use."""
    (folder / "lib.c").write_text(source + "\n")
    path = folder / "lib.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-o", str(path), str(folder / "lib.c")],
        check=True,
        capture_output=True,
    )
    return path


def impostor(*, abi: int, features: int) -> str:
    """C for a library with model_compiler's entry points whose answers are chosen by the test."""
    return f"""
#include <stddef.h>
int ml_abi_version(void) {{ return {abi}; }}
size_t ml_num_features(void) {{ return {features}; }}
void ml_predict(const float *rows, size_t count, float *out) {{ }}
size_t ml_format_json(const float *predictions, size_t count, char *text) {{ return 0; }}
"""


def test_model_load_error_when_library_abi_version_differs(tmp_path):
    path = shared_library(tmp_path, impostor(abi=ABI_VERSION + 98, features=len(FEATURES)))
    with pytest.raises(ModelLoadError, match=f"ABI version {ABI_VERSION + 98}") as raised:
        load_model(path)
    message = str(raised.value)
    assert str(path) in message
    # Says how to fix it, in full: the line a Lambda's init error shows.
    assert message == (
        f"{path} has ABI version {ABI_VERSION + 98}; this handler needs {ABI_VERSION}: "
        "recompile it with the model_compiler of this handler"
    )


def test_model_load_error_when_library_of_this_abi_lacks_the_schema_accessors(tmp_path):
    # ml_feature_name and the rest are ABI 3's: a library claiming the version must have them.
    path = shared_library(tmp_path, impostor(abi=ABI_VERSION, features=len(FEATURES)))
    with pytest.raises(ModelLoadError, match="not a model_compiler library") as raised:
        load_model(path)
    assert str(path) in str(raised.value)
    assert "ml_feature_name" in str(raised.value)


def test_model_load_error_names_file_when_library_is_not_loadable(tmp_path):
    path = tmp_path / "model.so"
    path.write_bytes(b"\x7fELF but not really a shared object")
    with pytest.raises(ModelLoadError, match="cannot load compiled model") as raised:
        load_model(path)
    assert str(path) in str(raised.value)


def test_model_load_error_names_file_when_library_is_not_from_model_compiler(tmp_path):
    path = shared_library(tmp_path, "int unrelated(void) { return 1; }")
    with pytest.raises(ModelLoadError, match="not a model_compiler library") as raised:
        load_model(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("name", ["ubj", "json"])
def test_service_from_config_serves_model_named_by_env(small_model_paths, name):
    path = small_model_paths[name]
    config = HandlerConfig.from_env({"MODEL_PATH": str(path), "MAX_ROWS": "3"})
    service = InferenceService.from_config(config)
    schema = get_schema(service)
    assert schema["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert schema["max_rows"] == 3
    assert service.handle(post([[1, 2, 3, 4, 5]] * 4), FakeContext())["statusCode"] == 413


@pytest.mark.parametrize("model_file", MODEL_FILES, indirect=True)
def test_predict_gives_float32_array_equal_to_predict_json(model_file, reference_booster):
    model = load_model(model_file)
    batch = [[1.5, None, -3.0, 20.0, 1], [None] * len(FEATURES), [0.25, 2.0, 9.5, -4.0, 0]]
    rows = to_matrix(
        batch, feature_names=FEATURES, feature_set=frozenset(FEATURES), max_rows=len(batch)
    )
    predictions = model.predict(rows)
    assert isinstance(predictions, array)
    assert predictions.typecode == "f"
    expected = reference_booster.inplace_predict(np.array(batch, dtype=np.float32))
    np.testing.assert_array_equal(np.frombuffer(predictions, dtype=np.float32), expected)
    as_float32 = np.array(json.loads(model.predict_json(rows)), dtype=np.float32)
    np.testing.assert_array_equal(as_float32, np.frombuffer(predictions, dtype=np.float32))


@pytest.mark.parametrize(("present", "expected"), [(True, "model.so"), (False, "model.ubj")])
def test_default_model_path_is_the_library_when_the_folder_holds_one(tmp_path, present, expected):
    from ml_handler.config import default_model_path

    (tmp_path / "model.ubj").write_bytes(b"{}")
    if present:
        (tmp_path / "model.so").write_bytes(b"\x7fELF")
    assert default_model_path(str(tmp_path)) == str(tmp_path / expected)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 10_000),
        ({"MAX_ROWS": ""}, 10_000),
        ({"MAX_ROWS": "1"}, 1),
    ],
)
def test_handler_config_takes_one_as_the_lowest_count_when_read_from_env(env, expected):
    config = HandlerConfig.from_env({"MODEL_PATH": "m.ubj", **env})
    assert config.max_rows == expected


@pytest.mark.parametrize("raw", ["0", "-1", "XXXX", "1.5"])
def test_handler_config_names_the_variable_when_a_count_is_not_positive(raw):
    with pytest.raises(ValueError, match=f"MAX_ROWS must be a positive integer, got '{raw}'"):
        HandlerConfig.from_env({"MODEL_PATH": "m.ubj", "MAX_ROWS": raw})


def test_compiled_model_reads_formats_and_checks_rows_right_after_loading(small_library):
    # Loaded in the test body: mutations of CompiledModel.__init__ meet this test (a
    # session-scoped model is built during some other test).
    model = load_model(small_library)
    fast = model.parse_batch("[[1.5,null,-3.0,20.0,1],[0,0,0,0,0]]", max_rows=4)  # type: ignore[attr-defined]
    assert fast is not None
    assert (fast.rows, fast.width) == (2, len(FEATURES))
    body = model.predict_json(fast)
    assert body.startswith("[")
    assert len(json.loads(body)) == 2
    short = type(fast)(fast.values[:-1], rows=2, width=len(FEATURES))
    with pytest.raises(ValueError, match=f"expected rows of {len(FEATURES)} values"):
        model.predict(short)


def test_schema_reports_feature_names_byte_for_byte_whatever_they_hold(small_model_paths, tmp_path):
    # NUL (the library gives each name's length), C escapes and trigraphs ("??!" is "|" in C99),
    # an octal escape followed by a digit, non-ASCII (UTF-8): each reaches GET unchanged.
    odd = ["a\x00b", "back\\slash", "what??!", "été", "\x011"]
    document = json.loads(small_model_paths["json"].read_text())
    document["learner"]["feature_names"] = odd
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(document))
    model = load_model(path, cache_dir=str(tmp_path / "cache"))
    assert model.feature_names == tuple(odd)
    schema = get_schema(InferenceService(model=model, max_rows=2))
    assert [feature["name"] for feature in schema["features"]] == odd


def test_entry_point_serves_model_path_with_the_callers_request_id(
    small_library, reference_booster, monkeypatch, capsys
):
    """GIVEN MODEL_PATH naming a library WHEN the image's entry point (ml_handler.app, which
    loads at import) gets a POST THEN it answers with the model's predictions and logs the
    request id of the context Lambda passes, not the event's."""
    monkeypatch.setenv("MODEL_PATH", str(small_library))
    monkeypatch.setenv("MAX_ROWS", "4")
    monkeypatch.delitem(sys.modules, "ml_handler.app", raising=False)
    app = importlib.import_module("ml_handler.app")
    monkeypatch.delitem(sys.modules, "ml_handler.app")  # the next import loads afresh
    batch = [[1.5, None, -3.0, 20.0, 1]]
    capsys.readouterr()

    response = app.lambda_handler(post(batch), FakeContext("ctx-entry-7"))

    assert response["statusCode"] == 200, response["body"]
    expected = reference_booster.inplace_predict(np.array(batch, dtype=np.float32))
    np.testing.assert_array_equal(np.array(json.loads(response["body"]), np.float32), expected)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["request_id"] == "ctx-entry-7"
