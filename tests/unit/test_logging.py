"""Request logs: one JSON line per request on stdout, never the body, headers or credentials."""

from __future__ import annotations

import json
import math
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ml_handler.service import InferenceService

from tests.unit.events import FakeContext, function_url_event, post
from tests.unit.small_model import FEATURES

SECRET_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=ASIAQSECRETKEY7/20240101/us-east-1/lambda/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=5ecre75ignature0123456789abcdef"
)
SECRET_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENdoNotLogMe"
BODY_MARKER = 7713.25  # a value that appears nowhere but in the request body
SECRETS = [SECRET_AUTHORIZATION, "ASIAQSECRETKEY7", "5ecre75ignature", SECRET_TOKEN, "7713.25"]


def secret_event(method: str, body: str | None) -> dict[str, object]:
    return function_url_event(
        method,
        body,
        headers={
            "content-type": "application/json",
            "authorization": SECRET_AUTHORIZATION,
            "x-amz-security-token": SECRET_TOKEN,
            "x-amz-date": "20240101T000000Z",
        },
    )


def log_lines(text: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    records = [json.loads(line) for line in lines]  # every line must be JSON
    assert all(isinstance(record, dict) for record in records)
    return records


REQUESTS = {
    "ok": ("POST", json.dumps([[BODY_MARKER, 1, 2, 3, 0]]), 200),
    "records": (
        "POST",
        json.dumps([dict(zip(FEATURES, [BODY_MARKER, 1, 2, 3, 0], strict=True))]),
        200,
    ),
    "bad_value": ("POST", json.dumps([[BODY_MARKER, "7713.25", 2, 3, 0]]), 400),
    "bad_json": ("POST", "[[7713.25, ", 400),
    "unknown_key": ("POST", json.dumps([{"7713.25": 1}]), 400),
    "get": ("GET", None, 200),
    "put": ("PUT", json.dumps([[BODY_MARKER]]), 405),
}


@pytest.mark.parametrize(("method", "body", "status"), REQUESTS.values(), ids=REQUESTS.keys())
def test_one_json_log_line_per_request_without_secrets(small_service, capsys, method, body, status):
    response = small_service.handle(secret_event(method, body), FakeContext("req-log-1"))
    assert response["statusCode"] == status
    out, err = capsys.readouterr()
    (line,) = log_lines(out)
    assert line["request_id"] == "req-log-1"
    assert line["status"] == status
    assert line["method"] == method
    assert line["rows"] == (1 if status == 200 and method == "POST" else 0)
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    for secret in SECRETS:
        assert secret not in out + err


def test_log_lines_match_requests_one_to_one(small_service, capsys):
    for index in range(5):
        small_service.handle(post([[index, 1, 2, 3, 0]] * (index + 1)), FakeContext(f"r{index}"))
    lines = log_lines(capsys.readouterr().out)
    assert [(line["request_id"], line["rows"]) for line in lines] == [
        (f"r{index}", index + 1) for index in range(5)
    ]


def test_request_id_from_event_when_context_lacks_one(small_service, capsys):
    small_service.handle(function_url_event("GET", request_id="evt-42"), None)
    (line,) = log_lines(capsys.readouterr().out)
    assert line["request_id"] == "evt-42"


def test_internal_error_returns_500_with_request_id_and_logs_traceback(
    small_compiled, monkeypatch, capsys
):
    service = InferenceService(model=small_compiled, max_rows=8)

    def broken_predict(*args, **kwargs):
        raise RuntimeError("library exploded")

    monkeypatch.setattr(small_compiled, "predict", broken_predict)
    response = service.handle(
        secret_event("POST", json.dumps([[BODY_MARKER, 1, 2, 3, 0]])), FakeContext("req-500")
    )
    assert response["statusCode"] == 500
    assert response["headers"]["content-type"] == "application/json"
    error = json.loads(response["body"])["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] == "req-500"
    assert "req-500" in error["message"]
    # The caller learns nothing about the code; the log has everything.
    assert "Traceback" not in response["body"]
    assert "exploded" not in response["body"]
    out, err = capsys.readouterr()
    (line,) = log_lines(out)
    assert (line["request_id"], line["status"], line["level"]) == ("req-500", 500, "ERROR")
    assert "Traceback" in line["traceback"]
    assert "RuntimeError: library exploded" in line["traceback"]
    for secret in SECRETS:
        assert secret not in out + err


@pytest.mark.parametrize(("method", "body", "status"), REQUESTS.values(), ids=REQUESTS.keys())
def test_log_line_carries_the_error_code_only_when_the_response_is_an_error(
    small_service, capsys, method, body, status
):
    response = small_service.handle(secret_event(method, body), FakeContext("req-log-2"))
    (line,) = log_lines(capsys.readouterr().out)
    if status == 200:
        assert "error_code" not in line
    else:
        assert line["error_code"] == json.loads(response["body"])["error"]["code"]


def test_log_line_names_method_unknown_when_the_event_is_not_an_object(small_service, capsys):
    response = small_service.handle(None, FakeContext("req-log-3"))
    assert response["statusCode"] == 500
    (line,) = log_lines(capsys.readouterr().out)
    assert (line["method"], line["error_code"]) == ("UNKNOWN", "internal_error")


def test_logger_writes_to_the_stream_it_was_given(capsys):
    import io

    from ml_handler.logs import RequestLogger

    stream = io.StringIO()
    RequestLogger(stream).request(
        request_id="r-1", method="GET", rows=0, status=200, duration_ms=1.0, error_code=None
    )
    assert json.loads(stream.getvalue())["request_id"] == "r-1"
    assert capsys.readouterr().out == ""


def test_log_line_reads_in_full_when_a_request_is_answered(small_service, capsys, monkeypatch):
    # GIVEN a clock that advances 12.3456 ms during the request
    import ml_handler.service as service_module

    ticks = iter([100.0, 100.0123456])
    monkeypatch.setattr(service_module.time, "perf_counter", lambda: next(ticks))
    small_service.handle(function_url_event("GET"), FakeContext("req-log-4"))
    (line,) = log_lines(capsys.readouterr().out)
    # THEN the line holds exactly these fields, the duration in ms rounded to the microsecond
    assert line == {
        "level": "INFO",
        "message": "request",
        "request_id": "req-log-4",
        "method": "GET",
        "rows": 0,
        "status": 200,
        "duration_ms": 12.346,
    }


def test_log_line_names_request_unknown_and_keeps_the_traceback_whole_when_nothing_identifies_it(
    small_service, capsys
):
    small_service.handle({"requestContext": "not an object"}, None)
    (line,) = log_lines(capsys.readouterr().out)
    assert line["request_id"] == "unknown"
    assert line["level"] == "ERROR"
    assert line["traceback"].startswith("Traceback (most recent call last):\n  File ")


@given(
    # Printable ASCII with its quote and backslash (and DEL): the texts the plain line must not
    # take as they are; any text; and what Lambda sends, a UUID.
    request_id=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=12)
    | st.text(max_size=40)
    | st.uuids().map(str),
    method=st.sampled_from(["POST", "GET", "PUT", "", 'P"OST', "G\\ET", "GÉT", "G\x7fET"]),
    rows=st.integers(0, 10_000),
    status=st.sampled_from([200, 400, 413, 500]),
    duration_ms=st.floats()
    | st.floats(0, 5)
    | st.sampled_from([0.0, 0.0004, 0.0005, 0.001, 1e-05, 1e15, 1e16, 2.5e300, math.inf]),
    error_code=st.none() | st.sampled_from(["invalid_json", "internal_error"]),
)
@example(request_id='r"1', method="POST", rows=1, status=200, duration_ms=1.0, error_code=None)
@example(request_id="r\\1", method="POST", rows=1, status=200, duration_ms=1.0, error_code=None)
def test_log_line_is_what_orjson_writes_whatever_the_values(
    request_id, method, rows, status, duration_ms, error_code
):
    """Property: every line, whether written without orjson (a plain answered request) or by
    it, is byte for byte orjson's serialization of the record (orjson is the oracle)."""
    import io

    import orjson
    from ml_handler.logs import RequestLogger

    stream = io.StringIO()
    fields = {"request_id": request_id, "method": method, "rows": rows, "status": status}
    RequestLogger(stream).request(**fields, duration_ms=duration_ms, error_code=error_code)
    record = {
        "level": "ERROR" if status >= 500 else "INFO",
        "message": "request",
        **fields,
        "duration_ms": round(duration_ms, 3),
    }
    if error_code is not None:
        record["error_code"] = error_code
    assert stream.getvalue() == orjson.dumps(record).decode() + "\n"


def test_log_line_of_an_answered_request_written_without_orjson(monkeypatch):
    """A plain POST's cold start imports no JSON library: its line is written without orjson,
    which is made unimportable here (the other paths, which need it, would raise)."""
    import io

    from ml_handler.logs import RequestLogger

    monkeypatch.setitem(sys.modules, "orjson", None)
    stream = io.StringIO()
    RequestLogger(stream).request(
        request_id="8c3f-11",
        method="POST",
        rows=2,
        status=200,
        duration_ms=0.04951,
        error_code=None,
    )
    assert stream.getvalue() == (
        '{"level":"INFO","message":"request","request_id":"8c3f-11","method":"POST","rows":2,'
        '"status":200,"duration_ms":0.05}\n'
    )
