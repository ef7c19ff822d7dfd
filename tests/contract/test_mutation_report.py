"""mutation/run.py's report and the committed survivors file it reads (tox -e mutation)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from mutation import run

SURVIVORS = Path(run.SURVIVORS_FILE)
PACKAGE_PREFIXES = ("ml_handler.", "infra.", "client.", "localurl.")
REASON_KINDS = ("equivalent", "harmless", "unreachable")


def test_kill_rate_counts_timeouts_and_segfaults_as_killed_when_reported():
    result = run.Result(
        package="infra",
        counts={"killed": 6, "timeout": 1, "segfault": 1, "survived": 1, "no tests": 1},
        survivors=["infra.x__a__mutmut_1 (survived)", "infra.x__b__mutmut_2 (no tests)"],
        seconds=60.0,
    )
    assert result.tested == 10
    assert result.kill_rate == 80.0


def test_kill_rate_leaves_out_skipped_mutants_when_reported():
    result = run.Result(
        package="client",
        counts={"killed": 3, "skipped": 5, "not checked": 2, "survived": 1},
        survivors=[],
        seconds=1.0,
    )
    assert result.tested == 4
    assert result.kill_rate == 75.0


def test_report_marks_a_survivor_justified_only_when_the_file_names_it(tmp_path, monkeypatch):
    # GIVEN a survivors file that justifies one of two survivors
    survivors = tmp_path / "survivors.toml"
    survivors.write_text(
        '[[survivor]]\nmutant = "infra.config.x__tags__mutmut_1"\nreason = "equivalent: why"\n'
    )
    monkeypatch.setattr(run, "SURVIVORS_FILE", survivors)
    result = run.Result(
        package="infra",
        counts={"killed": 8, "survived": 2},
        survivors=[
            "infra.config.x__tags__mutmut_1 (survived)",
            "infra.config.x__tags__mutmut_10 (survived)",
        ],
        seconds=120.0,
    )
    # WHEN the report is written
    text = run.report([result])
    # THEN the row has the rate and the target, and each survivor its verdict
    assert "| infra | 10 | 8 | 2 | 0 | 0 | 80.0% | 90% | 2.0 min |" in text
    assert "`infra.config.x__tags__mutmut_1 (survived)`: justified: equivalent: why" in text
    assert "`infra.config.x__tags__mutmut_10 (survived)`: **not justified**" in text


def test_survivors_file_names_each_mutant_once_with_a_reason():
    entries = tomllib.loads(SURVIVORS.read_text())["survivor"]
    names = [entry["mutant"] for entry in entries]
    assert len(names) == len(set(names))
    for entry in entries:
        assert set(entry) == {"mutant", "reason"}, entry
        assert entry["mutant"].startswith(PACKAGE_PREFIXES), entry
        assert "__mutmut_" in entry["mutant"], entry
        # A reason starts with its kind, then says why.
        assert entry["reason"].startswith(REASON_KINDS), entry
        assert len(entry["reason"]) >= 40, entry


def test_forgotten_results_stay_listed_as_untested_when_survivors_are_rerun(tmp_path):
    # GIVEN mutmut's record of one file: a killed mutant and a survivor
    meta = tmp_path / run.MUTMUT_STATE / "infra" / "config.py.meta"
    meta.parent.mkdir(parents=True)
    killed, survivor = "infra.config.x__tags__mutmut_1", "infra.config.x__tags__mutmut_2"
    meta.write_text(json.dumps({"exit_code_by_key": {killed: 1, survivor: 0}, "other": 7}))
    # WHEN the survivor's result is forgotten
    run._forget_results(tmp_path, {survivor})
    # THEN it is still a mutant of the file (mutmut lists mutants from these keys), untested
    data = json.loads(meta.read_text())
    assert data["exit_code_by_key"] == {killed: 1, survivor: None}
    assert data["other"] == 7
