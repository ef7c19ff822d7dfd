"""Hypothesis strategies for batches of the small model, and an independent oracle of validity."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from tests.unit.small_model import FEATURES, SMALL_MAX_ROWS

WIDTH = len(FEATURES)
MAX_BATCH = 24

# Everything the contract accepts as a number: JSON integers orjson reads exactly (up to u64),
# float32 values, doubles that float32 must round, and 0 and 1 (which booleans resemble).
numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, 1, 0.0, 1.0, -0.0]),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False),
)
values = st.one_of(st.none(), numbers)


def _tables(cell: st.SearchStrategy[object], min_rows: int, max_rows: int) -> st.SearchStrategy:
    row = st.lists(cell, min_size=WIDTH, max_size=WIDTH)
    return st.lists(row, min_size=min_rows, max_size=max_rows)


rows = _tables(values, 1, MAX_BATCH)
# Batches without nulls: the only ones the parser's one-pass conversion accepts.
null_free_rows = _tables(numbers, 1, MAX_BATCH)
batches = st.one_of(rows, null_free_rows)


def as_records(batch: list[list[object]]) -> list[dict[str, object]]:
    return [dict(zip(FEATURES, row, strict=True)) for row in batch]


def as_rows(records: list[dict[str, object]]) -> list[list[object]]:
    return [[record[name] for name in FEATURES] for record in records]


# Arbitrary JSON documents, including ones that look almost like batches.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(FEATURES),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(FEATURES), st.text(max_size=6)), children),
    ),
    max_leaves=30,
)


def is_valid_batch(payload: object) -> bool:
    """The contract, written out plainly: what must get a 200."""
    if not isinstance(payload, list) or not payload or len(payload) > SMALL_MAX_ROWS:
        return False
    if all(type(item) is dict for item in payload):
        if any(set(item) != set(FEATURES) for item in payload):
            return False
        table = as_rows(payload)
    elif all(type(item) is list for item in payload):
        if any(len(item) != WIDTH for item in payload):
            return False
        table = payload
    else:
        return False
    return all(_valid_value(value) for row in table for value in row)


def _valid_value(value: object) -> bool:
    if value is None:
        return True
    if type(value) not in (int, float):
        return False
    with np.errstate(over="ignore"):
        return math.isfinite(float(np.float32(float(value))))  # type: ignore[arg-type]
