"""The compiled library's request fast path (model_compiler/request_parse.c): for any body it
either defers (None) or gives exactly the float32 rows the full parser (orjson + batch.py) gives,
and it does take the plain batches clients send."""

from __future__ import annotations

import json
import math
import struct

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ml_handler.batch import FloatRows, to_matrix
from ml_handler.compiled_model import CompiledModel, load_compiled
from ml_handler.errors import RequestError
from ml_handler.service import InferenceService
from model_compiler.build import compile_model

from fuzz.models import ModelShape, generate_model
from tests.unit.compiled_cases import _train
from tests.unit.events import function_url_event
from tests.unit.small_model import FEATURES

# Plain names, two of them prefixes of others (the lookup must compare whole keys).
PLAIN = ("f0", "f1", "f2", "f3")
WIDTH = len(PLAIN)
MAX_ROWS = 64


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory: pytest.TempPathFactory) -> CompiledModel:
    folder = tmp_path_factory.mktemp("fast-path")
    _train({"max_depth": 2}, rounds=2, width=WIDTH).save_model(folder / "model.ubj")
    return load_compiled(compile_model(folder / "model.ubj", folder / "out").library)


def full_parser(body: str | bytes, names: tuple[str, ...], max_rows: int) -> FloatRows:
    return to_matrix(
        orjson.loads(body), feature_names=names, feature_set=frozenset(names), max_rows=max_rows
    )


def bits(rows: FloatRows) -> tuple[int, int, bytes]:
    return rows.rows, rows.width, rows.values.tobytes()


def float32_bits(value: float) -> int:
    return int.from_bytes(struct.pack("<f", value), "little")


# --- number spellings: what JSON allows, including those the fast path leaves to orjson -------

_digits = st.text(alphabet="0123456789", min_size=1, max_size=22)


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(
        st.one_of(
            st.just("0"),
            st.builds(
                lambda a, b: a + b,
                st.sampled_from("123456789"),
                st.text(alphabet="0123456789", max_size=20),
            ),
        )
    )
    fraction = draw(st.one_of(st.just(""), _digits.map(lambda d: "." + d)))
    exponent = draw(
        st.one_of(
            st.just(""),
            st.builds(
                lambda e, s, d: e + s + d,
                st.sampled_from("eE"),
                st.sampled_from(["", "+", "-"]),
                st.text(alphabet="0123456789", min_size=1, max_size=3),
            ),
        )
    )
    return sign + whole + fraction + exponent


# Short spellings, as clients write them (measurements, not 1e-200): these fit the fast path's
# exact conversions (at most 2^53 in the digits, a power of ten up to 22).
def _not_tiny(value: float) -> bool:
    return value == 0 or abs(value) >= 1e-12


short_numbers = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
    .filter(_not_tiny)
    .map(lambda v: f"{v:.6g}"),
    st.floats(width=32, min_value=-1e9, max_value=1e9, allow_nan=False).filter(_not_tiny).map(repr),
    st.sampled_from(["0", "-0", "0.0", "-0.0", "1e5", "2.5E-3", "1e22", "7e-22", "12.50"]),
)
value_texts = st.one_of(st.just("null"), short_numbers, number_texts())
space = st.sampled_from(["", "", " ", "\n", "\t ", "\r\n  "])


@st.composite
def batch_texts(draw: st.DrawFn, values: st.SearchStrategy[str] = value_texts) -> str:
    rows = draw(st.integers(min_value=1, max_value=8))
    records = draw(st.booleans())
    parts = []
    for _ in range(rows):
        cells = [draw(values) for _ in PLAIN]
        if records:
            order = draw(st.permutations(range(WIDTH)))
            items = [
                f'{draw(space)}"{PLAIN[i]}"{draw(space)}:{draw(space)}{cells[i]}{draw(space)}'
                for i in order
            ]
            parts.append("{" + ",".join(items) + "}")
        else:
            parts.append("[" + ",".join(draw(space) + c + draw(space) for c in cells) + "]")
    return (
        draw(space)
        + "["
        + ",".join(draw(space) + p for p in parts)
        + draw(space)
        + "]"
        + draw(space)
    )


# Edits that leave the fast path's subset: each must make it defer or agree with orjson.
_SNIPPETS = [
    '"f0":1',
    "true",
    '"x"',
    "[1]",
    "{}",
    ",",
    ":",
    "}",
    "]",
    "01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "NaN",
    "\\u0066",
    "é",
    "\x00",
    "nul",
    "1e400",
    '"f9":1',
    " ",
]


@st.composite
def edited_batch_texts(draw: st.DrawFn) -> str:
    text = draw(batch_texts())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        snippet = draw(st.sampled_from(_SNIPPETS))
        if edit == "insert":
            text = text[:at] + snippet + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=4)) :]
        else:
            text = text[:at] + snippet + text[at + len(snippet) :]
    return text


@given(text=st.one_of(batch_texts(), edited_batch_texts()), max_rows=st.integers(1, 10))
def test_fast_path_defers_or_agrees_bit_for_bit_with_the_full_parser_for_any_body(
    plain_model, text, max_rows
):
    """Property: for any body (plain batches, and batches with edits that leave the subset: bad
    JSON, other types, duplicate or unknown keys, escapes, non-ASCII, too many rows), the fast
    path returns None, or rows that the full parser also returns, bit for bit."""
    fast = plain_model.parse_batch(text, max_rows=max_rows)
    if fast is None:
        return
    # The full parser must accept what the fast path accepted, with the same rows and bits.
    assert bits(fast) == bits(full_parser(text, PLAIN, max_rows))


@given(text=batch_texts(values=st.one_of(st.just("null"), short_numbers)))
def test_fast_path_takes_plain_batches_when_numbers_are_short(plain_model, text):
    """Property: a plain batch (records or rows, any key order and whitespace, short numbers and
    nulls) is read by the fast path, bit-identical to the full parser (str and bytes alike)."""
    expected = bits(full_parser(text, PLAIN, MAX_ROWS))
    fast = plain_model.parse_batch(text, max_rows=MAX_ROWS)
    assert fast is not None, text
    assert bits(fast) == expected
    from_bytes = plain_model.parse_batch(text.encode(), max_rows=MAX_ROWS)
    assert from_bytes is not None
    assert bits(from_bytes) == expected


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("-0", 0.0),  # a Python int: no negative zero
        ("-0.0", -0.0),
        ("0e-5", 0.0),
        ("1E+2", 100.0),
        ("0.1", 0.1),
        ("1e22", 1e22),
        ("7e-22", 7e-22),
        ("16777217", 16777217.0),  # rounds to float32 as 16777216
        ("9007199254740993", 9007199254740992.0),  # the int through the nearest double
        ("-9223372036854775807", -9.223372036854775807e18),
        ("3.4028235e38", 3.4028234663852886e38),  # FLT_MAX, by two scalings
        ("1.1920928955078125e-07", 2.0**-23),  # 17 digits, beyond one exact scaling
        ("1.0000000596046448", 1.0),  # 17 digits just below a float32 midpoint (1 + 2^-24)
        ("1.0000000596046449", 1.0000001192092896),  # ... and just above it
        ("1.2345678901234567e-50", 0.0),  # beyond float32's subnormals
        ("1.4e-45", 2.0**-149),  # the smallest float32 subnormal
        ("-7.0064923e-46", -0.0),  # just below half of it: a negative zero
        ("9223372036854775808", 2.0**63),  # 2^63: a Python int beyond int64
        ("18446744073709551616", 2.0**64),  # orjson's double beyond 64 bits
        ("0.000000000000000000000000000001", 1e-30),  # 30 leading zeros
        ("1.5" + "0" * 30, 1.5),  # trailing zeros past 19 digits
        # 19 digits an ulp above a float32 midpoint, where the scaled approximation lands: only
        # the margin sends them to strtod, which reads the midpoint itself (ties to even)
        ("1091430195312500042e-13", 109143.01953125),
        ("9698397843749262400e-23", 9.698397843749262e-05),  # two scalings
    ],
)
def test_fast_path_converts_numbers_like_orjson_then_float32_when_exact(
    plain_model, spelling, expected
):
    body = json.dumps([[0, 0, 0, 0]]).replace("[[0", f"[[{spelling}")
    fast = plain_model.parse_batch(body, max_rows=1)
    assert fast is not None
    assert float32_bits(fast.values[0]) == float32_bits(expected)


# Float32 rounding midpoints (halfway between neighbouring float32s) in several binades.
MIDPOINTS = [
    1 + 2.0**-24,
    0.1 + 2.0**-28 * 0.8,
    1234.5678 + 2.0**-14,
    3.0e-5 + 2.0**-40,
    -6.5 - 2.0**-22,
]


@pytest.mark.parametrize("midpoint", MIDPOINTS)
def test_fast_path_rounds_long_decimals_like_the_full_parser_when_near_a_float32_midpoint(
    plain_model, midpoint
):
    """Doubles a few ulps around a float32 midpoint, printed in full (17 digits): the fast path
    reads every one (correctly rounded, no margin to defer in) and agrees with the full parser."""
    exact_midpoint = midpoint_of(midpoint)
    for step in range(-24, 25):
        value = exact_midpoint + step * math.ulp(exact_midpoint)
        body = f"[[{value!r},0,0,0]]"
        fast = plain_model.parse_batch(body, max_rows=1)
        assert fast is not None, body
        assert bits(fast) == bits(full_parser(body, PLAIN, 1)), body


def midpoint_of(near: float) -> float:
    """The float32 rounding midpoint next to `near`: halfway between its float32 neighbours."""
    (pattern,) = struct.unpack("<I", struct.pack("<f", near))
    low, high = struct.unpack("<2f", struct.pack("<2I", pattern, pattern + 1))
    return (low + high) / 2  # exact: a double holds every float32 midpoint


NULL_BITS = 0x7FC00000


def test_fast_path_reads_null_as_the_nan_the_full_parser_writes(plain_model):
    fast = plain_model.parse_batch('[{"f3":null,"f0":null,"f2":1,"f1":null}]', max_rows=1)
    assert fast is not None
    assert [float32_bits(v) for v in fast.values] == [NULL_BITS, NULL_BITS, 0x3F800000, NULL_BITS]


@pytest.mark.parametrize(
    "body",
    [
        "[]",  # empty batch: the full parser's 400
        '[{"f0":1,"f1":2,"f2":3,"f3":4},[1,2,3,4]]',  # mixed forms
        '[{"f0":1,"f1":2,"f2":3}]',  # missing feature
        '[{"f0":1,"f1":2,"f2":3,"f3":4,"f4":5}]',  # unknown feature
        '[{"f0":1,"f1":2,"f2":3,"f3":4,"f0":5}]',  # repeated key: orjson keeps the last
        '[{"f0":1,"f1":2,"f2":3,"f0":5}]',  # a repeated key where a missing one should be
        "[[nulz,2,3,4]]",
        '[{"f0":1,"f1":2,"f2":3,"f00":4}]',  # a key that starts with a feature's name
        '[{"f\\u0030":1,"f1":2,"f2":3,"f3":4}]',  # escaped key
        "[[1,2,3]]",
        "[[1,2,3,4,5]]",
        "[[1,2,3,true]]",
        '[[1,2,3,"4"]]',
        "[[1,2,3,[4]]]",
        "[[1,2,3,4],]",  # trailing comma: invalid JSON
        "[[1,2,3,4]] x",
        "[[1,2,3,4]",
        "[[01,2,3,4]]",
        "[[1.,2,3,4]]",
        "[[.5,2,3,4]]",
        "[[+1,2,3,4]]",
        "[[1e,2,3,4]]",
        "[[NaN,2,3,4]]",
        "[[1e400,2,3,4]]",  # beyond the double range: the full parser's own code
        "[[1e39,2,3,4]]",  # beyond float32: value_out_of_range
        "[[1" + "0" * 800 + ",2,3,4]]",  # more digits than a double can need
        "[[1e100000,2,3,4]]",  # an exponent far beyond the double range
        "[[1,2,3,4]]\u00a0",  # non-ASCII (a no-break space is not JSON whitespace)
        "[[1,2,3,4],[1,2,3,4]]",  # two rows, one allowed
        "{}",
        "",
    ],
)
def test_fast_path_defers_to_the_full_parser_when_body_leaves_the_subset(plain_model, body):
    assert plain_model.parse_batch(body, max_rows=1) is None


def test_fast_path_holds_max_rows_rows_when_the_batch_has_exactly_that_many(plain_model):
    body = json.dumps([[row, 1, 2, 3] for row in range(5)])
    fast = plain_model.parse_batch(body, max_rows=5)
    assert fast is not None
    assert fast.rows == 5
    assert list(fast.values[::WIDTH]) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_fast_path_reads_rows_but_defers_records_when_names_need_escapes(small_compiled):
    # GIVEN the small model, whose names hold a quote and a non-ASCII letter
    rows = [[1.5, None, -3.0, 20.0, 1]]
    # THEN rows are read, records (whose keys need \" and é) are left to the full parser
    fast = small_compiled.parse_batch(json.dumps(rows), max_rows=4)
    assert fast is not None
    assert bits(fast) == bits(full_parser(json.dumps(rows), FEATURES, 4))
    records = json.dumps([dict(zip(FEATURES, rows[0], strict=True))], ensure_ascii=False)
    assert small_compiled.parse_batch(records, max_rows=4) is None
    assert small_compiled.parse_batch(records.encode(), max_rows=4) is None


def test_service_answers_with_the_full_parsers_error_when_the_fast_path_defers(plain_model):
    # GIVEN a repeated key (valid JSON; orjson keeps the last value) and a missing feature
    service = InferenceService(model=plain_model, max_rows=MAX_ROWS)
    repeated = '[{"f0":9,"f1":2,"f2":3,"f3":4,"f0":1}]'
    plain = '[{"f0":1,"f1":2,"f2":3,"f3":4}]'
    # THEN the repeated key's batch is answered as the last value, like the plain one
    assert (
        service.handle(function_url_event("POST", repeated), None)["body"]
        == service.handle(function_url_event("POST", plain), None)["body"]
    )
    missing = json.loads(
        service.handle(function_url_event("POST", '[{"f0":1,"f1":2,"f2":3}]'), None)["body"]
    )
    assert missing["error"]["code"] == "missing_feature"
    assert missing["error"]["feature"] == "f3"


def test_service_uses_the_fast_path_when_the_model_has_one(plain_model, monkeypatch):
    # The full parser made to fail: a plain batch is still answered, a deferred one is not.
    import ml_handler.service as service_module

    def no_full_parser(*_args: object, **_kwargs: object) -> None:
        raise RequestError(status=400, code="full_parser_used", message="full parser")

    monkeypatch.setattr(service_module, "to_matrix", no_full_parser)
    service = InferenceService(model=plain_model, max_rows=MAX_ROWS)
    plain = service.handle(function_url_event("POST", "[[1,2,3,4]]"), None)
    assert plain["statusCode"] == 200
    deferred = json.loads(service.handle(function_url_event("POST", "[[1,2,3]]"), None)["body"])
    assert deferred["error"]["code"] == "full_parser_used"


@pytest.mark.parametrize("rows", [1, 2, 7, 8, 33])
def test_fast_path_takes_the_most_compact_body_when_it_fits_max_rows(plain_model, rows):
    # "[0,0,0,0]" rows with one-digit values: the fewest bytes a row can take, which the
    # buffer's row bound (2 bytes a value) must still hold.
    body = "[" + ",".join(["[0,0,0,0]"] * rows) + "]"
    fast = plain_model.parse_batch(body, max_rows=MAX_ROWS)
    assert fast is not None
    assert fast.rows == rows


# The float32 overflow boundary: halfway between FLT_MAX and 2^128 (the cast rounds it to
# infinity), and the doubles around it, each spelled as clients might.
FLOAT32_OVERFLOW = 2.0**128 - 2.0**103
NEAR_OVERFLOW = [
    FLOAT32_OVERFLOW - 2 * math.ulp(FLOAT32_OVERFLOW),
    FLOAT32_OVERFLOW - math.ulp(FLOAT32_OVERFLOW),
    FLOAT32_OVERFLOW,
    FLOAT32_OVERFLOW + math.ulp(FLOAT32_OVERFLOW),
    2.0**128 - math.ulp(2.0**128),
]


def _spellings(value: float) -> list[str]:
    return [
        repr(value),  # 17 digits, exponent 38
        f"{value:.7e}",  # 8 digits: the float32-ish spelling (3.4028236e+38)
        f"{value:.8e}",
        f"{int(value)}",  # the same value as an integer (39 digits)
        f"{int(value)}.0",
        f"{value / 1e22:.17g}e22",
    ]


@pytest.mark.parametrize("value", NEAR_OVERFLOW + [-v for v in NEAR_OVERFLOW])
def test_fast_path_defers_or_agrees_when_a_value_is_at_the_float32_overflow_boundary(
    plain_model, value
):
    """Regression (issue 21's class): 3.4028236e38 and its neighbours in [FLT_MAX rounding
    boundary, 2^128) were read by the fast path as an infinity and answered 200, where the full
    parser answers 400 value_out_of_range; now every spelling defers or agrees."""
    for spelling in _spellings(value):
        body = f"[[{spelling},0,0,0]]"
        fast = plain_model.parse_batch(body, max_rows=1)
        if abs(float(spelling)) >= FLOAT32_OVERFLOW:
            assert fast is None, body
            with pytest.raises(RequestError, match="outside the float32 range"):
                full_parser(body, PLAIN, 1)
        else:
            assert fast is not None, body
            assert bits(fast) == bits(full_parser(body, PLAIN, 1)), body


@pytest.mark.parametrize("spelling", ["3.4028236e38", "-3.40282357e+38", "3.4028235677973366e38"])
def test_service_answers_value_out_of_range_for_a_float32_overflow_however_the_key_is_spelled(
    plain_model, spelling
):
    # GIVEN the same record with a plain key (fast path) and an escaped one (full parser)
    service = InferenceService(model=plain_model, max_rows=MAX_ROWS)
    plain = f'[{{"f0":{spelling},"f1":0,"f2":0,"f3":0}}]'
    escaped = plain.replace('"f0"', '"f\\u0030"')
    answers = [service.handle(function_url_event("POST", body), None) for body in (plain, escaped)]
    # THEN both are the full parser's 400, word for word
    assert answers[0]["statusCode"] == answers[1]["statusCode"] == 400
    assert answers[0]["body"] == answers[1]["body"]
    assert json.loads(answers[0]["body"])["error"]["code"] == "value_out_of_range"


@pytest.mark.parametrize(
    ("name", "raw_key", "full_parser_error"),
    [
        # "a\b" in a body is a JSON escape: the key is a + backspace, an unknown feature
        ("a\\b", "a\\b", "unknown_feature"),
        # a raw tab in a string is not JSON at all
        ("t\tb", "t\tb", "invalid_json"),
    ],
    ids=["backslash", "tab"],
)
def test_fast_path_defers_a_raw_key_equal_to_a_name_that_json_would_read_otherwise(
    tmp_path, name, raw_key, full_parser_error
):
    # GIVEN a model with such a name (generated: a client's DataFrame may have one)
    names = [name, "c"]
    model = tmp_path / "model.json"
    shape = ModelShape(features=2, max_depth=1, trees=1)
    model.write_bytes(generate_model(shape, seed=1, names=names))
    compiled = load_compiled(compile_model(model, tmp_path / "out").library)
    body = '[{"' + raw_key + '":1,"c":2}]'
    # THEN the fast path defers the raw key, and the full parser answers the 400 it must
    assert compiled.parse_batch(body, max_rows=1) is None
    service = InferenceService(model=compiled, max_rows=1)
    answer = service.handle(function_url_event("POST", body), None)
    assert json.loads(answer["body"])["error"]["code"] == full_parser_error
    # AND the key spelled as JSON is that feature for both parsers
    proper = json.dumps([{name: 1, "c": 2}])
    assert bits(
        compiled.parse_batch(proper, max_rows=1) or full_parser(proper, (name, "c"), 1)
    ) == (bits(full_parser(proper, (name, "c"), 1)))
