"""The compiled model against xgboost, bit for bit: Booster.inplace_predict (float32) is the
oracle, over generated batches with missing values, extreme magnitudes and split thresholds."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from array import array
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given
from hypothesis import strategies as st
from ml_handler.batch import FloatRows
from ml_handler.compiled_model import CompiledModel, load_compiled
from model_compiler.build import SOURCE_NAME, compile_model, model_json
from model_compiler.codegen import generate_c
from model_compiler.forest import parse_model_json

from tests.session_artifacts import shared_artifact
from tests.unit.compiled_cases import CASES

FLOAT32_MAX = float(np.finfo(np.float32).max)
TINY = float(np.finfo(np.float32).smallest_subnormal)
EXTREMES = [FLOAT32_MAX, -FLOAT32_MAX, TINY, -TINY, 0.0, -0.0, 1e-30, -1e30, 3e38, -3e38]


def float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def next_float32(value: float, toward: float) -> float:
    return float(np.nextafter(np.float32(value), np.float32(toward)))


class Case:
    def __init__(self, booster: xgb.Booster, model: CompiledModel) -> None:
        self.booster = booster
        self.model = model
        self.width = len(model.feature_names)
        dump = json.loads(booster.save_raw("json"))
        self.thresholds = sorted(
            {
                float32(float(condition))
                for tree in dump["learner"]["gradient_booster"]["model"]["trees"]
                for condition, left in zip(
                    tree["split_conditions"], tree["left_children"], strict=True
                )
                if left != -1
            }
        )


def case_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """The case's model.ubj and its compiled/ library: trained and compiled once per session."""

    def train_and_compile(folder: Path) -> None:
        CASES[name]().save_model(folder / "model.ubj")
        compile_model(folder / "model.ubj", folder / "compiled")

    return shared_artifact(tmp_path_factory, f"case-{name}", train_and_compile)


@pytest.fixture(scope="session", params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    folder = case_folder(tmp_path_factory, request.param)
    booster = xgb.Booster(model_file=str(folder / "model.ubj"))
    booster.set_param({"nthread": 1})
    return Case(booster, load_compiled(folder / "compiled" / "model.so"))


def bits(values: np.ndarray | array) -> list[int]:
    return list(np.frombuffer(bytes(values), dtype=np.uint32))


def assert_bit_identical(case: Case, matrix: np.ndarray) -> None:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    expected = case.booster.inplace_predict(matrix)
    rows = FloatRows(array("f", matrix.tobytes()), rows=len(matrix), width=case.width)
    compiled = case.model.predict(rows)
    assert bits(compiled) == bits(np.asarray(expected, dtype=np.float32))


@st.composite
def batches(draw: st.DrawFn, case: Case) -> np.ndarray:
    near_threshold = st.sampled_from(case.thresholds).flatmap(
        lambda t: st.sampled_from([t, next_float32(t, -math.inf), next_float32(t, math.inf)])
    )
    cell = st.one_of(
        st.just(math.nan),
        st.floats(width=32, allow_nan=False, allow_infinity=False),
        st.floats(min_value=-100, max_value=100, width=32),
        st.sampled_from(EXTREMES),
        near_threshold,
    )
    # Rows are predicted independently: a few dozen per batch reach every path, and drawing
    # 150 x width cells made example generation most of this test's time.
    rows = draw(st.integers(1, 32))
    values = draw(st.lists(cell, min_size=rows * case.width, max_size=rows * case.width))
    matrix = np.array(values, dtype=np.float32).reshape(rows, case.width)
    if draw(st.booleans()):
        matrix[draw(st.integers(0, rows - 1))] = np.nan  # a row with every feature missing
    return matrix


@given(data=st.data())
def test_compiled_predictions_bit_identical_to_xgboost_for_generated_batches(case, data):
    """For any batch (NaN, extremes, values at and next to every split threshold, rows with
    every feature missing), the compiled model's float32 predictions have the same bits as
    Booster.inplace_predict's."""
    assert_bit_identical(case, data.draw(batches(case)))


def test_compiled_predictions_bit_identical_when_every_feature_missing(case):
    assert_bit_identical(case, np.full((3, case.width), np.nan, dtype=np.float32))


def test_compiled_predictions_bit_identical_at_every_threshold(case):
    # Each threshold and its float32 neighbours in every column: both sides of every split.
    values = [
        value
        for threshold in case.thresholds
        for value in (
            threshold,
            next_float32(threshold, -math.inf),
            next_float32(threshold, math.inf),
        )
    ]
    matrix = np.array([[value] * case.width for value in values], dtype=np.float32)
    assert_bit_identical(case, matrix)


def test_compiled_predictions_bit_identical_on_training_like_data(case):
    rng = np.random.default_rng(99)
    matrix = rng.normal(scale=20, size=(5000, case.width)).astype(np.float32)
    matrix[rng.random(size=matrix.shape) < 0.2] = np.nan
    assert_bit_identical(case, matrix)


def test_small_model_takes_both_default_directions(tmp_path):
    # Guards the proofs above: the models must exercise missing values going left and right.
    booster = CASES["small_model"]()
    dump = json.loads(booster.save_raw("json"))
    flags = {
        flag
        for tree in dump["learner"]["gradient_booster"]["model"]["trees"]
        for flag, left in zip(tree["default_left"], tree["left_children"], strict=True)
        if left != -1
    }
    assert flags == {0, 1}


def test_compiled_from_json_file_equals_compiled_from_ubj(tmp_path, tmp_path_factory):
    # The library is gcc's function of the generated C alone: comparing the C is the proof, and
    # spares compiling 600 trees a second time.
    folder = case_folder(tmp_path_factory, "many_trees")
    booster = xgb.Booster(model_file=str(folder / "model.ubj"))
    raw_json = booster.save_raw("json")
    text, version = model_json(bytes(raw_json))
    forest = parse_model_json(text)
    from_json = generate_c(
        forest,
        model_sha256=hashlib.sha256(raw_json).hexdigest(),
        xgboost_version=version or forest.xgboost_version,
    )
    from_ubj = (folder / "compiled" / SOURCE_NAME).read_text()
    # Same trees and thresholds: the generated C differs only in the model hash it records.
    strip = [
        "\n".join(line for line in source.splitlines() if "model_sha256" not in line
                  and "Generated by" not in line)
        for source in (from_json, from_ubj)
    ]  # fmt: skip
    assert strip[0] == strip[1]


def test_compiled_metadata_carries_schema_and_model_hash(tmp_path):
    booster = CASES["one_feature"]()
    path = tmp_path / "model.ubj"
    booster.save_model(path)
    model = load_compiled(compile_model(path, tmp_path / "out").library)
    assert model.feature_names == tuple(booster.feature_names)
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.metadata(max_rows=5)["xgboost_version"] == xgb.__version__
