"""Function URL response dicts."""

from __future__ import annotations

from .errors import RequestError

_JSON = {"content-type": "application/json"}


def json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> dict:
    # GET and errors only: a plain POST's cold start never imports orjson (see parsing.py).
    import orjson

    return {
        "statusCode": status,
        "headers": {**_JSON, **(headers or {})},
        "body": orjson.dumps(payload).decode(),
        "isBase64Encoded": False,
    }


def predictions_response(body: str) -> dict:
    # The hot path, spelled out rather than through json_response's header merge. The model
    # wrote the body: each float32 prediction as its shortest round-trip text (6.573914).
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": body,
        "isBase64Encoded": False,
    }


def error_response(error: RequestError) -> dict:
    return json_response(error.status, error.body(), error.headers)


def internal_error_response(request_id: str) -> dict:
    return json_response(
        500,
        {
            "error": {
                "code": "internal_error",
                "message": f"internal error; quote request id {request_id} when reporting it",
                "request_id": request_id,
            }
        },
    )
