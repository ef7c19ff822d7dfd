"""The e2e harness itself: a run against AWS that cannot happen fails loudly, never skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run_pytest(
    project_root: Path, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        {
            # No credentials from anywhere: files, environment, or instance metadata.
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": "eu-west-1",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project_root,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_aws_target_without_credentials_fails_with_a_clear_message(
    project_root: Path, tmp_path: Path
) -> None:
    """GIVEN no AWS credentials WHEN the e2e layer is asked to run against AWS THEN the run is
    red (not skipped, which would look green) and says what is missing."""
    result = _run_pytest(
        project_root,
        tmp_path,
        "tests/e2e/test_deployed_system.py::test_unsigned_request_is_refused_with_403",
        "--target",
        "aws",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "needs AWS credentials" in output
    assert "skipped" not in output
    assert "1 error" in output


def test_keep_stack_is_refused_in_ci(project_root: Path, tmp_path: Path) -> None:
    result = _run_pytest(project_root, tmp_path, "--co", "--keep-stack", "tests/e2e", CI="true")
    assert result.returncode != 0
    assert "--keep-stack is for debugging" in result.stdout + result.stderr


_TIMEOUT_PROBE = """
import json, os
import pytest_timeout

def pytest_collection_finish(session):
    out = {}
    for item in session.items:
        settings = pytest_timeout._get_item_settings(item)
        out[item.nodeid] = {"timeout": settings.timeout, "func_only": settings.func_only}
    with open(os.environ["TIMEOUT_PROBE_OUT"], "w") as f:
        json.dump(out, f)
"""


def test_e2e_timeout_times_test_bodies_only_when_collected(
    project_root: Path, tmp_path: Path
) -> None:
    """GIVEN the e2e layer WHEN pytest-timeout settles each test's alarm THEN the 600 s alarm
    covers the test body only: the session fixture (a whole `cdk deploy` on AWS, bounded by its
    own caps) must never be killed mid-deploy by it."""
    (tmp_path / "timeout_probe_plugin.py").write_text(_TIMEOUT_PROBE)
    out = tmp_path / "settings.json"
    result = _run_pytest(
        project_root,
        tmp_path,
        "tests/e2e",
        "--collect-only",
        "-p",
        "timeout_probe_plugin",
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        TIMEOUT_PROBE_OUT=str(out),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    settings = json.loads(out.read_text())
    assert len(settings) >= 8
    assert {nodeid: s for nodeid, s in settings.items() if s["func_only"] is not True} == {}
    assert {s["timeout"] for s in settings.values()} == {600.0}
