"""From a request to a JSON document: content types, base64, JSON errors and their classification,
and the error body every 4xx carries."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ml_handler.errors import RequestError
from ml_handler.parsing import check_content_type, decode_body, parse_json

from tests.unit.events import FakeContext, function_url_event

ROW = "[[7.4, 3.51, 9.8, null, 1]]"


def error_of(response: dict) -> dict[str, object]:
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])["error"]


def refusal(call, *args: object, **kwargs: object) -> RequestError:
    with pytest.raises(RequestError) as raised:
        call(*args, **kwargs)
    return raised.value


# --- the error body ---------------------------------------------------------------------------


def test_exception_text_is_message_when_request_error_raised():
    error = RequestError(status=400, code="some_code", message="what went wrong")
    assert str(error) == "what went wrong"
    assert error.headers == {}


@given(
    status=st.integers(400, 499),
    code=st.text(min_size=1, max_size=12),
    message=st.text(min_size=1, max_size=40),
    row=st.one_of(st.none(), st.integers(0, 10_000)),
    feature=st.one_of(st.none(), st.text(max_size=12)),
)
def test_error_body_holds_exactly_the_given_fields(status, code, message, row, feature):
    """The body is {"error": {...}} with code and message, plus row and feature exactly when
    given (row 0 and the empty feature name included), each with the value given."""
    error = RequestError(status=status, code=code, message=message, row=row, feature=feature)
    expected: dict[str, object] = {"code": code, "message": message}
    if row is not None:
        expected["row"] = row
    if feature is not None:
        expected["feature"] = feature
    assert error.body() == {"error": expected}
    assert error.status == status


# --- content type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/json",
        " application/json ",
        "application/json;charset=utf-8",
        "application/json; charset=utf-8; boundary=x",
        "APPLICATION/JSON; charset=UTF-8",
        "application/problem+json",
        "Application/Vnd.Api+JSON",
    ],
)
def test_content_type_accepted_when_json(content_type):
    check_content_type({"content-type": content_type})


def test_content_type_accepted_when_absent():
    check_content_type({})


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/jsonx",
        "application/json+xml",
        "text/plain+json",
        "json",
        "",
        "application/xml; profile=application/json",
    ],
)
def test_unsupported_media_type_names_media_type_when_not_json(content_type):
    error = refusal(check_content_type, {"content-type": content_type})
    assert (error.status, error.code) == (415, "unsupported_media_type")
    media_type = content_type.split(";")[0].strip()
    assert repr(media_type) in error.message
    assert "application/json" in error.message  # says what to send instead


# --- base64 -----------------------------------------------------------------------------------


def test_plain_body_passed_through_unchanged():
    assert decode_body(ROW, is_base64=False) == ROW


def test_base64_body_decoded_to_its_bytes():
    raw = "[[1, 2], [3, 4]] é".encode()
    assert decode_body(base64.b64encode(raw).decode("ascii"), is_base64=True) == raw


@pytest.mark.parametrize("is_base64", [True, False])
def test_missing_body_read_as_empty_body(is_base64):
    assert decode_body(None, is_base64=is_base64) in ("", b"")


@pytest.mark.parametrize("is_base64", [True, False])
def test_response_identical_when_body_missing_or_empty(small_service, is_base64):
    responses = []
    for body in (None, ""):
        event = function_url_event("POST", body)
        event["isBase64Encoded"] = is_base64
        responses.append(small_service.handle(event, FakeContext()))
    assert responses[0] == responses[1]
    assert error_of(responses[0])["code"] == "invalid_json"


@pytest.mark.parametrize("body", ["not base64!", "AAA", "w6k=\n", "éé=="])
def test_invalid_base64_message_names_base64(body):
    error = refusal(decode_body, body, is_base64=True)
    assert (error.status, error.code) == (400, "invalid_base64")
    assert "base64" in error.message


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["[{]", "", "[[1,2,3,4,5]] x", "[1, 2", b'{"a": tru}'])
def test_invalid_json_message_carries_parser_position(body):
    with pytest.raises(orjson.JSONDecodeError) as parser:
        orjson.loads(body)
    error = refusal(parse_json, body)
    assert (error.status, error.code) == (400, "invalid_json")
    assert str(parser.value) in error.message


@pytest.mark.parametrize(
    "body",
    [
        "[[NaN, 1]]",
        b"[Infinity]",
        "[-Infinity]",
        "[1e400]",
        b"[-1E400]",
        # An integer literal beyond the double range: float() overflows it too.
        "[" + "9" * 400 + "]",
        "[-" + "9" * 400 + "]",
    ],
)
def test_non_finite_number_advises_null_for_non_finite_literal(body):
    error = refusal(parse_json, body)
    assert (error.status, error.code) == (400, "non_finite_number")
    assert "null" in error.message  # says how to send a missing value


@pytest.mark.parametrize(
    "raw",
    [
        # Valid JSON to the standard library (it detects these encodings), not to the handler.
        "[[1, 2, 3, 4, 5]]".encode("utf-16-be"),
        "[[1, 2, 3, 4, 5]]".encode("utf-16-le"),
        "[[1, 2, 3, 4, 5]]".encode("utf-32-be"),
        b"\xef\xbb\xbf[[1, 2, 3, 4, 5]]",
    ],
    ids=["utf16be", "utf16le", "utf32be", "utf8_bom"],
)
def test_invalid_json_when_body_is_json_in_another_encoding(raw):
    assert refusal(parse_json, raw).code == "invalid_json"


@pytest.mark.parametrize("raw", [b"[\xff]", b"[1, \xc3]", "[\udcff]", "[1, \ud800]"])
def test_invalid_utf8_message_names_utf8(raw):
    error = refusal(parse_json, raw)
    assert (error.status, error.code) == (400, "invalid_utf8")
    assert "UTF-8" in error.message.upper()


@given(
    value=st.one_of(st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False))
)
@example(value=-(2**63) - 1)
@example(value=2**64)
@example(value=2**64 - 1)
def test_number_parsed_to_its_value_when_within_double_range(value):
    """A finite number within the double range parses to itself at double precision (orjson
    keeps an integer exact within int64/uint64 and reads a wider one as the nearest double)."""
    (parsed,) = parse_json(json.dumps([value]))
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        assert parsed == value
        assert type(parsed) is int
    else:
        assert parsed == float(value)
