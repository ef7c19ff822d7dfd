"""to_matrix on its own: which value is named when several are bad, float32 edges on both of its
conversions (few values, many values), and error messages that say what and where."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ml_handler.batch import FAST_PATH_MIN_VALUES, to_matrix
from ml_handler.errors import RequestError

from tests.unit.small_model import FEATURES

WIDTH = len(FEATURES)
FEATURE_SET = frozenset(FEATURES)
# Rows enough for the many-values conversion, and a row count that stays below it.
MANY = -(-FAST_PATH_MIN_VALUES // WIDTH)
FEW = max(1, (FAST_PATH_MIN_VALUES - 1) // WIDTH)
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest double a float32 cast takes to infinity (the tie between FLT_MAX and 2**128
# rounds to even, which is infinity); the double just below it still rounds to FLT_MAX.
HALFWAY = (FLOAT32_MAX + 2.0**128) / 2
BELOW_HALFWAY = math.nextafter(HALFWAY, 0)
# JSON's own names for its types.
JSON_KINDS = {bool: "boolean", str: "string", list: "array", dict: "object"}


def matrix(payload: object, *, max_rows: int = 10_000):
    return to_matrix(payload, feature_names=FEATURES, feature_set=FEATURE_SET, max_rows=max_rows)


def refusal(payload: object) -> RequestError:
    with pytest.raises(RequestError) as raised:
        matrix(payload)
    return raised.value


def table(rows: int, value: object = 1.5) -> list[list[object]]:
    return [[value] * WIDTH for _ in range(rows)]


def as_records(rows: list[list[object]]) -> list[dict[str, object]]:
    return [dict(zip(FEATURES, row, strict=True)) for row in rows]


def float32_values(result) -> list[float]:
    return list(result.values)


@pytest.mark.parametrize("rows", [1, FEW, MANY, 3 * MANY])
def test_float32_rows_in_model_order_for_each_conversion(rows):
    batch = [[float(r), -0.5 * r, None, r * 1e-3, 7] for r in range(rows)]
    shuffled = [dict(reversed(list(record.items()))) for record in as_records(batch)]
    for payload in (batch, shuffled):
        result = matrix(payload)
        assert (len(result), result.rows, result.width) == (rows, rows, WIDTH)
        expected = np.array(batch, dtype=np.float32).ravel()
        np.testing.assert_array_equal(np.array(float32_values(result), np.float32), expected)


@pytest.mark.parametrize("rows", [1, MANY])
@pytest.mark.parametrize("value", [HALFWAY, -HALFWAY, 1e39, -1e39, 1.7e308])
def test_value_out_of_range_when_every_value_overflows(rows, value):
    error = refusal(table(rows, value))
    assert (error.status, error.code, error.row, error.feature) == (
        400,
        "value_out_of_range",
        0,
        FEATURES[0],
    )


@pytest.mark.parametrize("rows", [1, MANY])
@pytest.mark.parametrize("value", [HALFWAY, -HALFWAY])
def test_value_out_of_range_at_the_float32_rounding_tie(rows, value):
    batch = table(rows)
    batch[-1][2] = value
    error = refusal(batch)
    assert (error.code, error.row, error.feature) == ("value_out_of_range", rows - 1, FEATURES[2])


@pytest.mark.parametrize("rows", [1, MANY])
@pytest.mark.parametrize("value", [BELOW_HALFWAY, -BELOW_HALFWAY, FLOAT32_MAX, -FLOAT32_MAX])
def test_largest_value_accepted_just_below_the_rounding_tie(rows, value):
    batch = table(rows)
    batch[0][0] = value
    assert abs(float32_values(matrix(batch))[0]) == FLOAT32_MAX


@pytest.mark.parametrize("rows", [1, MANY])
def test_value_out_of_range_named_at_first_row_and_feature(rows):
    batch = table(rows)
    batch[0][0] = 1e39
    error = refusal(batch)
    assert (error.code, error.row, error.feature) == ("value_out_of_range", 0, FEATURES[0])


def _cells(rows: int) -> st.SearchStrategy[list[tuple[int, int]]]:
    cell = st.tuples(st.integers(0, rows - 1), st.integers(0, WIDTH - 1))
    return st.lists(cell, min_size=2, max_size=4, unique=True)


@given(
    rows=st.sampled_from([1, FEW, MANY, 2 * MANY]),
    data=st.data(),
    magnitude=st.sampled_from([HALFWAY, 1e39, 1e300]),
)
def test_first_out_of_range_value_named_when_several_overflow(rows, data, magnitude):
    """With several out-of-range values of either sign, the first in row-major order is named."""
    cells = data.draw(_cells(rows) if rows * WIDTH > 1 else st.just([(0, 0)]))
    signs = data.draw(st.lists(st.booleans(), min_size=len(cells), max_size=len(cells)))
    batch = table(rows)
    for (row, column), negative in zip(cells, signs, strict=True):
        batch[row][column] = -magnitude if negative else magnitude
    first_row, first_column = min(cells)
    for payload in (batch, as_records(batch)):
        error = refusal(payload)
        assert (error.code, error.row, error.feature) == (
            "value_out_of_range",
            first_row,
            FEATURES[first_column],
        )


@pytest.mark.parametrize(("first", "second"), [(1e39, -1e39), (-1e39, 1e39)])
@pytest.mark.parametrize("start", [0, 1, 4, 6, 23])
def test_earlier_infinity_named_when_other_sign_follows(first, second, start):
    batch = table(MANY)
    flat = [start, start + 1, start + 2 * WIDTH + 1]
    for index, value in zip(flat, (first, second, second), strict=True):
        batch[index // WIDTH][index % WIDTH] = value
    error = refusal(batch)
    assert (error.row, error.feature) == (start // WIDTH, FEATURES[start % WIDTH])


# Two float32 values whose bytes, side by side, hold an infinity's bit pattern at an offset that
# does not start a float: the smallest subnormal (01 00 00 00 in memory, little-endian) and a
# value that starts with the pattern's last two bytes.
TINY = 2.0**-149


def straddling_value(sign: float) -> float:
    pattern = struct.pack("=f", math.copysign(math.inf, sign))
    return struct.unpack("=f", pattern[2:] + struct.pack("=f", 1.0)[2:])[0]


STRADDLE, NEG_STRADDLE = straddling_value(1.0), straddling_value(-1.0)


def straddling(row: list[object], column: int, value: float) -> None:
    row[column], row[column + 1] = TINY, value


@pytest.mark.parametrize("value", [STRADDLE, NEG_STRADDLE])
@pytest.mark.parametrize("rows", [1, MANY])
def test_finite_values_accepted_when_their_bytes_look_like_infinity(rows, value):
    batch = table(rows)
    straddling(batch[0], 1, value)
    raw = np.array(batch, dtype=np.float32).tobytes()
    assert raw.find(struct.pack("=f", math.copysign(math.inf, value))) % 4  # the case under test
    assert float32_values(matrix(batch))[1:3] in ([TINY, value], [value, TINY])


@pytest.mark.parametrize("value", [STRADDLE, NEG_STRADDLE])
def test_out_of_range_named_after_bytes_that_look_like_infinity(value):
    batch = table(MANY)
    straddling(batch[0], 1, value)
    batch[2][3] = math.copysign(1e39, value)
    batch[MANY - 1][4] = math.copysign(1e39, value)
    error = refusal(batch)
    assert (error.code, error.row, error.feature) == ("value_out_of_range", 2, FEATURES[3])


@pytest.mark.parametrize("rows", [1, MANY])
@pytest.mark.parametrize("wrong", [True, False, "1.5", "", [1.0], [], {"v": 1}, {}])
@pytest.mark.parametrize("records_form", [False, True])
def test_invalid_value_message_names_row_feature_and_json_kind(rows, wrong, records_form):
    batch = table(rows)
    batch[rows - 1][3] = wrong
    error = refusal(as_records(batch) if records_form else batch)
    assert (error.code, error.row, error.feature) == ("invalid_value", rows - 1, FEATURES[3])
    assert f"row {rows - 1}" in error.message
    assert repr(FEATURES[3]) in error.message
    assert JSON_KINDS[type(wrong)] in error.message


REFUSALS = {
    "record_not_object": lambda: [as_records(table(1))[0], [1] * WIDTH],
    "row_not_array": lambda: [[1] * WIDTH, "row"],
    "mixed_forms": lambda: [[1] * WIDTH, as_records(table(1))[0]],
    "wrong_row_length": lambda: [[1] * WIDTH, [1] * (WIDTH + 1)],
    "missing_feature": lambda: [as_records(table(1))[0], {FEATURES[0]: 1}],
    "unknown_feature": lambda: [as_records(table(1))[0], {**as_records(table(1))[0], "x": 1}],
    "invalid_value": lambda: [[1] * WIDTH, [1, 2, "3", 4, 5]],
    "value_out_of_range": lambda: [[1] * WIDTH, [1, 2, 1e39, 4, 5]],
}


@pytest.mark.parametrize("code", list(REFUSALS))
def test_error_message_names_the_row_it_reports(code):
    error = refusal(REFUSALS[code]())
    assert (error.status, error.code, error.row) == (400, code, 1)
    assert isinstance(error.message, str)
    if code != "value_out_of_range":  # its message says what, the fields say where
        assert "row 1" in error.message
    else:
        assert "float32" in error.message


def test_too_many_rows_message_names_count_and_limit():
    with pytest.raises(RequestError) as raised:
        matrix(table(7), max_rows=6)
    error = raised.value
    assert (error.status, error.code) == (413, "too_many_rows")
    assert "7" in error.message
    assert "6" in error.message
    assert matrix(table(6), max_rows=6).rows == 6
