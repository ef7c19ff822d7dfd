"""Properties of the handler contract over generated batches, bodies and mutations."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import assume, given
from hypothesis import strategies as st
from ml_handler import batch as batch_module
from ml_handler.service import InferenceService

from tests.unit.events import FakeContext, function_url_event, post
from tests.unit.small_model import FEATURES
from tests.unit.strategies import (
    WIDTH,
    as_records,
    batches,
    is_valid_batch,
    json_values,
    rows,
)

CONTEXT = FakeContext("prop-request")


@pytest.fixture(scope="module", params=["few_values_path", "many_values_path"])
def conversion(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a property under both of the parser's conversions, whatever the batch size: the one
    for few values (Python checks) and the one for many (one pass through array and numpy)."""
    threshold = sys.maxsize if request.param == "few_values_path" else 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_module, "FAST_PATH_MIN_VALUES", threshold)
        yield request.param


WRONG_TYPED_VALUES = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=3),
)


def handle(service: InferenceService, event: dict[str, object]) -> dict:
    return service.handle(event, CONTEXT)


def predictions(response: dict) -> list[float]:
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["content-type"] == "application/json"
    body = json.loads(response["body"])
    assert isinstance(body, list)
    return body


def assert_client_error(response: dict) -> dict[str, object]:
    """A 4xx whose body is exactly {"error": {code, message, row?, feature?}}."""
    assert 400 <= response["statusCode"] < 500, response
    assert response["headers"]["content-type"] == "application/json"
    body = json.loads(response["body"])
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "row", "feature"}
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error.get("row", 0), int)
    assert isinstance(error.get("feature", ""), str)
    return error


def reference(booster: xgb.Booster, table: list[list[object]]) -> np.ndarray:
    return booster.inplace_predict(np.array(table, dtype=np.float32))


def significant_digits(number_text: str) -> str:
    mantissa = re.split("[eE]", number_text.lstrip("-"))[0]
    return mantissa.replace(".", "").strip("0") or "0"


@given(batch=batches, records_form=st.booleans())
def test_predictions_match_booster_for_any_valid_batch(
    conversion, small_service, reference_booster, batch, records_form
):
    """For any valid batch, in either form: one finite prediction per row, in order, equal at
    float32 precision to Booster.inplace_predict on the same rows, as shortest float text."""
    payload = as_records(batch) if records_form else batch
    response = handle(small_service, post(payload))
    answer = predictions(response)
    # The oracle sees the values the handler saw: the batch after a JSON round trip.
    expected = reference(reference_booster, json.loads(json.dumps(batch)))
    assert len(answer) == len(batch)
    assert all(math.isfinite(value) for value in answer)
    np.testing.assert_array_equal(np.array(answer, dtype=np.float32), expected)
    tokens = response["body"][1:-1].split(",")
    for token, value in zip(tokens, expected, strict=True):
        shortest = np.format_float_scientific(value, unique=True, trim="-")
        assert significant_digits(token) == significant_digits(shortest), (token, shortest)


@given(batch=batches, data=st.data())
def test_predictions_permute_when_rows_permute(conversion, small_service, batch, data):
    """Permuting the rows of a batch permutes its predictions the same way."""
    order = data.draw(st.permutations(range(len(batch))))
    before = predictions(handle(small_service, post(as_records(batch))))
    after = predictions(handle(small_service, post(as_records([batch[i] for i in order]))))
    assert after == [before[i] for i in order]


@given(batch=rows, data=st.data())
def test_response_identical_when_record_keys_reordered(small_service, batch, data):
    """The order of keys inside a record does not change the response."""
    shuffled = [
        dict(zip(keys, (record[key] for key in keys), strict=True))
        for record in as_records(batch)
        for keys in [data.draw(st.permutations(FEATURES))]
    ]
    assert handle(small_service, post(shuffled)) == handle(small_service, post(as_records(batch)))


@given(batch=rows, records_form=st.booleans())
def test_response_identical_when_body_base64_encoded(small_service, batch, records_form):
    """A base64-encoded body and the same plain body give identical responses."""
    payload = as_records(batch) if records_form else batch
    plain = handle(small_service, post(payload))
    encoded = handle(small_service, post(payload, base64_body=True))
    assert plain["statusCode"] == 200
    assert encoded == plain


@given(batch=batches)
def test_response_identical_when_records_or_rows_form(conversion, small_service, batch):
    """The records form and the rows form of one batch give identical responses."""
    from_rows = handle(small_service, post(batch))
    assert from_rows["statusCode"] == 200
    assert handle(small_service, post(as_records(batch))) == from_rows


@given(body=st.binary(max_size=200))
def test_client_error_when_body_is_random_bytes(small_service, body):
    """Arbitrary bytes (base64-encoded, as Lambda sends binary) get a 4xx with the error shape,
    never a 5xx and never an exception."""
    assume(not is_valid_batch(_loads_or_none(body)))
    assert_client_error(handle(small_service, function_url_event("POST", body)))


# st.text() leaves out surrogates; Lambda hands us a str that may hold them (undecodable bytes).
ANY_CHARACTER = st.one_of(st.characters(), st.characters(categories=["Cs"]))


@given(body=st.text(alphabet=ANY_CHARACTER, max_size=200))
def test_client_error_when_body_is_random_text(small_service, body):
    """Arbitrary text (lone surrogates included) as a plain body gets a 4xx with the error shape."""
    assume(not is_valid_batch(_loads_or_none(body.encode("utf-8", "surrogatepass"))))
    assert_client_error(handle(small_service, function_url_event("POST", body)))


@given(payload=json_values)
def test_status_follows_contract_for_any_json_value(conversion, small_service, payload):
    """Any JSON document gets a 200 exactly when the contract calls it a valid batch, and a 4xx
    with the error shape otherwise."""
    response = handle(small_service, post(payload))
    if is_valid_batch(payload):
        assert len(predictions(response)) == len(payload)
    else:
        assert_client_error(response)


@given(batch=batches, data=st.data())
def test_missing_feature_named_when_key_dropped(small_service, batch, data):
    """Dropping one key from one record names that row and feature as missing_feature."""
    records = as_records(batch)
    row = data.draw(st.integers(0, len(records) - 1))
    feature = data.draw(st.sampled_from(FEATURES))
    del records[row][feature]
    error = assert_client_error(handle(small_service, post(records)))
    assert (error["code"], error["row"], error["feature"]) == ("missing_feature", row, feature)


@given(batch=rows, data=st.data(), extra=st.text(min_size=1, max_size=10), value=st.integers())
def test_unknown_feature_named_when_key_added(small_service, batch, data, extra, value):
    """Adding a key the model lacks names that row and key as unknown_feature."""
    assume(extra not in FEATURES)
    records = as_records(batch)
    row = data.draw(st.integers(0, len(records) - 1))
    records[row][extra] = value
    error = assert_client_error(handle(small_service, post(records)))
    assert (error["code"], error["row"], error["feature"]) == ("unknown_feature", row, extra)


@given(batch=rows, data=st.data())
def test_unknown_feature_named_when_key_renamed_by_one_char(small_service, batch, data):
    """A feature name with one character changed is reported as unknown_feature under the new
    name (not as a generic error), at the row where it happened."""
    records = as_records(batch)
    row = data.draw(st.integers(0, len(records) - 1))
    feature = data.draw(st.sampled_from(FEATURES))
    position = data.draw(st.integers(0, len(feature) - 1))
    char = data.draw(st.characters(codec="utf-8"))
    renamed = feature[:position] + char + feature[position + 1 :]
    assume(renamed not in FEATURES)
    records[row] = {renamed if k == feature else k: v for k, v in records[row].items()}
    error = assert_client_error(handle(small_service, post(records)))
    assert (error["code"], error["row"], error["feature"]) == ("unknown_feature", row, renamed)


@given(batch=batches, data=st.data(), wrong=WRONG_TYPED_VALUES, records_form=st.booleans())
def test_invalid_value_named_when_number_swapped_for_other_type(
    conversion, small_service, batch, data, wrong, records_form
):
    """A string, boolean, object or array in place of a number names row and feature as
    invalid_value, in either form."""
    row = data.draw(st.integers(0, len(batch) - 1))
    column = data.draw(st.integers(0, WIDTH - 1))
    batch[row][column] = wrong
    payload = as_records(batch) if records_form else batch
    error = assert_client_error(handle(small_service, post(payload)))
    assert (error["code"], error["row"], error["feature"]) == (
        "invalid_value",
        row,
        FEATURES[column],
    )


@given(batch=rows, data=st.data(), records_form=st.booleans())
def test_json_error_when_body_truncated(small_service, batch, data, records_form):
    """Any proper prefix of a valid body is invalid_json, or invalid_utf8 when the cut splits
    a multi-byte character."""
    text = json.dumps(as_records(batch) if records_form else batch, ensure_ascii=False)
    raw = text.encode("utf-8")
    cut = data.draw(st.integers(0, len(raw) - 1))
    prefix = raw[:cut]
    try:
        event = function_url_event("POST", prefix.decode("utf-8"))
        expected = "invalid_json"
    except UnicodeDecodeError:
        event = function_url_event("POST", prefix)
        expected = "invalid_utf8"
    assert assert_client_error(handle(small_service, event))["code"] == expected


@given(batch=batches, data=st.data(), grow=st.booleans())
def test_wrong_row_length_named_when_row_resized(small_service, batch, data, grow):
    """Adding or removing a value in one row of the rows form names it as wrong_row_length."""
    row = data.draw(st.integers(0, len(batch) - 1))
    if grow:
        batch[row].append(1.0)
    else:
        batch[row].pop()
    error = assert_client_error(handle(small_service, post(batch)))
    assert (error["code"], error["row"]) == ("wrong_row_length", row)


def _loads_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


FLOAT32_MAX = float(np.finfo(np.float32).max)
HALFWAY_TO_2_128 = 2.0**128 - 2.0**103  # the tie, which rounds (to even) to infinity
huge = st.one_of(
    st.sampled_from([FLOAT32_MAX, HALFWAY_TO_2_128, math.nextafter(HALFWAY_TO_2_128, 0)]),
    st.floats(min_value=3.0e38, max_value=3.5e38),
    st.floats(min_value=1e38, max_value=1.7e308),
)


@given(batch=batches, data=st.data(), magnitude=huge, negative=st.booleans())
def test_value_out_of_range_exactly_when_float32_overflows(
    conversion, small_service, batch, data, magnitude, negative
):
    """A value is out of range exactly when numpy's float32 cast makes it infinite, and then
    its row and feature are named."""
    row = data.draw(st.integers(0, len(batch) - 1))
    column = data.draw(st.integers(0, WIDTH - 1))
    value = -magnitude if negative else magnitude
    batch[row][column] = value
    response = handle(small_service, post(batch))
    with np.errstate(over="ignore"):
        overflows = bool(np.isinf(np.float32(value)))
    if overflows:
        error = assert_client_error(response)
        expected = ("value_out_of_range", row, FEATURES[column])
        assert (error["code"], error["row"], error["feature"]) == expected
    else:
        assert len(predictions(response)) == len(batch)


@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "get", "post", "PUT", "HEAD"]), st.text()),
    content_type=st.one_of(st.none(), st.text(max_size=30), st.just("application/json")),
    body=st.one_of(st.none(), st.text(max_size=50)),
    encoded=st.booleans(),
)
def test_no_server_error_for_any_method_content_type_and_body(
    small_service, method, content_type, body, encoded
):
    """Whatever the method, content type and body, the answer is a 200 or a 4xx with the error
    shape (405 with an Allow header for methods other than GET and POST)."""
    headers = {} if content_type is None else {"content-type": content_type}
    event = function_url_event(method, body, headers=headers)
    event["isBase64Encoded"] = encoded
    response = handle(small_service, event)
    if response["statusCode"] == 200:
        assert method.upper() in ("GET", "POST")
        return
    error = assert_client_error(response)
    if method.upper() not in ("GET", "POST"):
        assert (response["statusCode"], error["code"]) == (405, "method_not_allowed")
        assert response["headers"]["allow"] == "GET, POST"
