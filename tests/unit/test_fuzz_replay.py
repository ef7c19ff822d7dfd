"""The fuzz harness's short run (fuzz/): the seed corpus and fixed-seed inputs through the
library built with ASan + UBSan, every buffer at its exact size, each answer checked against its
oracle (orjson + batch.py, orjson's float32 output, xgboost). The long coverage-guided run is
`tox -e fuzz` and the scheduled workflow fuzz.yml."""

from __future__ import annotations

import pytest

from fuzz.compiler_check import check_model
from fuzz.models import ModelShape
from fuzz.replay import replay

# Per target: ~4 s of the gate in all (the sanitized build is cached by content).
FIXED_SEED_INPUTS = 1500


def test_fuzz_replay_finds_no_disagreement_and_no_sanitizer_report():
    result = replay(count=FIXED_SEED_INPUTS, seed=0)
    assert not result.sanitizer_report, result.sanitizer_report
    assert result.disagreements == []
    # Every target ran: its corpus and the generated inputs.
    assert result.inputs >= 3 * FIXED_SEED_INPUTS, result.output


# Two generated models (fuzz.models): subnormal and extreme thresholds, a feature that is always
# missing, leaves and base scores far from zero. The scheduled run compiles many more.
@pytest.mark.parametrize(
    "shape",
    [
        ModelShape(
            features=4, max_depth=10, trees=3, missing_feature=2, base_score=-1e30, leaf_scale=1e30
        ),
        ModelShape(
            features=2, max_depth=2, trees=120, missing_feature=1, base_score=1e-40,
            leaf_scale=1e-39,
        ),
    ],
    ids=["deep-extreme", "many-subnormal"],
)  # fmt: skip
def test_compiled_generated_model_matches_xgboost_bit_for_bit_on_split_thresholds(shape, tmp_path):
    assert check_model(shape, seed=7, rows=2000, work_dir=tmp_path) == 2000
