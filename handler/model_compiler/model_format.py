"""A cheap structural check of a model file before xgboost parses it.

xgboost 3.2 reads past the end of a truncated UBJSON buffer and the process dies of SIGSEGV: at
init that is a Lambda that never says why. Walking the UBJSON containers (skipping typed arrays
in O(1)) proves every length fits inside the file; it costs a few milliseconds on the bundled
model and needs nothing but the standard library.
"""

from __future__ import annotations

# Sizes of UBJSON's fixed-size value types (draft 12, plus BJData's unsigned u/m/M).
_FIXED_SIZE = {
    ord("Z"): 0,
    ord("N"): 0,
    ord("T"): 0,
    ord("F"): 0,
    ord("i"): 1,
    ord("U"): 1,
    ord("C"): 1,
    ord("I"): 2,
    ord("u"): 2,
    ord("l"): 4,
    ord("m"): 4,
    ord("d"): 4,
    ord("L"): 8,
    ord("M"): 8,
    ord("D"): 8,
}
_SIGNED_LENGTH = {ord("i"): 1, ord("I"): 2, ord("l"): 4, ord("L"): 8}
_UNSIGNED_LENGTH = {ord("U"): 1, ord("u"): 2, ord("m"): 4, ord("M"): 8}
_STRING = {ord("S"), ord("H")}
_OPEN = {ord("{"): ord("}"), ord("["): ord("]")}
_MAX_DEPTH = 64


class ModelFormatError(ValueError):
    """The bytes are not a complete XGBoost JSON/UBJSON model."""


def check_model_bytes(raw: bytes) -> None:
    """Raise ModelFormatError unless `raw` is a structurally complete JSON or UBJSON object."""
    if not raw:
        raise ModelFormatError("the file is empty")
    stripped = raw.strip()
    if stripped[:1] != b"{":
        raise ModelFormatError(f"the file starts with {raw[:8]!r}, not a JSON/UBJSON object")
    second = stripped[1:].lstrip()[:1]
    if second in (b'"', b"}"):
        # JSON: xgboost's own parser reports truncation and syntax errors without crashing.
        if stripped[-1:] != b"}":
            raise ModelFormatError("the JSON model is truncated: it does not end with '}'")
        return
    end = _ubjson_end(raw)
    if end != len(raw):
        raise ModelFormatError(
            f"the UBJSON model has {len(raw) - end} unexpected bytes after its end (byte {end})"
        )


def _ubjson_end(raw: bytes) -> int:
    try:
        end = _walk(raw)
    except IndexError:
        end = len(raw) + 1
    if end > len(raw):
        raise ModelFormatError(
            f"the UBJSON model is truncated or corrupt: its containers need more than the "
            f"file's {len(raw)} bytes"
        )
    return end


def _length(raw: bytes, pos: int) -> tuple[int, int]:
    marker = raw[pos]
    width = _SIGNED_LENGTH.get(marker)
    signed = width is not None
    if width is None:
        width = _UNSIGNED_LENGTH.get(marker)
        if width is None:
            raise ModelFormatError(f"byte {pos}: expected a UBJSON length, got {chr(marker)!r}")
    pos += 1
    length = int.from_bytes(raw[pos : pos + width], "big", signed=signed)
    if length < 0:
        raise ModelFormatError(f"byte {pos}: negative UBJSON length {length}")
    return length, pos + width


def _walk(raw: bytes) -> int:
    """The position just after the root value. One loop with an explicit stack: recursion and
    helper calls per value cost 5x more on the bundled model's ~20,000 values and keys.
    Reading past the end raises IndexError; a skip past the end shows in the result."""
    size = len(raw)
    fixed_size, strings, closers = _FIXED_SIZE, _STRING, _OPEN
    # Frames: [is_object, items left (-1: until the closing marker), closing marker, item type]
    stack: list[list[int]] = []
    pos = 0
    while True:
        if stack:
            frame = stack[-1]
            left = frame[1]
            if left < 0:
                if raw[pos] == frame[2]:
                    pos += 1
                    stack.pop()
                    if not stack:
                        return pos
                    continue
            elif left == 0:
                stack.pop()
                if not stack:
                    return pos
                continue
            else:
                frame[1] = left - 1
            if frame[0]:
                if raw[pos] == 76:  # "L", the int64 length xgboost writes: inlined for speed
                    length = int.from_bytes(raw[pos + 1 : pos + 9], "big", signed=True)
                    if length < 0:  # a step backwards would walk the same bytes forever
                        raise ModelFormatError(f"byte {pos + 1}: negative UBJSON length {length}")
                    pos += 9 + length
                else:
                    length, pos = _length(raw, pos)
                    pos += length
            marker = frame[3]
            if marker < 0:
                marker = raw[pos]
                pos += 1
        else:
            marker = raw[pos]
            pos += 1
        fixed = fixed_size.get(marker)
        if fixed is not None:
            pos += fixed
        elif marker in strings:
            length, pos = _length(raw, pos)
            pos += length
        elif marker in closers:
            if len(stack) >= _MAX_DEPTH:
                raise ModelFormatError(
                    f"byte {pos - 1}: containers nested deeper than {_MAX_DEPTH}"
                )
            is_object = marker == 123  # "{"
            item_type = -1
            if raw[pos] == 36:  # "$": every item has this type
                item_type = raw[pos + 1]
                pos += 2
                if raw[pos] != 35:
                    raise ModelFormatError(f"byte {pos}: a typed UBJSON container needs a count")
            if raw[pos] == 35:  # "#": the item count
                if raw[pos + 1] == 76:
                    count = int.from_bytes(raw[pos + 2 : pos + 10], "big", signed=True)
                    pos += 10
                else:
                    count, pos = _length(raw, pos + 1)
                if count < 0:
                    raise ModelFormatError(f"byte {pos}: negative UBJSON count {count}")
                item_size = fixed_size.get(item_type)
                if item_size is not None and not is_object:
                    # Typed numeric arrays, the trees' bulk: skipped without visiting a value.
                    pos += count * item_size
                elif count > size - pos:
                    # Every item takes at least a byte: such a count cannot fit in the file.
                    raise ModelFormatError(
                        f"byte {pos}: {count} items cannot fit in the rest of the file: "
                        "the UBJSON model is truncated or corrupt"
                    )
                else:
                    stack.append([is_object, count, 0, item_type])
            else:
                stack.append([is_object, -1, closers[marker], item_type])
        else:
            raise ModelFormatError(f"byte {pos - 1}: unknown UBJSON type {chr(marker)!r}")
        if not stack:
            return pos
        if pos > size:
            return pos
