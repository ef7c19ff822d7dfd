"""Function URL events (payload format 2.0), shaped like the ones Lambda delivers."""

from __future__ import annotations

import base64
import json


def function_url_event(
    method: str = "POST",
    body: str | bytes | None = None,
    *,
    base64_body: bool = False,
    headers: dict[str, str] | None = None,
    request_id: str = "req-0001",
) -> dict[str, object]:
    """A payload 2.0 event. bytes bodies, or base64_body=True, arrive base64-encoded as Lambda
    sends non-text content; header names are lower-case as Function URLs deliver them."""
    if headers is None:
        headers = {"content-type": "application/json"} if method == "POST" else {}
    encoded = isinstance(body, bytes) or base64_body
    if encoded and body is not None:
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        body = base64.b64encode(raw).decode("ascii")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"host": "abc123.lambda-url.us-east-1.on.aws", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.lambda-url.us-east-1.on.aws",
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "unit-test",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1_700_000_000_000,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def post(batch: object, *, base64_body: bool = False) -> dict[str, object]:
    """A POST of `batch` serialized by the standard library, independent of the handler."""
    return function_url_event("POST", json.dumps(batch, allow_nan=False), base64_body=base64_body)


class FakeContext:
    """The one attribute of the Lambda context the handler reads."""

    def __init__(self, aws_request_id: str = "ctx-request-id") -> None:
        self.aws_request_id = aws_request_id
