"""Validating a parsed batch, in records or rows form, into float32 rows in model order.

Standard library only (array, itertools, operator): the compiled model's image has no numpy.
"""

from __future__ import annotations

import math
import struct
from array import array
from functools import lru_cache
from itertools import chain
from operator import itemgetter

from .errors import RequestError

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

# Below this many values plain Python loops beat the fixed costs of the C-speed passes
# (measured on the bundled model's 13 features with bench.handler_bench).
FAST_PATH_MIN_VALUES = 128
# The smallest magnitude a float32 cast rounds to infinity: halfway between FLT_MAX and 2**128
# (the tie rounds to even, which is infinity).
_FLOAT32_OVERFLOW = 2.0**128 - 2.0**103
_ALLOWED_VALUE_TYPES = frozenset({int, float, type(None)})
_NUMBER_TYPES = frozenset({int, float})
# dict.get(value, value) maps None to NaN (xgboost's missing value) and every number to itself.
_NULL_AS_NAN = {None: math.nan}
_INFINITIES = (struct.pack("=f", math.inf), struct.pack("=f", -math.inf))


class FloatRows:
    """rows x width float32 values, row-major, NaN for missing: what the model takes."""

    __slots__ = ("rows", "values", "width")

    def __init__(self, values: array, *, rows: int, width: int) -> None:
        self.values = values
        self.rows = rows
        self.width = width

    def __len__(self) -> int:
        return self.rows


if TYPE_CHECKING:
    # Values parsed from JSON: what they are is exactly what the checks below establish.
    Row = Sequence[Any]


def to_matrix(
    payload: object, *, feature_names: Sequence[str], feature_set: frozenset[str], max_rows: int
) -> FloatRows:
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
    # Many values go through C-speed passes in one flat list; a few, through plain Python.
    many = len(payload) * width >= FAST_PATH_MIN_VALUES
    if type(payload[0]) is dict:
        shaped = _records_in_model_order(payload, feature_names, feature_set, flat=many)
    else:
        lists = _checked_rows(payload, width)
        shaped = list(chain.from_iterable(lists)) if many else lists
    if many:
        return _convert_many(shaped, feature_names)
    return _convert_few(shaped, feature_names)


# --- shape: one row per record or array, values in model order --------------------------------
# The happy paths check a whole batch in a few C-speed passes (map/set/itemgetter); the per-row
# loops run only to name the first bad row, so both report exactly the same error.


def _records_in_model_order(
    records: list[Any], feature_names: Sequence[str], feature_set: frozenset[str], *, flat: bool
) -> list[Any]:
    """One tuple per record, or (flat) all values in one list without keeping those tuples."""
    try:
        # KeyError for a missing feature; TypeError for anything but a dict, as every other
        # JSON value (array, string, number, null) refuses string subscripts.
        in_order = map(_in_model_order(tuple(feature_names)), records)
        shaped = list(chain.from_iterable(in_order)) if flat else list(in_order)
    except (KeyError, TypeError):
        pass
    else:
        # Every feature present and no more keys than features: the keys are the feature set.
        if _all_of_size(records, len(feature_set), many=flat):
            return shaped
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
    raise AssertionError("the fast path rejected a batch the slow path accepts")


@lru_cache(maxsize=8)
def _in_model_order(feature_names: tuple[str, ...]) -> Callable[[dict[str, object]], Row]:
    # itemgetter yields values in model order (key order in a record is irrelevant), as a
    # tuple unless there is a single name. Cached: a service asks with the same names always.
    if len(feature_names) == 1:
        (name,) = feature_names
        return lambda record: (record[name],)
    return itemgetter(*feature_names)


def _all_of_size(records: list[dict[str, Any]], size: int, *, many: bool) -> bool:
    if many:
        return set(map(len, records)) == {size}
    # For a handful of records a plain loop costs less than setting up the C-speed pass.
    for record in records:  # noqa: SIM110 - all(generator) costs more here
        if len(record) != size:
            return False
    return True


def _checked_rows(rows: list[Any], width: int) -> list[Row]:
    if set(map(type, rows)) == {list} and set(map(len, rows)) == {width}:
        return rows
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
    raise AssertionError("the fast path rejected a batch the slow path accepts")


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


# --- values: numbers or null, within float32 ---------------------------------------------------


def _convert_few(rows: list[Row], feature_names: Sequence[str]) -> FloatRows:
    if not _plain_numbers_within_float32(rows):
        # Name the first bad value exactly as the many-values path does.
        _check_value_types(rows, feature_names)
        _check_float32_range(rows, feature_names)
    values = array("f", [math.nan if value is None else value for row in rows for value in row])
    return FloatRows(values, rows=len(rows), width=len(feature_names))


def _plain_numbers_within_float32(rows: list[Row]) -> bool:
    # For a few values one plain loop is cheapest: on a one-row request the setup of C-speed
    # passes costs more than the values themselves.
    for row in rows:
        for value in row:
            if value is None:
                continue
            kind = type(value)  # exact: a bool is not a number here
            if (kind is not float and kind is not int) or not (
                -_FLOAT32_OVERFLOW < value < _FLOAT32_OVERFLOW
            ):
                return False
    return True


def _check_float32_range(rows: Sequence[Row], feature_names: Sequence[str]) -> None:
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if value is not None and abs(value) >= _FLOAT32_OVERFLOW:
                raise _out_of_range(index, column, feature_names)


def _convert_many(values: list[Any], feature_names: Sequence[str]) -> FloatRows:
    width = len(feature_names)
    # One C-speed pass over the exact types: a bool (which array("f") would take as 1.0 or 0.0),
    # string, array or object sends the batch to the careful path that names it.
    kinds = set(map(type, values))
    if not kinds <= _NUMBER_TYPES:
        if not kinds <= _ALLOWED_VALUE_TYPES:
            rows = [values[start : start + width] for start in range(0, len(values), width)]
            _check_value_types(rows, feature_names)
        values = list(map(_NULL_AS_NAN.get, values, values))
    # array("f") rounds each double to float32 as a C cast does (IEEE round to nearest), so a
    # value beyond the float32 range becomes an infinity, found below and reported as a 400.
    floats = array("f", values)
    first = _first_infinity(floats)
    if first >= 0:
        raise _out_of_range(first // width, first % width, feature_names)
    return FloatRows(floats, rows=len(values) // width, width=width)


def _first_infinity(floats: array) -> int:
    """Index of the first infinite value, or -1: a byte search for the two bit patterns, at
    offsets that start a float (a pattern may straddle two floats elsewhere)."""
    raw = floats.tobytes()
    first = -1
    for pattern in _INFINITIES:
        at = raw.find(pattern)
        while at >= 0 and at % 4:
            at = raw.find(pattern, at + 1)
        if at >= 0 and (first < 0 or at // 4 < first):
            first = at // 4
    return first


def _check_value_types(rows: Sequence[Row], feature_names: Sequence[str]) -> None:
    # One C-speed pass over every value on the happy path; the slow search only on failure.
    if _ALLOWED_VALUE_TYPES.issuperset(map(type, chain.from_iterable(rows))):
        return
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if type(value) not in _ALLOWED_VALUE_TYPES:
                raise RequestError(
                    status=400,
                    code="invalid_value",
                    message=f"row {index}, feature {feature_names[column]!r}: expected a number "
                    f"or null, got a {_json_kind(value)}",
                    row=index,
                    feature=feature_names[column],
                )


def _json_kind(value: object) -> str:
    return {
        "bool": "boolean",
        "str": "string",
        "list": "array",
        "dict": "object",
    }.get(type(value).__name__, type(value).__name__)


def _out_of_range(index: int, column: int, feature_names: Sequence[str]) -> RequestError:
    return RequestError(
        status=400,
        code="value_out_of_range",
        message="a value is outside the float32 range",
        row=index,
        feature=feature_names[column],
    )
