"""Turning a Function URL request body into a float32 feature matrix, or a RequestError."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter

import numpy as np
import orjson

from .errors import RequestError

# Function URLs pass these through as text; everything else (and no content type) arrives
# base64-encoded. We accept JSON, and no content type at all (curl --data-binary without -H).
_JSON_TYPES = frozenset({"application/json", "text/json"})
_NUMBER_TYPES = (int, float)
_ALLOWED_VALUE_TYPES = frozenset({int, float, type(None)})


def check_content_type(headers: Mapping[str, str]) -> None:
    raw = headers.get("content-type")
    if raw is None:
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


def decode_body(body: str | None, *, is_base64: bool) -> bytes:
    if body is None:
        body = ""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(
                status=400, code="invalid_base64", message="body is not valid base64"
            ) from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates in the event's str: the original bytes were not UTF-8.
        raise RequestError(
            status=400, code="invalid_utf8", message="body is not valid UTF-8"
        ) from None


def parse_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "utf-8" in message.lower() or "utf8" in message.lower():
            raise RequestError(
                status=400, code="invalid_utf8", message="body is not valid UTF-8"
            ) from None
        if "infinity" in message.lower() or "nan" in message.lower():
            raise RequestError(
                status=400,
                code="non_finite_number",
                message="NaN and Infinity are not JSON; use null for a missing value",
            ) from None
        raise RequestError(
            status=400, code="invalid_json", message=f"body is not valid JSON: {message}"
        ) from None


def to_matrix(
    payload: object, *, feature_names: Sequence[str], feature_set: frozenset[str], max_rows: int
) -> np.ndarray:
    """Validate a batch in records or rows form and return it as float32, in model order."""
    if not isinstance(payload, list):
        raise RequestError(
            status=400,
            code="not_a_list",
            message="body must be a JSON array of records (objects) or rows (arrays)",
        )
    if not payload:
        raise RequestError(status=400, code="empty_batch", message="the batch has no rows")
    if len(payload) > max_rows:
        raise RequestError(
            status=413,
            code="too_many_rows",
            message=f"the batch has {len(payload)} rows; the limit is {max_rows}",
        )
    width = len(feature_names)
    if type(payload[0]) is dict:
        rows = _records_to_rows(payload, feature_names, feature_set)
    else:
        rows = payload
        for index, row in enumerate(rows):
            if type(row) is not list:
                raise _wrong_row_shape(index, row)
            if len(row) != width:
                raise RequestError(
                    status=400,
                    code="wrong_row_length",
                    message=f"row {index} has {len(row)} values; the model takes {width}",
                    row=index,
                )
    _check_value_types(rows, feature_names)
    # None becomes NaN: xgboost's missing value.
    matrix = np.array(rows, dtype=np.float32)
    if not np.isfinite(matrix[~np.isnan(matrix)]).all():
        row_index, column = np.argwhere(np.isinf(matrix))[0]
        raise RequestError(
            status=400,
            code="value_out_of_range",
            message="a value is outside the float32 range",
            row=int(row_index),
            feature=feature_names[int(column)],
        )
    return matrix


def _records_to_rows(
    records: list[object], feature_names: Sequence[str], feature_set: frozenset[str]
) -> list[Sequence[object]]:
    rows: list[Sequence[object]] = []
    append = rows.append
    # itemgetter yields values in model order at C speed; key order in the record is irrelevant.
    in_model_order = itemgetter(*feature_names)
    for index, record in enumerate(records):
        if type(record) is not dict:
            raise RequestError(
                status=400,
                code="record_not_object",
                message=f"row {index} is not an object; every record must be keyed by feature",
                row=index,
            )
        if record.keys() != feature_set:
            raise _key_mismatch(index, record, feature_names, feature_set)
        values = in_model_order(record)
        append(values if type(values) is tuple else (values,))
    return rows


def _key_mismatch(
    index: int, record: dict[str, object], feature_names: Sequence[str], feature_set: frozenset[str]
) -> RequestError:
    unknown = [key for key in record if key not in feature_set]
    if unknown:
        return RequestError(
            status=400,
            code="unknown_feature",
            message=f"row {index} has unknown feature {unknown[0]!r}; "
            f"the model's features are {list(feature_names)}",
            row=index,
            feature=unknown[0],
        )
    missing = next(name for name in feature_names if name not in record)
    return RequestError(
        status=400,
        code="missing_feature",
        message=f"row {index} lacks feature {missing!r}; send null for a missing value",
        row=index,
        feature=missing,
    )


def _wrong_row_shape(index: int, row: object) -> RequestError:
    if type(row) is dict:
        return RequestError(
            status=400,
            code="mixed_forms",
            message=f"row {index} is an object but row 0 is an array; use one form per batch",
            row=index,
        )
    return RequestError(
        status=400,
        code="row_not_array",
        message=f"row {index} is neither an array of numbers nor an object",
        row=index,
    )


def _check_value_types(rows: Sequence[Sequence[object]], feature_names: Sequence[str]) -> None:
    # One C-speed pass over every value on the happy path; the slow search only on failure.
    seen = set(map(type, chain.from_iterable(rows)))
    if seen <= _ALLOWED_VALUE_TYPES:
        return
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if type(value) not in _ALLOWED_VALUE_TYPES:
                kind = "boolean" if isinstance(value, bool) else type(value).__name__
                raise RequestError(
                    status=400,
                    code="invalid_value",
                    message=f"row {index}, feature {feature_names[column]!r}: expected a number "
                    f"or null, got a {_json_kind(value, kind)}",
                    row=index,
                    feature=feature_names[column],
                )


def _json_kind(value: object, python_kind: str) -> str:
    return {
        "bool": "boolean",
        "str": "string",
        "list": "array",
        "dict": "object",
    }.get(type(value).__name__, python_kind)
