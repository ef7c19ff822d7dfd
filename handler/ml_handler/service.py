"""The request router: method dispatch, parsing, prediction, logging."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .batch import FloatRows, to_matrix
from .config import HandlerConfig
from .errors import RequestError
from .logs import RequestLogger
from .model import Model, load_model
from .parsing import check_content_type, decode_body, parse_json
from .responses import (
    error_response,
    internal_error_response,
    json_response,
    predictions_response,
)

ALLOWED_METHODS = "GET, POST"


class InferenceService:
    def __init__(self, *, model: Model, max_rows: int, logger: RequestLogger | None = None) -> None:
        self._model = model
        self._max_rows = max_rows
        self._names = model.feature_names
        self._name_set = frozenset(model.feature_names)
        self._metadata = model.metadata(max_rows=max_rows)
        self._logger = logger or RequestLogger()

    @classmethod
    def from_config(cls, config: HandlerConfig) -> InferenceService:
        model = load_model(config.model_path, nthread=config.nthread)
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
                response = json_response(200, self._metadata)
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
        return to_matrix(
            parse_json(raw),
            feature_names=self._names,
            feature_set=self._name_set,
            max_rows=self._max_rows,
        )


def _request_id(event: Mapping[str, Any], context: Any) -> str:
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        return str(request_id)
    try:
        return str(event["requestContext"]["requestId"])
    except (KeyError, TypeError):
        return "unknown"
