"""The fuzz harness's short run (fuzz/): the seed corpus and fixed-seed inputs through the
library built with ASan + UBSan, every buffer at its exact size, each answer checked against its
oracle (orjson + batch.py, orjson's float32 output, xgboost). The long coverage-guided run is
`tox -e fuzz` and the scheduled workflow fuzz.yml."""

from __future__ import annotations

from fuzz.replay import replay

# Per target: ~4 s of the gate in all (the sanitized build is cached by content).
FIXED_SEED_INPUTS = 1500


def test_fuzz_replay_finds_no_disagreement_and_no_sanitizer_report():
    result = replay(count=FIXED_SEED_INPUTS, seed=0)
    assert not result.sanitizer_report, result.sanitizer_report
    assert result.disagreements == []
    # Every target ran: its corpus and the generated inputs.
    assert result.inputs >= 3 * FIXED_SEED_INPUTS, result.output
