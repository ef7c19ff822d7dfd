"""Exact float32 values from the JSON model's decimal text, and C literals that hold them exactly.

xgboost parses the model's numbers straight to float32. Going through a double first could round
twice (decimal -> double lands on a float32 midpoint -> ties-to-even picks the wrong neighbour),
so the nearest float32 is decided here with exact rational arithmetic.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

_FLOAT32_MAX_BITS = 0x7F7FFFFF


def bits_of(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def from_bits(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _neighbours(bits: int) -> list[int]:
    # Adjacent float32 values of the same sign (bit patterns are monotonic within a sign).
    magnitude = bits & 0x7FFFFFFF
    sign = bits & 0x80000000
    around = [magnitude - 1, magnitude, magnitude + 1]
    return [sign | m for m in around if 0 <= m <= _FLOAT32_MAX_BITS]


def nearest_float32(text: str | int) -> float:
    """The float32 nearest to the decimal `text` (ties to even), as xgboost's parser reads it."""
    exact = Fraction(text) if isinstance(text, int) else Fraction(str(text).strip())
    approx = float(exact)
    if math.isinf(approx) or abs(approx) > from_bits(_FLOAT32_MAX_BITS) * 2:
        raise ValueError(f"{text!r} is outside the float32 range")
    try:
        first_guess = bits_of(approx)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the float32 range") from None
    best: tuple[Fraction, int, int] | None = None
    for candidate in _neighbours(first_guess):
        distance = abs(Fraction(from_bits(candidate)) - exact)
        # Ties go to the even mantissa, as in IEEE 754 round-to-nearest-even.
        key = (distance, candidate & 1, candidate)
        if best is None or key < best:
            best = key
    assert best is not None
    value = from_bits(best[2])
    if math.isinf(value):
        raise ValueError(f"{text!r} is outside the float32 range")
    if value == 0 and str(text).strip().startswith("-"):
        return -0.0
    return value


def c_literal(value: float) -> str:
    """A C float literal holding exactly this float32 (hexadecimal: no decimal rounding)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite float32")
    if value == 0:
        return "-0.0f" if math.copysign(1.0, value) < 0 else "0.0f"
    return f"{value.hex()}f"
