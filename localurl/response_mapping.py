"""Mapping a function's return value to the HTTP response, as a Function URL does."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from .lambda_event import MAX_INVOKE_PAYLOAD_BYTES
from .runtime import Invocation

MAX_PAYLOAD_BYTES = MAX_INVOKE_PAYLOAD_BYTES


@dataclass(frozen=True, kw_only=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def aws_error(status: int, message: str) -> HttpResponse:
    return HttpResponse(
        status=status,
        headers=[("content-type", "application/json")],
        body=json.dumps({"Message": message}).encode(),
    )


def bad_gateway() -> HttpResponse:
    return HttpResponse(
        status=502, headers=[("content-type", "text/plain")], body=b"Internal Server Error"
    )


def payload_too_large(what: str) -> HttpResponse:
    return aws_error(
        413,
        f"{what} must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
    )


def map_invocation(invocation: Invocation) -> HttpResponse:
    if invocation.timed_out or invocation.error is not None or invocation.init_error is not None:
        return bad_gateway()
    result = invocation.result
    if isinstance(result, dict) and "statusCode" in result:
        response = _structured(result)
    else:
        # Any other JSON value: 200, application/json, the value itself as the body.
        response = HttpResponse(
            status=200,
            headers=[("content-type", "application/json")],
            body=json.dumps(result).encode(),
        )
    if len(response.body) > MAX_PAYLOAD_BYTES:
        return payload_too_large("Response")
    return response


def _structured(result: dict[str, Any]) -> HttpResponse:
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return bad_gateway()
    if not 100 <= status <= 599:
        return bad_gateway()
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(str(raw_body), validate=True)
        except (binascii.Error, ValueError):
            return bad_gateway()
    else:
        body = (raw_body if isinstance(raw_body, str) else json.dumps(raw_body)).encode(
            "utf-8", errors="surrogateescape"
        )
    if not any(name == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpResponse(status=status, headers=headers, body=body)
