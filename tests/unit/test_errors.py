"""One example per error code of the contract, with its status, row and feature."""

from __future__ import annotations

import hashlib
import json

import pytest
import xgboost as xgb
from ml_handler.batch import FAST_PATH_MIN_VALUES
from ml_handler.config import HandlerConfig
from ml_handler.service import InferenceService

from tests.unit.events import FakeContext, function_url_event, post
from tests.unit.small_model import FEATURES, SMALL_MAX_ROWS

F0, F1, F2, F3, F4 = FEATURES
GOOD_ROW = [7.4, 3.51, 9.8, None, 1]
GOOD_RECORD = dict(zip(FEATURES, GOOD_ROW, strict=True))


def record(**changes: object) -> dict[str, object]:
    return {**GOOD_RECORD, **changes}


def error_of(response: dict) -> dict[str, object]:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])["error"]


def send(service: InferenceService, event: dict[str, object]) -> dict:
    return service.handle(event, FakeContext())


WITHOUT_F2 = {key: value for key, value in GOOD_RECORD.items() if key != F2}
j = json.dumps

# (id, raw body text, status, code, row, feature)
BAD_BODIES = [
    ("invalid_json", "[{]", 400, "invalid_json", None, None),
    ("empty_body", "", 400, "invalid_json", None, None),
    ("trailing_garbage", "[[1,2,3,4,5]] x", 400, "invalid_json", None, None),
    ("nan_literal", "[[NaN,1,2,3,4]]", 400, "non_finite_number", None, None),
    ("infinity_literal", "[[Infinity,1,2,3,4]]", 400, "non_finite_number", None, None),
    ("minus_infinity_literal", "[[1,-Infinity,2,3,4]]", 400, "non_finite_number", None, None),
    ("double_overflow", "[[1,1e999,2,3,4]]", 400, "non_finite_number", None, None),
    ("object_not_list", j(GOOD_RECORD), 400, "not_a_list", None, None),
    ("number_not_list", "42", 400, "not_a_list", None, None),
    ("empty_list", "[]", 400, "empty_batch", None, None),
    ("record_not_object", j([GOOD_RECORD, [1, 2, 3, 4, 5]]), 400, "record_not_object", 1, None),
    ("row_not_array", j([GOOD_ROW, 5]), 400, "row_not_array", 1, None),
    ("first_row_scalar", "[1, 2]", 400, "row_not_array", 0, None),
    ("mixed_forms", j([GOOD_ROW, GOOD_RECORD]), 400, "mixed_forms", 1, None),
    ("missing_feature", j([GOOD_RECORD, WITHOUT_F2]), 400, "missing_feature", 1, F2),
    ("unknown_feature", j([record(colour=1)]), 400, "unknown_feature", 0, "colour"),
    ("string_value", j([GOOD_RECORD, record(**{F1: "3.2"})]), 400, "invalid_value", 1, F1),
    ("boolean_value", j([record(**{F4: True})]), 400, "invalid_value", 0, F4),
    ("false_in_rows_form", j([GOOD_ROW, [1, 2, False, 4, 5]]), 400, "invalid_value", 1, F2),
    ("object_value", j([record(**{F3: {"v": 1}})]), 400, "invalid_value", 0, F3),
    ("array_value", j([GOOD_ROW, GOOD_ROW, [1, 2, 3, 4, [5]]]), 400, "invalid_value", 2, F4),
    ("float32_overflow", j([GOOD_ROW, [1, 2, 3, -1e39, 5]]), 400, "value_out_of_range", 1, F3),
    ("row_too_short", j([GOOD_ROW, [1, 2, 3, 4]]), 400, "wrong_row_length", 1, None),
    ("row_too_long", j([[1, 2, 3, 4, 5, 6]]), 400, "wrong_row_length", 0, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code", "row", "feature"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_client_error_names_code_row_and_feature_for_bad_body(
    small_service, body, status, code, row, feature
):
    response = send(small_service, function_url_event("POST", body))
    assert response["statusCode"] == status
    error = error_of(response)
    assert error["code"] == code
    assert error.get("row") == row
    assert error.get("feature") == feature
    assert set(error) <= {"code", "message", "row", "feature"}


def test_first_bad_row_reported_when_several_rows_bad(small_service):
    batch = [GOOD_RECORD, record(**{F0: "x"}), {F0: 1}]
    error = error_of(send(small_service, post(batch)))
    # Shape errors are found before value errors: row 2 lacks features, row 1 has a bad value.
    assert (error["code"], error["row"]) == ("missing_feature", 2)
    batch = [GOOD_RECORD, record(**{F0: "x"}), record(**{F1: "y"})]
    assert error_of(send(small_service, post(batch)))["row"] == 1


def test_prediction_returned_when_value_is_null(small_service):
    response = send(small_service, post([record(**{name: None for name in FEATURES})]))
    assert response["statusCode"] == 200
    (prediction,) = json.loads(response["body"])
    assert isinstance(prediction, float)


def test_invalid_utf8_when_base64_body_is_not_utf8(small_service):
    response = send(small_service, function_url_event("POST", b'[{"pH": "\xff\xfe"}]'))
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "invalid_utf8"


def test_invalid_utf8_when_plain_body_holds_lone_surrogate(small_service):
    response = send(small_service, function_url_event("POST", '[[1, 2, 3, 4, "\udcff"]]'))
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "invalid_utf8"


@pytest.mark.parametrize("body", ["not base64!", "AAA", "w6k=\n", "éé=="])
def test_invalid_base64_when_body_flagged_but_not_base64(small_service, body):
    event = function_url_event("POST", body)
    event["isBase64Encoded"] = True
    response = send(small_service, event)
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "invalid_base64"
    assert error_of(response)["message"] == "body is not valid base64"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", ""])
def test_method_not_allowed_with_allow_header_for_other_methods(small_service, method):
    response = send(small_service, function_url_event(method, json.dumps([GOOD_ROW])))
    assert response["statusCode"] == 405
    assert error_of(response)["code"] == "method_not_allowed"
    allowed = {m.strip() for m in response["headers"]["allow"].split(",")}
    assert allowed == {"GET", "POST"}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_unsupported_media_type_for_non_json_content_type(small_service, content_type):
    event = function_url_event(
        "POST", json.dumps([GOOD_ROW]), headers={"content-type": content_type}
    )
    response = send(small_service, event)
    assert response["statusCode"] == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "Application/JSON"},
        {"content-type": "application/vnd.api+json"},
        {},
    ],
    ids=["charset", "upper_case", "plus_json", "no_content_type"],
)
def test_prediction_returned_for_json_or_absent_content_type(small_service, headers):
    response = send(
        small_service, function_url_event("POST", json.dumps([GOOD_ROW]), headers=headers)
    )
    assert response["statusCode"] == 200


def test_too_many_rows_when_batch_exceeds_max_rows_env(small_compiled):
    config = HandlerConfig.from_env({"MAX_ROWS": "3"})
    service = InferenceService(model=small_compiled, max_rows=config.max_rows)
    assert send(service, post([GOOD_ROW] * 3))["statusCode"] == 200
    response = send(service, post([GOOD_ROW] * 4))
    assert response["statusCode"] == 413
    error = error_of(response)
    assert error["code"] == "too_many_rows"
    assert "3" in error["message"]


def test_metadata_returned_for_get(small_service, small_model_paths):
    response = send(small_service, function_url_event("GET"))
    assert response["statusCode"] == 200
    metadata = json.loads(response["body"])
    assert metadata == {
        "features": [
            {"name": name, "type": kind}
            for name, kind in zip(FEATURES, ("q", "q", "q", "q", "i"), strict=True)
        ],
        "model_sha256": hashlib.sha256(small_model_paths["ubj"].read_bytes()).hexdigest(),
        "xgboost_version": xgb.__version__,
        "max_rows": SMALL_MAX_ROWS,
        # No Lambda context here: nothing to report about the function.
        "function": {
            "invoked_function_arn": None,
            "memory_limit_in_mb": None,
            "remaining_time_in_millis": None,
        },
    }


# Large batches take a one-pass conversion that accepts booleans as 1.0/0.0 unless caught.
LARGE = -(-FAST_PATH_MIN_VALUES // len(FEATURES))  # rows: just enough to take that path
LARGE_ROW = [1.0, 0, 2.5, 1, 0.0]


@pytest.mark.parametrize("flag", [True, False])
@pytest.mark.parametrize("row", [0, LARGE // 2, LARGE - 1])
def test_invalid_value_when_boolean_hides_in_large_batch(small_service, flag, row):
    batch = [list(LARGE_ROW) for _ in range(LARGE)]
    batch[row][3] = flag
    error = error_of(send(small_service, post(batch)))
    assert (error["code"], error["row"], error["feature"]) == ("invalid_value", row, F3)


def test_large_batch_predictions_match_small_batches(small_service):
    rows = [[float(i % 7), i % 2, -1.5 * i, None if i % 5 else 3, i % 3] for i in range(LARGE)]
    null_free = [[0.0 if v is None else v for v in row] for row in rows]
    for batch in (rows, null_free):
        whole = json.loads(send(small_service, post(batch))["body"])
        one_by_one = [json.loads(send(small_service, post([row]))["body"])[0] for row in batch]
        assert whole == one_by_one


def test_value_out_of_range_named_in_large_batch(small_service):
    batch = [list(LARGE_ROW) for _ in range(LARGE)]
    batch[LARGE - 2][1] = 3.5e38
    error = error_of(send(small_service, post(batch)))
    assert (error["code"], error["row"], error["feature"]) == ("value_out_of_range", LARGE - 2, F1)


@pytest.mark.parametrize(
    "request_context",
    [None, {}, {"http": {}}, {"http": None}, {"http": {"method": ""}}],
    ids=["no-context", "empty-context", "no-method", "null-http", "empty-method"],
)
def test_method_not_allowed_names_none_when_the_event_has_no_method(small_service, request_context):
    event = function_url_event("POST", "[[1,2,3,4,5]]")
    if request_context is None:
        del event["requestContext"]
    else:
        event["requestContext"] = request_context
    response = small_service.handle(event, FakeContext())
    if request_context == {"http": None}:
        # Not a payload 2.0 event at all: the one place bugs turn into a 500.
        assert response["statusCode"] == 500
        return
    assert response["statusCode"] == 405
    message = json.loads(response["body"])["error"]["message"]
    assert message == "method (none) is not allowed; use GET, POST"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_responses_are_never_marked_base64_encoded(small_service, method):
    body = "[[1,2,3,4,5]]" if method != "GET" else None
    response = small_service.handle(function_url_event(method, body), FakeContext())
    assert response["isBase64Encoded"] is False


def test_empty_batch_message_reads_in_full(small_service):
    response = send(small_service, function_url_event("POST", "[]"))
    assert error_of(response)["code"] == "empty_batch"
    assert error_of(response)["message"] == "the batch has no rows"


def test_not_a_list_message_reads_in_full(small_service):
    response = send(small_service, function_url_event("POST", '{"rows": []}'))
    assert error_of(response)["code"] == "not_a_list"
    assert (
        error_of(response)["message"]
        == "body must be a JSON array of records (objects) or rows (arrays)"
    )
