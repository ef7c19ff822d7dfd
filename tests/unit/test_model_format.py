"""The structural check before xgboost reads a model (model_compiler, training's probe): a
truncated or padded model file is refused with a message before xgboost sees it (xgboost 3.2
dies of SIGSEGV on a truncated UBJSON buffer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ml_handler.model import ModelLoadError, load_model
from model_compiler.model_format import ModelFormatError, check_model_bytes


def test_structure_accepted_for_bundled_and_small_models(bundled_model_path, small_model_paths):
    for path in (bundled_model_path, *small_model_paths.values()):
        check_model_bytes(path.read_bytes())


def test_structure_refused_for_truncations_of_a_ubj_model(small_model_paths):
    raw = small_model_paths["ubj"].read_bytes()
    accepted = []
    # Every cut in the header and the tail, every 7th between: each kind of value is cut.
    for cut in sorted({*range(600), *range(600, len(raw), 7), *range(len(raw) - 600, len(raw))}):
        try:
            check_model_bytes(raw[:cut])
        except ModelFormatError:
            continue
        accepted.append(cut)
    assert accepted == []


def test_structure_refused_for_truncations_of_the_bundled_model(bundled_model_path):
    raw = bundled_model_path.read_bytes()
    # Cuts spread over the file, and the last 16 bytes: typed arrays, keys, counts, final "}".
    cuts = [*range(1, len(raw), len(raw) // 40), *range(len(raw) - 16, len(raw))]
    for cut in cuts:
        with pytest.raises(ModelFormatError, match=r"truncated"):
            check_model_bytes(raw[:cut])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw + b"}", "unexpected bytes after its end"),
        (lambda raw: b"[" + raw[1:], "not a JSON/UBJSON object"),
        # The first key's length (int64, after "{L") made huge: a length beyond the file.
        (lambda raw: raw[:2] + b"\x7f" + raw[3:], "truncated or corrupt"),
        # The root's first key length marker replaced by a type that is not a length.
        (lambda raw: raw[:1] + b"d" + raw[2:], "expected a UBJSON length"),
    ],
    ids=["trailing_bytes", "not_an_object", "huge_length", "bad_length_marker"],
)
def test_structure_refused_for_corrupt_ubj(small_model_paths, mutate, message):
    with pytest.raises(ModelFormatError, match=message):
        check_model_bytes(mutate(small_model_paths["ubj"].read_bytes()))


def test_structure_refused_for_truncated_json(small_model_paths):
    raw = small_model_paths["json"].read_bytes()
    with pytest.raises(ModelFormatError, match=r"JSON model is truncated"):
        check_model_bytes(raw[: len(raw) // 2])


def test_model_load_error_names_file_when_bundled_model_truncated(
    bundled_model_path, tmp_path: Path
):
    """GIVEN the bundled model cut at byte 100 (where xgboost 3.2 segfaults) WHEN the handler
    loads it THEN a ModelLoadError names the file and the truncation; the process lives on."""
    path = tmp_path / "model.ubj"
    path.write_bytes(bundled_model_path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=r"truncated") as raised:
        load_model(path, cache_dir=str(tmp_path / "cache"))
    assert str(path) in str(raised.value)


# Hand-built UBJSON: {"a": <value>} around the part under test.
def _object_with(value: bytes) -> bytes:
    return b"{U\x01a" + value + b"}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the file is empty"),
        (b"not a model", "the file starts with b'not a mo', not a JSON/UBJSON object"),
        (b'{"learner": {"a": 1', "the JSON model is truncated: it does not end with '}'"),
        # A key length of -1 as the int64 xgboost writes, at byte 2.
        (b"{L" + (-1).to_bytes(8, "big", signed=True) + b"}", "byte 2: negative UBJSON length -1"),
        # 5 items announced with 2 bytes left (fewer than the file's size: the bound is the rest).
        (
            b"{#U\x05U\x01",
            "byte 4: 5 items cannot fit in the rest of the file: "
            "the UBJSON model is truncated or corrupt",
        ),
        # The 64th array inside the root object opens at byte 4 + 63.
        (_object_with(b"[" * 70), "byte 67: containers nested deeper than 64"),
    ],
    ids=["empty", "not-an-object", "json-cut", "negative-key", "count", "depth"],
)
def test_structure_refused_with_the_exact_message_when_bytes_are_wrong(raw, message):
    with pytest.raises(ModelFormatError) as raised:
        check_model_bytes(raw)
    assert str(raised.value) == message


def test_structure_refused_when_a_typed_container_has_item_type_zero():
    # Byte 0 is no UBJSON type: the items must not be read as if untyped.
    with pytest.raises(ModelFormatError, match=r"unknown UBJSON type '\\x00'"):
        check_model_bytes(_object_with(b"[$\x00#U\x01Z"))


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b"{ }",
        b'{\n  "learner": {"a": 1}\n}\n',  # pretty-printed JSON: whitespace after the brace
        # Typed int64 array with a one-byte count, then one with 76 ("L") int8 items.
        _object_with(b"[$L#U\x02" + bytes(16)),
        _object_with(b"[$i#U\x4c" + bytes(76)),
        _object_with(b"[$L#L" + (3).to_bytes(8, "big") + bytes(24)),
    ],
    ids=["empty-json", "spaced-json", "pretty-json", "int64-u-count", "76-items", "int64-l-count"],
)
def test_structure_accepted_when_a_valid_container_takes_an_unusual_form(raw):
    check_model_bytes(raw)
