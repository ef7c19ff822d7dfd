"""Fixed-seed inputs for the gate's replay: the corpus mutated by a seeded random.Random, with
the spellings that matter to a JSON number reader and a float32 formatter. Deterministic: the
same seed gives the same inputs on every machine (no coverage feedback; that is atheris's job).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

from fuzz import models

# Fragments a mutation may insert: number spellings at the edges of every conversion path
# (exact, margin, strtod, overflow, underflow), keys, structure, and bytes outside the subset.
SNIPPETS = (
    b"3.4028236e38",
    b"-3.40282357e+38",
    b"3.4028235677973366e38",
    b"340282356779733661637539395458142568448",
    b"3.4028235e38",
    b"1e39",
    b"1e-45",
    b"7.006492321624085e-46",
    b"1.4012984643248171e-45",
    b"1.0000000596046448",
    b"1.0000000596046449",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"12345678901234567890123",
    b"0.000000000000000000000000000000000000000000001",
    b"1e22",
    b"1e23",
    b"4.4e-44",
    b"-0",
    b"-0.0",
    b"0e999999",
    b"1e400",
    b"1E+2",
    b"null",
    b"true",
    b'"x"',
    b'"xy"',
    b'"y0"',
    b'"xy1"',
    b'"x\\u0079"',
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b" ",
    b"\t\r\n",
    b"\x00",
    b"\xc3\xa9",
    b"01",
    b".5",
    b"1.",
    b"-",
    b"+1",
    b"NaN",
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(buffer))
        kind = rng.randrange(6)
        if kind == 0:
            buffer[at:at] = rng.choice(SNIPPETS)
        elif kind == 1:
            snippet = rng.choice(SNIPPETS)
            buffer[at : at + len(snippet)] = snippet
        elif kind == 2:
            del buffer[at : at + rng.randint(1, 8)]
        elif kind == 3 and buffer:
            buffer[min(at, len(buffer) - 1)] = rng.randrange(256)
        elif kind == 4:  # a copy of a piece elsewhere: more rows, repeated keys
            start = rng.randint(0, len(buffer))
            buffer[at:at] = buffer[start : start + rng.randint(1, 40)]
        else:  # a random number in place of a digit run
            buffer[at:at] = _number(rng)
    return bytes(buffer)


def _number(rng: random.Random) -> bytes:
    whole = str(rng.choice([0, rng.randint(1, 9), rng.getrandbits(rng.randint(1, 70))]))
    text = ("-" if rng.random() < 0.3 else "") + whole
    if rng.random() < 0.6:
        text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    if rng.random() < 0.5:
        text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 330))
    return text.encode()


def float32_values(rng: random.Random, count: int) -> bytes:
    """Float32s a formatter finds hard: random bits, subnormals, near powers of ten and two,
    integers, NaN and infinities."""
    values = []
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            values.append(struct.pack("<I", rng.getrandbits(32)))
        elif kind == 1:
            values.append(struct.pack("<I", rng.randint(0, 0x00FFFFFF) | rng.choice([0, 1 << 31])))
        elif kind == 2:
            near = models.float32(10.0 ** rng.randint(-45, 38))
            step = rng.randint(-3, 3)
            bits = max(0, min(0x7F7FFFFF, models.bits_of(near) + step))
            values.append(struct.pack("<I", bits))
        elif kind == 3:
            values.append(struct.pack("<f", float(rng.randint(-(2**24), 2**24))))
        else:
            values.append(struct.pack("<I", rng.choice([0x7FC00000, 0x7F800000, 0xFF800000, 1])))
    return b"".join(values)


def inputs(target: str, corpus: list[bytes], *, seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(f"{target}:{seed}")
    for _ in range(count):
        if target == "parse":
            data = mutate(rng.choice(corpus), rng) if corpus else _number(rng)
            yield data
        elif target == "format":
            yield float32_values(rng, rng.randint(0, 24))
        else:
            yield bytes(rng.getrandbits(8) for _ in range(5 * 4 * rng.randint(1, 16)))
