"""The request router: method dispatch, parsing, prediction, logging."""

from __future__ import annotations

import time

from .batch import to_matrix
from .errors import RequestError
from .logs import RequestLogger
from .model import load_model
from .parsing import check_content_type, decode_body, parse_json
from .responses import (
    error_response,
    internal_error_response,
    json_response,
    predictions_response,
)

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .batch import FloatRows
    from .compiled_model import CompiledModel
    from .config import HandlerConfig

ALLOWED_METHODS = "GET, POST"


class InferenceService:
    def __init__(
        self, *, model: CompiledModel, max_rows: int, logger: RequestLogger | None = None
    ) -> None:
        self._model = model
        self._max_rows = max_rows
        self._names = model.feature_names
        self._name_set = frozenset(model.feature_names)
        self._metadata = model.metadata(max_rows=max_rows)
        # The library reads a plain batch straight into float32 rows (request_parse.c).
        self._parse_batch = model.parse_batch
        self._logger = logger or RequestLogger()

    @classmethod
    def from_config(cls, config: HandlerConfig) -> InferenceService:
        model = load_model(config.model_path, cache_dir=config.model_cache_dir)
        return cls(model=model, max_rows=config.max_rows)

    def handle(self, event: Mapping[str, Any], context: Any) -> dict:
        started = time.perf_counter()
        request_id = _request_id(event, context)
        method = "UNKNOWN"
        rows = 0
        error_code: str | None = None
        failure: Exception | None = None
        try:
            method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
            if method == "POST":
                matrix = self._parse(event)
                rows = len(matrix)
                response = predictions_response(self._model.predict_json(matrix))
            elif method == "GET":
                response = json_response(
                    200, {**self._metadata, "function": function_facts(context)}
                )
            else:
                raise RequestError(
                    status=405,
                    code="method_not_allowed",
                    message=f"method {method or '(none)'} is not allowed; use {ALLOWED_METHODS}",
                    headers={"allow": ALLOWED_METHODS},
                )
        except RequestError as exc:
            error_code = exc.code
            response = error_response(exc)
        except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a 500
            error_code = "internal_error"
            failure = exc
            response = internal_error_response(request_id)
        self._logger.request(
            request_id=request_id,
            method=method,
            rows=rows,
            status=response["statusCode"],
            duration_ms=(time.perf_counter() - started) * 1000,
            error_code=error_code,
            failure=failure,
        )
        return response

    def _parse(self, event: Mapping[str, Any]) -> FloatRows:
        check_content_type(event.get("headers") or {})
        raw = decode_body(event.get("body"), is_base64=bool(event.get("isBase64Encoded")))
        rows = self._parse_batch(raw, max_rows=self._max_rows)
        if rows is not None:
            return rows
        return to_matrix(
            parse_json(raw),
            feature_names=self._names,
            feature_set=self._name_set,
            max_rows=self._max_rows,
        )


def function_facts(context: Any) -> dict[str, object]:
    """What Lambda told this invocation about the function: the ARN the caller invoked (with the
    alias it went through), the memory it runs with and the time it has left. A caller can check
    which deployment answered and how it is configured; none of it is a secret."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return {
        "invoked_function_arn": _str_or_none(getattr(context, "invoked_function_arn", None)),
        # awslambdaric's LambdaContext carries it as a string, straight from the environment.
        "memory_limit_in_mb": _int_or_none(getattr(context, "memory_limit_in_mb", None)),
        "remaining_time_in_millis": _int_or_none(remaining()) if callable(remaining) else None,
    }


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _request_id(event: Mapping[str, Any], context: Any) -> str:
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        return str(request_id)
    try:
        return str(event["requestContext"]["requestId"])
    except (KeyError, TypeError):
        return "unknown"
