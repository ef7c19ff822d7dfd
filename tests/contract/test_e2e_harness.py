"""The e2e harness itself: a run against AWS that cannot happen fails loudly, never skips."""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from client.errors import AuthError
from tests.e2e.clients import refused_by_url
from tests.e2e.conftest import BODY_TIMEOUT_SECONDS
from tests.e2e.evidence import base_images
from tests.e2e.fresh_image import retag_assembly
from tests.e2e.targets import E2EDeployError, SessionBudget, settle


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
    """GIVEN the e2e layer WHEN pytest-timeout settles each test's alarm THEN the 180 s alarm
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
    assert {s["timeout"] for s in settings.values()} == {180.0}


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _settle(probe: Any, clock: _Clock, *, timeout_seconds: float) -> None:
    settle(
        probe,
        what="assuming",
        timeout_seconds=timeout_seconds,
        poll_seconds=1,
        consecutive=3,
        sleep=clock.sleep,
        clock=clock,
    )


def test_settle_needs_consecutive_successes_not_the_first() -> None:
    """GIVEN STS that says yes, then no (a replica behind), then yes WHEN the harness waits
    THEN it returns only after 3 successes in a row, not on the first."""
    clock = _Clock()
    answers = iter([None, "AccessDenied", None, None, "AccessDenied", None, None, None])
    asked: list[float] = []

    def probe() -> str | None:
        asked.append(clock.now)
        return next(answers)

    _settle(probe, clock, timeout_seconds=60)
    assert len(asked) == 8


def test_settle_gives_up_at_its_deadline_naming_the_last_failure() -> None:
    clock = _Clock()
    with pytest.raises(E2EDeployError, match="last failure: AccessDenied"):
        _settle(lambda: "AccessDenied", clock, timeout_seconds=10)
    assert 10 <= clock.now <= 12


def test_session_budget_keeps_the_reserved_teardown_out_of_every_wait() -> None:
    """GIVEN 60 min, of which two stacks' deletes (15 min each) are reserved WHEN a deploy asks
    for 40 min THEN it gets 30; once nothing is left, nothing new starts."""
    clock = _Clock()
    budget = SessionBudget(seconds=3600, clock=clock)
    budget.reserve(900)
    budget.reserve(900)
    assert budget.cap(2400, "deploying") == 1800
    clock.now = 1800
    with pytest.raises(E2EDeployError, match="budget is spent"):
        budget.cap(60, "deploying another")
    budget.release(900)
    assert budget.cap(2400, "deploying") == 900


def test_refusal_is_retried_through_sts_until_the_url_answers_403() -> None:
    """STS's AccessDenied for a brand-new role (no HTTP status) is retried; the URL's 403 is
    returned; an answer instead of a refusal is an error."""
    clock = _Clock()
    outcomes = iter([AuthError("sts", status=None), AuthError("sts", status=None)])

    def call() -> Any:
        error = next(outcomes, AuthError("url", status=403))
        raise error

    refusal = refused_by_url(call, timeout_seconds=60, clock=clock, sleep=clock.sleep)
    assert refusal.status == 403
    with pytest.raises(AssertionError, match="expected a refusal"):
        refused_by_url(lambda: [1.0], timeout_seconds=1, clock=clock, sleep=clock.sleep)


def test_fresh_image_retags_the_asset_and_the_template_alike(tmp_path: Path) -> None:
    """The image's tag gets the run's nonce in the asset manifest (what the CLI pushes) and in
    the template's ImageUri (what the function runs), and nowhere else."""
    tag = "a" * 64
    uri = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdk-hnb659fds-container-assets:{tag}"
    (tmp_path / "S.assets.json").write_text(
        json.dumps({"dockerImages": {tag: {"destinations": {"d": {"imageTag": tag}}}}})
    )
    template = {"Resources": {"F": {"Properties": {"Code": {"ImageUri": uri}}}}, "H": tag}
    (tmp_path / "S.template.json").write_text(json.dumps(template))

    assert retag_assembly(tmp_path, "1234-1") == {tag: f"{tag}-e2e1234-1"}

    assets = json.loads((tmp_path / "S.assets.json").read_text())
    assert assets["dockerImages"][tag]["destinations"]["d"]["imageTag"] == f"{tag}-e2e1234-1"
    written = json.loads((tmp_path / "S.template.json").read_text())
    assert written["Resources"]["F"]["Properties"]["Code"]["ImageUri"] == f"{uri}-e2e1234-1"
    assert written["H"] == tag


def test_base_images_are_the_dockerfiles_external_froms(project_root: Path) -> None:
    assert base_images(project_root / "handler" / "Dockerfile") == [
        "public.ecr.aws/lambda/python:3.12"
    ]


def test_tox_gives_the_e2e_teardown_minutes_on_interrupt(project_root: Path) -> None:
    """tox's defaults (0 s, 0.3 s, 0.2 s) SIGKILL pytest inside DeleteStack's wait."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(project_root / "tox.ini")
    for env in ("testenv:e2e", "testenv:janitor"):
        grace = sum(
            float(tox[env][key])
            for key in ("suicide_timeout", "interrupt_timeout", "terminate_timeout")
        )
        assert grace >= 120, (env, grace)


def _nightly(project_root: Path) -> dict[str, Any]:
    return yaml.safe_load((project_root / ".github/workflows/nightly-e2e.yml").read_text())


def test_nightly_cleans_up_its_own_run_and_keeps_the_evidence(project_root: Path) -> None:
    """Tagged with the run's id; a last `if: always()` step deletes what carries it, any age,
    beside the age-based janitor; the evidence and cdk.out are uploaded on failure or
    cancellation by an action pinned to a full commit SHA."""
    job = _nightly(project_root)["jobs"]["e2e-aws"]
    assert "github.run_id" in job["env"]["E2E_RUN_ID"]
    steps = job["steps"]
    runs = [(s.get("if"), s.get("run", "")) for s in steps]
    assert ("always()", './dev run -e janitor -- --run-id "$E2E_RUN_ID" --timeout-minutes 10') in (
        runs
    )
    assert any(r.startswith("./dev run -e janitor -- --older-than-hours") for _, r in runs)
    (upload,) = [s for s in steps if "upload-artifact" in s.get("uses", "")]
    assert upload["if"] == "failure() || cancelled()"
    assert re.fullmatch(r"actions/upload-artifact@[0-9a-f]{40}", upload["uses"])
    assert {"e2e-evidence/", "cdk.out.e2e/"} <= set(upload["with"]["path"].split())
    assert job["environment"] == "nightly-e2e"


def test_nightly_worst_case_fits_the_job_timeout(project_root: Path) -> None:
    """Every step after setup has a cap, the session's budget (plus one test body over it)
    fits the e2e step's, and setup's share plus all caps fit the job's timeout."""
    job = _nightly(project_root)["jobs"]["e2e-aws"]
    capped = [s for s in job["steps"] if s.get("run", "").startswith("./dev") or "if" in s]
    assert all("timeout-minutes" in s for s in capped), capped
    (e2e,) = [s for s in capped if "--target aws" in s.get("run", "")]
    session = float(job["env"]["E2E_SESSION_MINUTES"])
    assert session + BODY_TIMEOUT_SECONDS / 60 <= e2e["timeout-minutes"]
    setup_minutes = 12
    assert setup_minutes + sum(s["timeout-minutes"] for s in capped) <= job["timeout-minutes"]


def test_oidc_trust_admits_only_the_nightly_environment(project_root: Path) -> None:
    """The role's documented trust pins `sub` exactly (StringEquals, no wildcard) to the
    protected environment the nightly job runs in: workflow_dispatch on any other branch
    cannot assume it (the environment's branch rule admits the default branch only)."""
    trust = json.loads((project_root / ".github/e2e-role-trust-policy.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(statement["Condition"]) == {"StringEquals"}
    claims = statement["Condition"]["StringEquals"]
    assert claims["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    environment = _nightly(project_root)["jobs"]["e2e-aws"]["environment"]
    sub = claims["token.actions.githubusercontent.com:sub"]
    assert sub.endswith(f":environment:{environment}")
    assert "*" not in sub
