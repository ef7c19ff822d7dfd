"""The structural check against UBJSON documents written by an encoder of the tests' own: every
form of container, count and length marker, not only the ones xgboost happens to write."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from model_compiler.model_format import ModelFormatError, check_model_bytes

# Integer markers: (marker, struct format, minimum, maximum), big-endian as UBJSON is.
INTEGERS = [
    (b"i", ">b", -(2**7), 2**7 - 1),
    (b"U", ">B", 0, 2**8 - 1),
    (b"I", ">h", -(2**15), 2**15 - 1),
    (b"u", ">H", 0, 2**16 - 1),
    (b"l", ">i", -(2**31), 2**31 - 1),
    (b"m", ">I", 0, 2**32 - 1),
    (b"L", ">q", -(2**63), 2**63 - 1),
    (b"M", ">Q", 0, 2**64 - 1),
]
FIXED = {b"Z": b"", b"T": b"", b"F": b"", b"N": b"", b"d": b"\x00" * 4, b"D": b"\x00" * 8}


@st.composite
def lengths(draw: st.DrawFn, value: int) -> bytes:
    """`value` as a UBJSON length, under any integer marker wide enough for it."""
    fitting = [(m, f) for m, f, low, high in INTEGERS if low <= value <= high]
    marker, fmt = draw(st.sampled_from(fitting))
    return marker + struct.pack(fmt, value)


@st.composite
def strings(draw: st.DrawFn) -> bytes:
    text = draw(st.binary(max_size=3) | st.binary(min_size=127, max_size=300))
    return draw(lengths(len(text))) + text


@st.composite
def scalars(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(marker, payload) of one scalar value."""
    kind = draw(st.sampled_from(["fixed", "int", "char", "string", "high_precision"]))
    if kind == "fixed":
        marker = draw(st.sampled_from(sorted(FIXED)))
        return marker, FIXED[marker]
    if kind == "int":
        marker, fmt, low, high = draw(st.sampled_from(INTEGERS))
        return marker, struct.pack(fmt, draw(st.integers(low, high)))
    if kind == "char":
        return b"C", draw(st.binary(min_size=1, max_size=1))
    return (b"S" if kind == "string" else b"H"), draw(strings())


@st.composite
def containers(draw: st.DrawFn, children: st.SearchStrategy, *, obj: bool | None = None) -> bytes:
    """An array or object (obj), untyped and unsized, sized, or typed and sized."""
    is_object = draw(st.booleans()) if obj is None else obj
    opener, closer = (b"{", b"}") if is_object else (b"[", b"]")
    form = draw(st.sampled_from(["open", "sized", "typed"]))
    if form == "typed":
        marker, payload = draw(scalars())
        items = [payload] + [draw(scalars_of(marker)) for _ in range(draw(st.integers(0, 3)))]
        if is_object:
            items = [draw(strings()) + item for item in items]
        return opener + b"$" + marker + b"#" + draw(lengths(len(items))) + b"".join(items)
    values = [b"".join(draw(children)) for _ in range(draw(st.integers(0, 4)))]
    if is_object:
        values = [draw(strings()) + value for value in values]
    body = b"".join(values)
    if form == "sized":
        return opener + b"#" + draw(lengths(len(values))) + body
    return opener + body + closer


def scalars_of(marker: bytes) -> st.SearchStrategy[bytes]:
    """Another payload of the same type (a typed container's items carry no marker)."""
    return scalars().filter(lambda pair: pair[0] == marker).map(lambda pair: pair[1])


values = st.recursive(
    scalars(),
    lambda children: containers(children).map(lambda raw: (b"", raw)),
    max_leaves=12,
)
documents = containers(values, obj=True)


@given(document=documents)
def test_structure_accepted_for_any_complete_ubjson_object(document):
    """Every complete UBJSON object, in any container form and length marker, is accepted."""
    check_model_bytes(document)


@given(document=documents, data=st.data())
def test_structure_refused_for_any_truncated_ubjson_object(document, data):
    """Every proper prefix of a UBJSON object is refused (UBJSON is prefix-free)."""
    cut = data.draw(st.integers(1, len(document) - 1))
    with pytest.raises(ModelFormatError):
        check_model_bytes(document[:cut])


@given(document=documents, extra=st.binary(min_size=1, max_size=4).filter(lambda b: b.strip()))
def test_structure_refused_when_bytes_follow_a_ubjson_object(document, extra):
    """Bytes after the end of a UBJSON object are refused, whatever they are."""
    if document == b"{}":
        return  # also JSON's empty object: xgboost's JSON parser judges what follows
    with pytest.raises(ModelFormatError):
        check_model_bytes(document + extra.strip())


NEGATIVE_LENGTHS = [
    (marker, where) for marker in (b"i", b"I", b"l", b"L") for where in ("key", "string", "count")
]


@pytest.mark.timeout(10)
def test_structure_refused_for_negative_int64_key_length_that_steps_back():
    """The int64 key length xgboost writes has its own fast path: a negative one once moved the
    walk backwards onto the same bytes, forever (a Lambda hung at init)."""
    with pytest.raises(ModelFormatError, match="negative UBJSON length -10"):
        check_model_bytes(b"{U\x01bZL" + struct.pack(">q", -10) + b"}")


@pytest.mark.parametrize(("marker", "where"), NEGATIVE_LENGTHS)
def test_structure_refused_for_negative_length(marker, where):
    fmt = next(f for m, f, _, _ in INTEGERS if m == marker)
    negative = marker + struct.pack(fmt, -1)
    document = {
        "key": b"{" + negative + b"Z}",
        "string": b"{U\x01aS" + negative + b"}",
        "count": b"{U\x01a[#" + negative + b"}",
    }[where]
    with pytest.raises(ModelFormatError, match="negative"):
        check_model_bytes(document)


def test_structure_refused_for_key_length_beyond_any_file():
    # An int64 key length whose top byte alone puts it past the file.
    with pytest.raises(ModelFormatError, match="truncated or corrupt"):
        check_model_bytes(b"{L\x01\x00\x00\x00\x00\x00\x00\x01aZ}")


@pytest.mark.parametrize("count", [b"L\x7f\x00\x00\x00\x00\x00\x00\x00", b"U\xff", b"u\x01\x00"])
def test_structure_refused_for_item_count_beyond_the_file(count):
    with pytest.raises(ModelFormatError):
        check_model_bytes(b"{U\x01a{#" + count + b"U\x01bZ}")


def nested(depth: int) -> bytes:
    return b"{U\x01a" * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_structure_accepted_at_the_nesting_limit_and_refused_beyond_it():
    check_model_bytes(nested(64))
    with pytest.raises(ModelFormatError, match="nested deeper than 64"):
        check_model_bytes(nested(65))


@pytest.mark.parametrize("marker", [b"X", b"#", b"]", b"$"])
def test_structure_refused_for_unknown_value_type(marker):
    with pytest.raises(ModelFormatError, match="byte 4"):
        check_model_bytes(b"{U\x01a" + marker + b"}")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"[1]", r"starts with b'\[1\]'"),
        (b'{"a": 1', "truncated"),
        (b"{U\x01aZ}\x00\x00", "2 unexpected bytes"),
        (b"{U\x01aZ", "file's 5 bytes"),
        (b"{d\x01aZ}", "expected a UBJSON length"),
        (b"{U\x01a[$U}", "needs a count"),
    ],
)
def test_structure_refusal_says_what_is_wrong(raw, message):
    with pytest.raises(ModelFormatError, match=message):
        check_model_bytes(raw)
