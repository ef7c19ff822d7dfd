"""From a Function URL request to a parsed JSON document, or a RequestError."""

from __future__ import annotations

import math

from .errors import RequestError

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from collections.abc import Mapping

    import orjson

# Function URLs pass these through as text; everything else (and no content type) arrives
# base64-encoded. We accept JSON, and no content type at all (curl --data-binary without -H).
_JSON_TYPES = frozenset({"application/json", "text/json"})


def check_content_type(headers: Mapping[str, str]) -> None:
    raw = headers.get("content-type")
    if raw is None or raw == "application/json":
        return
    media_type = raw.split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise RequestError(
        status=415,
        code="unsupported_media_type",
        message=f"content-type {media_type!r} is not supported; send application/json",
    )


def decode_body(body: str | None, *, is_base64: bool) -> str | bytes:
    """The body as orjson will read it: bytes when base64-encoded, else the event's own str
    (orjson reads a str as UTF-8 directly; encoding it first would copy the body for nothing)."""
    if body is None:
        body = ""
    if not is_base64:
        return body
    # Imported here: a JSON content type arrives as text, so most cold starts never need it.
    import base64
    import binascii

    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(
            status=400, code="invalid_base64", message="body is not valid base64"
        ) from None


def parse_json(raw: str | bytes) -> object:
    # Imported on first use: a plain batch is read by the library and never gets here, and
    # orjson's import (dataclasses, inspect, uuid, platform) is most of a cold start's imports.
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _classify_json_error(raw, exc) from None


def _classify_json_error(raw: str | bytes, exc: orjson.JSONDecodeError) -> RequestError:
    # Error path only: decide from the body itself, not from orjson's wording, so that
    # NaN/Infinity literals (which orjson calls "unexpected character") get their own code.
    try:
        # A str with lone surrogates stands for bytes that were not UTF-8.
        raw.encode("utf-8") if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeError:
        return RequestError(status=400, code="invalid_utf8", message="body is not valid UTF-8")
    if _has_non_finite_number(raw):
        return RequestError(
            status=400,
            code="non_finite_number",
            message="NaN, Infinity and numbers beyond the double range are not valid JSON "
            "numbers; use null for a missing value",
        )
    return RequestError(status=400, code="invalid_json", message=f"body is not valid JSON: {exc}")


class _NonFinite(Exception):
    pass


def _reject_non_finite(text: str) -> float:
    value = float(text)  # float() of a huge literal overflows to inf rather than raising
    if math.isinf(value):
        raise _NonFinite
    return value


def _reject_constant(_literal: str) -> object:
    raise _NonFinite


def _has_non_finite_number(raw: str | bytes) -> bool:
    """Whether the stdlib parser, which knows NaN/Infinity, meets one (or an overflow)."""
    import json  # the error path only: json pulls in re, a cold start's worth of it

    try:
        json.loads(
            raw,
            parse_constant=_reject_constant,
            parse_float=_reject_non_finite,
            parse_int=_reject_non_finite,
        )
    except _NonFinite:
        return True
    except (ValueError, RecursionError):
        return False
    return False
