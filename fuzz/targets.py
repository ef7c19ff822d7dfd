"""The three fuzz targets, each an input of bytes checked against an independent oracle.

- parse: ml_parse_batch (the request fast path) against the full parser (orjson + batch.py): it
  defers, or gives the same rows bit for bit. Byte 0 picks max_rows (1-16); the rest is the body.
- format: ml_format_json against orjson's float32 output (numpy float32 array): the same text.
- predict: ml_predict against xgboost's Booster.inplace_predict: the same float32 bits. Each
  value is 5 bytes: a selector (below 128: a value from the model's split thresholds, one ulp
  either side, NaN, the float32 extremes; else the next 4 bytes as a float32).

A disagreement raises Disagreement; a memory error or undefined behaviour stops the process
through the sanitizers.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import orjson
from ml_handler.batch import to_matrix
from ml_handler.errors import RequestError
from ml_handler.parsing import parse_json

from fuzz import models

if TYPE_CHECKING:
    import xgboost as xgb

    from fuzz.library import FuzzedLibrary

TARGETS = ("parse", "format", "predict")
MAX_PREDICT_ROWS = 64
# The model the targets run on: prefix-sharing feature names, a feature never present (NaN),
# splits on subnormals and extremes. Changing it changes what the corpus means: keep it fixed.
FUZZ_SHAPE = models.ModelShape(
    features=4, max_depth=7, trees=12, missing_feature=3, base_score=0.5, leaf_scale=1.0
)
FUZZ_SEED = 21


class Disagreement(AssertionError):
    """The library and its oracle answered differently for one input."""


@dataclass
class Subject:
    library: FuzzedLibrary
    booster: xgb.Booster | None  # None: predictions are checked by the caller (replay)
    interesting: tuple[float, ...]

    @property
    def names(self) -> list[str]:
        return self.library.feature_names


def fuzz_model() -> bytes:
    return models.generate_model(FUZZ_SHAPE, seed=FUZZ_SEED)


def load_booster(model: bytes) -> xgb.Booster:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(model))
    booster.set_param({"nthread": 1})
    return booster


def make_subject(library: FuzzedLibrary, model: bytes, *, with_oracle: bool = True) -> Subject:
    booster = load_booster(model) if with_oracle else None
    values = {math.nan, *models.EXTREMES}
    for _feature, threshold in models.thresholds_of(model):
        values.update({threshold, models.next_up(threshold), models.next_down(threshold)})
    finite = sorted(v for v in values if v == v and abs(v) <= models.FLOAT32_MAX)
    return Subject(library=library, booster=booster, interesting=(math.nan, *finite))


def check(subject: Subject, target: str, data: bytes) -> None:
    if target == "parse":
        check_parse(subject, data)
    elif target == "format":
        check_format(subject, data)
    elif target == "predict":
        check_predict(subject, data)
    else:
        raise ValueError(f"unknown target {target!r}; one of {TARGETS}")


def check_parse(subject: Subject, data: bytes) -> None:
    max_rows = data[0] % 16 + 1 if data else 1
    body = data[1:]
    rows, values = subject.library.parse(body, max_rows)
    names = subject.names
    try:
        full = to_matrix(
            parse_json(body), feature_names=names, feature_set=frozenset(names), max_rows=max_rows
        )
    except RequestError as exc:
        if rows:
            raise Disagreement(
                f"fast path took {rows} rows; the full parser answers {exc.status} {exc.code}"
            ) from None
        return
    if not rows:
        if full.rows > subject.library.capacity(body, max_rows):
            raise Disagreement(f"{full.rows} rows exceed the fast path's buffer bound")
        return
    if (rows, values) != (full.rows, full.values.tobytes()):
        raise Disagreement(
            f"fast path rows {rows} {values.hex()} != full parser's "
            f"{full.rows} {full.values.tobytes().hex()}"
        )


def check_format(subject: Subject, data: bytes) -> None:
    usable = data[: len(data) - len(data) % 4]
    ours = subject.library.format_json(usable)
    theirs = orjson.dumps(
        np.frombuffer(usable, dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY
    )
    if ours != theirs:
        raise Disagreement(f"ml_format_json {ours!r} != orjson {theirs!r}")


def predict_rows(subject: Subject, data: bytes) -> np.ndarray:
    values = []
    table = subject.interesting
    for start in range(0, len(data) - 4, 5):
        selector = data[start]
        if selector < 128:
            values.append(table[(selector + 128 * data[start + 1]) % len(table)])
        else:
            (value,) = struct.unpack("<f", data[start + 1 : start + 5])
            # Requests never carry an infinity (the parsers refuse them): NaN stands in.
            values.append(value if not math.isinf(value) else math.nan)
    width = len(subject.names)
    count = min(len(values) // width, MAX_PREDICT_ROWS)
    return np.array(values[: count * width], dtype=np.float32).reshape(count, width)


def check_predict(subject: Subject, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The rows and ml_predict's answers, checked against xgboost when the subject has it."""
    rows = predict_rows(subject, data)
    ours = np.frombuffer(subject.library.predict(rows.tobytes()), dtype=np.float32)
    if subject.booster is not None and len(rows):
        check_predictions(subject.booster, rows, ours)
    return rows, ours


def check_predictions(booster: xgb.Booster, rows: np.ndarray, ours: np.ndarray) -> None:
    theirs = booster.inplace_predict(rows).astype(np.float32)
    both_nan = np.isnan(ours) & np.isnan(theirs)
    same = both_nan | (ours.view(np.uint32) == theirs.view(np.uint32))
    if not same.all():
        first = int(np.argmin(same))
        raise Disagreement(
            f"ml_predict {ours[first]!r} != xgboost {theirs[first]!r} for row "
            f"{rows[first].tolist()} ({rows[first].view(np.uint32).tolist()} as bits)"
        )
