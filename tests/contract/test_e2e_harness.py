"""The e2e harness itself: a run against AWS that cannot happen fails loudly, never skips."""

from __future__ import annotations

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
