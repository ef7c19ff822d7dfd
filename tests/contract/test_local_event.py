"""The payload 2.0 event the local Function URL builds, against AWS's documented example."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from localurl.lambda_event import (
    IamCaller,
    UrlIdentity,
    build_event,
    exceeds_payload_limit,
    invoke_payload_bytes,
    is_text_content,
)
from tests.aws_spec import INVOKE_PAYLOAD_BYTES

# AWS's example request, rebuilt: the same method, path, query, headers, cookies, body and caller.
DOC_TIME_EPOCH = 1583348638.390


@pytest.fixture(scope="module")
def documented(fixtures_dir: Path) -> dict:
    """The example event from the Lambda developer guide (Function URL request payload)."""
    return json.loads((fixtures_dir / "function_url_event_example.json").read_text())


def _documented_request_event() -> dict:
    return build_event(
        method="POST",
        raw_path="/my/path",
        raw_query="parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            ("Header1", "value1"),
            ("header2", "value1"),
            ("Header2", "value2"),
            ("Cookie", "cookie1; cookie2"),
            ("User-Agent", "agent"),
            ("Content-Type", "text/plain"),
        ],
        body=b"Hello from client!",
        source_ip="123.123.123.123",
        url=UrlIdentity(account_id="123456789012", url_id="<url-id>", region="us-west-2"),
        caller=IamCaller(
            access_key="AKIA...",
            account_id="111122223333",
            caller_id="AIDA...",
            user_arn="arn:aws:iam::111122223333:user/example-user",
            user_id="AIDA...",
        ),
        request_id="id",
        now=DOC_TIME_EPOCH,
    )


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_event_has_documented_shape_field_by_field(documented: dict) -> None:
    """GIVEN AWS's documented request WHEN the stand-in builds its event THEN every field AWS
    documents is there, with the same type, and nothing else."""
    event = _documented_request_event()
    event["headers"].pop("user-agent")
    event["headers"].pop("content-type")
    assert _shape(event) == _shape(documented)


def test_event_values_match_documented_example_apart_from_dynamic_ones(documented: dict) -> None:
    event = _documented_request_event()
    event["headers"].pop("user-agent")
    event["headers"].pop("content-type")
    # The example's apiId says <urlid>, its domainPrefix <url-id>: one URL id, two spellings.
    documented["requestContext"]["apiId"] = "<url-id>"
    # ... and its time (12/Mar) disagrees with its timeEpoch (4 March): both come from one clock.
    documented["requestContext"]["time"] = "04/Mar/2020:19:03:58 +0000"
    assert event == documented


def test_event_time_is_access_log_format_and_epoch_millis() -> None:
    event = _documented_request_event()
    assert event["requestContext"]["time"] == "04/Mar/2020:19:03:58 +0000"
    assert event["requestContext"]["timeEpoch"] == 1583348638390


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/plain", True),
        ("text/csv", True),
        ("application/xml", True),
        ("application/javascript", True),
        ("application/octet-stream", False),
        ("application/x-www-form-urlencoded", False),
        ("image/png", False),
        (None, False),
    ],
)
def test_body_encoding_follows_content_type(content_type: str | None, text: bool) -> None:
    """AWS passes JSON, XML, JavaScript and text/* through; everything else is base64."""
    headers = [] if content_type is None else [("Content-Type", content_type)]
    body = b'[{"a": 1}]'
    event = build_event(
        method="POST",
        raw_path="/",
        raw_query="",
        headers=headers,
        body=body,
        source_ip="127.0.0.1",
        url=UrlIdentity(account_id="123456789012", url_id="x", region="us-east-1"),
        caller=None,
    )
    assert is_text_content(content_type) is text
    assert event["isBase64Encoded"] is (not text)
    decoded = event["body"].encode() if text else base64.b64decode(event["body"])
    assert decoded == body


def test_event_without_body_or_query_omits_them() -> None:
    event = build_event(
        method="GET",
        raw_path="/",
        raw_query="",
        headers=[("Host", "127.0.0.1")],
        body=b"",
        source_ip="127.0.0.1",
        url=UrlIdentity(account_id="123456789012", url_id="x", region="us-east-1"),
        caller=None,
    )
    assert "body" not in event
    assert "queryStringParameters" not in event
    assert "cookies" not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["authorizer"] is None
    assert event["requestContext"]["accountId"] == "anonymous"


def _json_event(body: bytes) -> dict:
    return build_event(
        method="POST",
        raw_path="/",
        raw_query="",
        headers=[("Content-Type", "application/json")],
        body=body,
        source_ip="127.0.0.1",
        url=UrlIdentity(account_id="123456789012", url_id="x", region="us-east-1"),
        caller=None,
        request_id="id",
        now=DOC_TIME_EPOCH,
    )


def test_payload_size_counts_the_escaped_event_not_the_body() -> None:
    """A JSON body's quotes are escaped in the event: 1,000 `"a"` strings (3 bytes each in the
    body) are 5 bytes each in the event; the size is the compact JSON's UTF-8 bytes."""
    body = b"[" + b",".join([b'"a"'] * 1000) + b"]"
    event = _json_event(body)

    size = invoke_payload_bytes(event)

    assert size == len(json.dumps(event, separators=(",", ":")).encode())
    assert size - invoke_payload_bytes(_json_event(b"[]")) == len(body) - 2 + 2 * 1000


def test_payload_size_counts_non_ascii_and_invalid_utf8_as_their_bytes() -> None:
    text = "é€".encode()  # 2 + 3 bytes of UTF-8, not 12 bytes of \\u escapes
    raw = b"\xff\xfe"  # not UTF-8: kept as the two raw bytes
    base = invoke_payload_bytes(_json_event(b'""'))

    assert invoke_payload_bytes(_json_event(b'"' + text + b'"')) - base == len(text)
    assert invoke_payload_bytes(_json_event(b'"' + raw + b'"')) - base == len(raw)


def test_payload_limit_edge_is_6291456_event_bytes() -> None:
    """GIVEN events of exactly 6 MiB and one byte more THEN the local URL's check (the one the
    server applies) admits the first and refuses the second."""
    overhead = invoke_payload_bytes(_json_event(b"[]"))
    at_limit = _json_event(b"[" + b" " * (INVOKE_PAYLOAD_BYTES - overhead) + b"]")
    over = _json_event(b"[" + b" " * (INVOKE_PAYLOAD_BYTES - overhead + 1) + b"]")

    assert invoke_payload_bytes(at_limit) == INVOKE_PAYLOAD_BYTES
    assert not exceeds_payload_limit(at_limit)
    assert exceeds_payload_limit(over)
