"""model_compiler: refusals of what it cannot reproduce, exact float32 reading, JSON formatting."""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
from array import array
from fractions import Fraction
from pathlib import Path

import model_compiler.build
import numpy as np
import orjson
import pytest
import xgboost as xgb
from hypothesis import given
from hypothesis import strategies as st
from ml_handler.batch import FloatRows
from ml_handler.model import ModelLoadError, load_model
from model_compiler.build import compile_model, model_json
from model_compiler.float32 import from_bits, nearest_float32
from model_compiler.forest import UnsupportedModel


def _save(booster: xgb.Booster, path):
    booster.save_model(path)
    return path


def _data(rows: int = 200, width: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.float32)


def _booster(params: dict, *, label: np.ndarray | None = None, **dmatrix: object) -> xgb.Booster:
    x, y = _data()
    dtrain = xgb.DMatrix(x, label=y if label is None else label, feature_names=["a", "b", "c"],
                         **dmatrix)  # fmt: skip
    return xgb.train({"nthread": 1, "max_depth": 2, **params}, dtrain, num_boost_round=2)


def _categorical() -> xgb.Booster:
    x, y = _data()
    x[:, 1] = np.floor(np.abs(x[:, 1]) * 3)
    dtrain = xgb.DMatrix(x, label=y, feature_names=["a", "b", "c"],
                         feature_types=["q", "c", "q"], enable_categorical=True)  # fmt: skip
    params = {"nthread": 1, "tree_method": "hist", "max_cat_to_onehot": 1, "max_depth": 2}
    return xgb.train(params, dtrain, num_boost_round=2)


UNSUPPORTED = {
    "categorical": (_categorical, "categorical"),
    "multi_output": (
        lambda: _booster({}, label=np.stack([_data()[1], _data()[1] * 2], axis=1)),
        "multi-output",
    ),
    "logistic": (lambda: _booster({"objective": "binary:logistic"}), "binary:logistic"),
    "multiclass": (
        lambda: _booster(
            {"objective": "multi:softprob", "num_class": 3},
            label=np.arange(200, dtype=np.float32) % 3,
        ),
        "multi:softprob",
    ),
    "gblinear": (lambda: _booster({"booster": "gblinear"}), "gblinear"),
    "dart": (lambda: _booster({"booster": "dart"}), "dart"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_compile_refused_with_clear_message_for_unsupported_model(tmp_path, name):
    make, words = UNSUPPORTED[name]
    path = _save(make(), tmp_path / "model.json")
    with pytest.raises(UnsupportedModel, match=words):
        compile_model(path, tmp_path / "out")
    assert not (tmp_path / "out" / "model.so").exists()


def test_cli_exits_2_and_names_reason_when_model_unsupported(tmp_path):
    path = _save(_booster({"objective": "binary:logistic"}), tmp_path / "model.ubj")
    result = subprocess.run(
        [sys.executable, "-m", "model_compiler", str(path), "--out", str(tmp_path / "out")],
        cwd=Path(__file__).resolve().parents[2] / "handler",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "binary:logistic" in result.stderr
    assert "cannot compile" in result.stderr
    assert not (tmp_path / "out" / "model.so").exists()


def test_compile_refused_when_model_has_no_feature_names(tmp_path):
    x, y = _data()
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=y), num_boost_round=1)
    with pytest.raises(UnsupportedModel, match="no feature names"):
        compile_model(_save(booster, tmp_path / "m.json"), tmp_path / "out")


def _swap_nodes(tree: dict, a: int, b: int) -> None:
    """Nodes a and b trade places in the arrays, every reference to them follows: the same tree."""
    count = int(tree["tree_param"]["num_nodes"])
    for values in tree.values():
        if isinstance(values, list) and len(values) == count:
            values[a], values[b] = values[b], values[a]
    for column in ("left_children", "right_children", "parents"):
        tree[column] = [{a: b, b: a}.get(node, node) for node in tree[column]]


def test_compiled_follows_child_indices_when_nodes_are_stored_out_of_order(tmp_path):
    """GIVEN a model file whose first tree stores its nodes in another order (nodes 1 and 2, then
    3 and 4, trade places: the same tree, but a right child at left - 1) WHEN it is compiled and
    served THEN it predicts bit for bit what xgboost predicts from that file, missing values
    included: children are read from the indices, never assumed at left + 1."""
    x, _ = _data(rows=400)
    y = 2 * x[:, 0] + x[:, 1] ** 2  # enough structure for a full depth-4 first tree
    x[::5, 1] = np.nan
    dtrain = xgb.DMatrix(x, label=y, feature_names=["a", "b", "c"])
    booster = xgb.train({"nthread": 1, "max_depth": 4}, dtrain, num_boost_round=3)
    model = json.loads(booster.save_raw("json"))
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    assert (tree["left_children"][0], tree["right_children"][0]) == (1, 2)
    _swap_nodes(tree, 1, 2)
    _swap_nodes(tree, 3, 4)
    path = tmp_path / "reordered.json"
    path.write_bytes(json.dumps(model).encode())
    reloaded = xgb.Booster(model_file=str(path))

    served = load_model(path, cache_dir=str(tmp_path / "cache"))
    predicted = served.predict(FloatRows(array("f", x.tobytes()), rows=len(x), width=3))

    expected = reloaded.inplace_predict(x)
    np.testing.assert_array_equal(np.array(predicted, dtype=np.float32), expected)
    # The same tree: xgboost itself predicts the original model's values from the reordered file.
    np.testing.assert_array_equal(expected, booster.inplace_predict(x))


def _ubjson_key(name: bytes) -> bytes:
    """An object key as xgboost writes it: an int64 length, then the bytes (UBJSON draft 12)."""
    return b"L" + struct.pack(">q", len(name)) + name


# {"a": [2^28 float32 items]} with none of the items there: a count 1 GiB past the end.
UBJSON_ARRAY_PAST_ITS_END = b"{" + _ubjson_key(b"a") + b"[$d#L" + struct.pack(">q", 2**28) + b"}"


def test_model_load_error_names_file_when_ubjson_makes_xgboost_crash(tmp_path):
    """GIVEN a UBJSON file whose array count runs past its end (xgboost 3.2 reads there and
    dies of SIGSEGV) WHEN the handler compiles it THEN a ModelLoadError names the file and the
    signal, and this process lives on to say it."""
    path = tmp_path / "model.ubj"
    path.write_bytes(UBJSON_ARRAY_PAST_ITS_END)
    with pytest.raises(ModelLoadError) as raised:
        load_model(path, cache_dir=str(tmp_path / "cache"))
    message = str(raised.value)
    assert f"{path}: not an XGBoost JSON/UBJSON model" in message
    assert "SIGSEGV" in message


def test_model_refused_when_xgboost_does_not_finish_reading_it(bundled_model_path, monkeypatch):
    """GIVEN a reader that takes longer than its bound (here: a bound shorter than xgboost's
    import) WHEN a UBJSON model is read THEN it is refused, naming the bound, instead of hanging."""
    monkeypatch.setattr(model_compiler.build, "CONVERT_TIMEOUT_SECONDS", 0.01)
    with pytest.raises(UnsupportedModel, match=r"did not finish reading it in 0\.01 s"):
        model_json(bundled_model_path.read_bytes())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the file is empty"),
        (b" \n\t", "the file is empty"),
        (b"not a model", "starts with b'not a mo'"),
        # xgboost's own messages, read in the child: a cut model, a non-UBJSON object, and a
        # key that is not UTF-8 (xgboost's message quotes it and fails to decode).
        (lambda bundled: bundled[:100], r"Check failed: .* vs\. 100\)"),
        (b"{garbage", r'Expecting: "L", got: "103 "'),
        (b"{" + _ubjson_key(b"learner\xff"), "'utf-8' codec can't decode byte 0xff"),
    ],
    ids=["empty", "blank", "text", "bundled-cut", "garbage-object", "non-utf8-key"],
)
def test_model_refused_with_the_reason_when_bytes_are_not_a_model(bundled_model_path, raw, message):
    if callable(raw):
        raw = raw(bundled_model_path.read_bytes())
    with pytest.raises(UnsupportedModel, match=r"^not an XGBoost JSON/UBJSON model: ") as raised:
        model_json(raw)
    assert re.search(message, str(raised.value)), raised.value


def test_nearest_float32_avoids_double_rounding_past_a_midpoint():
    # A decimal a hair above the midpoint of two float32s: via a double it lands exactly on the
    # midpoint and ties-to-even picks the lower one; the nearest float32 is the upper one.
    low = 1.0
    high = from_bits(struct.unpack("<I", struct.pack("<f", 1.0))[0] + 1)
    midpoint = (Fraction(low) + Fraction(high)) / 2
    above = midpoint + Fraction(1, 10**30)
    text = "1." + str(above.numerator * 10**45 // above.denominator)[1:]
    assert Fraction(text) > midpoint
    assert struct.unpack("<f", struct.pack("<f", float(text)))[0] == low  # the double path errs
    assert nearest_float32(text) == high


@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_nearest_float32_reads_back_any_float32_from_shortest_text(value):
    text = np.format_float_scientific(np.float32(value), unique=True)
    assert struct.pack("<f", nearest_float32(text)) == struct.pack("<f", value)


@given(value=st.floats(width=32))
def test_json_formatting_matches_orjson_float32_for_any_float32(small_compiled, value):
    """The compiled library writes every float32 (and NaN/inf as null) exactly as orjson
    writes numpy float32: the body reads the same on both runtimes."""
    ours = small_compiled.format_json(array("f", [value, -value]))
    theirs = orjson.dumps(np.array([value, -value], dtype=np.float32),
                          option=orjson.OPT_SERIALIZE_NUMPY).decode()  # fmt: skip
    assert ours == theirs
    if math.isfinite(value):
        assert struct.pack("<f", float(ours[1:-1].split(",")[0])) == struct.pack("<f", value)


def _sweep_bit_patterns() -> np.ndarray:
    """Float32 bit patterns where shortest-text bugs hide: every exponent (subnormals and the
    powers of two, whose lower rounding gap is half the upper) with its edge fractions and a
    random spread, plus uniformly random bit patterns and prediction-like values."""
    rng = np.random.default_rng(2026)
    edges = np.array([0, 1, 2, 3, 0x400000, 0x7FFFFE, 0x7FFFFF], dtype=np.uint32)
    per_exponent = [
        (np.uint32(exponent) << np.uint32(23))
        | np.concatenate([edges, rng.integers(0, 1 << 23, 400, dtype=np.uint32)])
        for exponent in range(255)  # 255 (infinity, NaN) is the hypothesis test's business
    ]
    anywhere = rng.integers(0, 1 << 32, 100_000, dtype=np.uint64).astype(np.uint32)
    predictions = rng.uniform(-20, 20, 100_000).astype(np.float32).view(np.uint32)
    return np.concatenate([*per_exponent, anywhere, predictions])


def test_json_formatting_matches_orjson_over_every_exponent_and_random_bits(small_compiled):
    """Each value reads as orjson writes numpy float32 (Ryu), and reads back bit-exactly."""
    values = _sweep_bit_patterns().view(np.float32)
    values = values[np.isfinite(values)]
    ours = small_compiled.format_json(array("f", values.tobytes()))
    theirs = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    if ours != theirs:
        differ = [
            (hex(int(bits)), a, b)
            for bits, a, b in zip(
                values.view(np.uint32), ours[1:-1].split(","), theirs[1:-1].split(","), strict=True
            )
            if a != b
        ]
        pytest.fail(f"{len(differ)} of {values.size} values differ, e.g. {differ[:5]}")
    read_back = np.array(orjson.loads(ours), dtype=np.float32)
    assert np.array_equal(read_back.view(np.uint32), values.view(np.uint32))
