"""The rehearsal of the nightly AWS run, on every pull request: `tests/e2e --target aws` with the
pinned CDK CLI's real `cdk deploy`, against moto posing as AWS (tests/contract/aws_rehearsal.py).

What runs for real here: the AWS target's code (credentials and region from the environment, the
bootstrap check, the exact `cdk deploy` command line, the outputs file, the readiness poll, the
ungranted-role flow, teardown), the CLI's synth, asset publishing (S3 template, ECR image via
the docker stub), change set creation and execution, the e2e tests' signed calls, the janitor.
What only AWS can answer is listed in the README ("Rehearsal of the AWS run").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localurl.iam_policy import Decision, evaluate
from localurl.moto_identity import lookup_access_key
from localurl.moto_service import OPERATOR_KEY_ID
from tests.contract import fake_cdk
from tests.contract.aws_calls import NEEDS_NO_PERMISSION, iam_request
from tests.contract.aws_rehearsal import FAKE_KEY_ID, REGION, FakeAws, fake_aws
from tests.contract.aws_traffic import Call, DeleteFails, Fault
from tests.contract.docker_stub import DOCKER_STUB_AGENT
from tests.e2e.targets import (
    E2E_TAG,
    RUN_TAG,
    STACK_PREFIX,
    AwsTimeouts,
    E2EDeployError,
    TeardownError,
    aws_deployment,
    unique_stack_name,
)

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"
E2E_ROLE_POLICY = ROOT / ".github" / "e2e-role-policy.json"
BOOTSTRAP_ROLE = ":role/cdk-hnb659fds-"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAws]:
    if not CLI.exists():
        # tox runs `npm ci` in commands_pre; a bare `pytest` may not have.
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, timeout=300)
    with fake_aws(tmp_path_factory.mktemp("fake-aws")) as fake:
        yield fake


@pytest.fixture
def aws_env(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    """This process's environment as the nightly job's, with moto as the account: for tests
    that call aws_deployment in-process."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    return aws


def _live_stacks(aws: FakeAws) -> list[str]:
    return [
        s["StackName"]
        for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]


def _deleted_stacks(aws: FakeAws) -> set[str]:
    return {
        s["StackName"]
        for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] == "DELETE_COMPLETE"
    }


def _roles(aws: FakeAws, prefix: str) -> list[str]:
    roles = aws.client("iam").list_roles()["Roles"]
    return [r["RoleName"] for r in roles if r["RoleName"].startswith(prefix)]


def _assert_stayed_on_this_machine(aws: FakeAws) -> None:
    attempts = aws.network_attempts()
    off_machine = [
        a
        for a in attempts
        if a["event"] == "lookup" or a["detail"].get("host") not in (None, "127.0.0.1", "::1")
    ]
    assert off_machine == []
    # The guard ran: the CLI did talk to moto on 127.0.0.1.
    assert any(a["detail"].get("host") == "127.0.0.1" for a in attempts), attempts


@dataclass(frozen=True)
class Night:
    run: subprocess.CompletedProcess[str]
    run_id: str
    stack_name: str
    faults: dict[str, Fault]
    cleanup: subprocess.CompletedProcess[str]
    calls: list[Call]  # every AWS call of the session and its cleanup step

    @property
    def stacks(self) -> list[str]:
        return [self.stack_name + suffix for suffix in ("", "-cfg", "-probe")]


def _e2e_session(
    aws: FakeAws,
    *args: str,
    run_id: str,
    stack_name: str,
    extra_env: dict[str, str] | None = None,
    **popen: Any,
) -> subprocess.Popen[str]:
    env = {
        **aws.environment(),
        "E2E_STACK_NAME": stack_name,
        "E2E_RUN_ID": run_id,
        "E2E_POLL_SECONDS": "0.2",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            *args,
            "--target",
            "aws",
            "--allow-hosts=127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def _cleanup_step(aws: FakeAws, run_id: str) -> subprocess.CompletedProcess[str]:
    """The workflow's last step (`if: always()`): this run's stacks and roles, any age."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.e2e.janitor",
            "--run-id",
            run_id,
            "--timeout-minutes",
            "1",
            "--poll-seconds",
            "0.2",
        ],
        cwd=ROOT,
        env={**aws.environment(), "E2E_POLL_SECONDS": "0.2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def night(aws: FakeAws) -> Night:
    """The whole nightly session (every e2e test, all three stacks, the pinned CLI's real
    deploys with CDK validation on) against moto posing as AWS, with faults a real night meets:
    IAM throttling CreateRole five times in a row (one more than botocore's legacy retries
    absorb), and STS refusing the new role once after it first accepted it. Then the
    workflow's cleanup step."""
    run_id = f"rehearsal-{unique_stack_name().rsplit('-', 1)[1]}"
    stack_name = unique_stack_name()
    faults = {
        "throttled": Fault(service="iam", action="CreateRole", code="Throttling", times=5),
        "denied_once": Fault(
            service="sts",
            action="AssumeRole",
            code="AccessDenied",
            status=403,
            skip=1,
            match=lambda params: str(params.get("RoleArn", "")).endswith("-nogrant"),
        ),
    }
    aws.traffic.faults.extend(faults.values())
    first_call = len(aws.traffic.calls)
    try:
        with ExitStack() as serving:
            for name in [stack_name + s for s in ("", "-cfg", "-probe")]:
                serving.enter_context(aws.serve_when_deployed(name))
            session = _e2e_session(aws, "tests/e2e", run_id=run_id, stack_name=stack_name)
            output, _ = session.communicate(timeout=540)
        run = subprocess.CompletedProcess(session.args, session.returncode, output, "")
    finally:
        for fault in faults.values():
            aws.traffic.faults.remove(fault)
    cleanup = _cleanup_step(aws, run_id)
    return Night(run, run_id, stack_name, faults, cleanup, aws.traffic.calls[first_call:])


def test_whole_night_passes_against_moto_posing_as_aws(aws: FakeAws, night: Night) -> None:
    """GIVEN moto as the account (bootstrapped, fake credentials, docker stubbed) WHEN the whole
    e2e session runs with --target aws THEN the pinned CLI deploys all three stacks tagged with
    the run's id, every e2e test passes against the stacks it deployed, nothing leaves
    127.0.0.1, and neither the session nor the cleanup step leaves a stack or role behind."""
    output = night.run.stdout
    assert night.run.returncode == 0, output[-6000:]
    assert re.search(r"\b(19|[2-9]\d) passed", output), output[-2000:]
    assert "skipped" not in output
    assert "failed" not in output
    assert "CDK_VALIDATION" not in aws.environment()

    cfn = aws.client("cloudformation")
    for name in night.stacks:
        (summary,) = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == name]
        stack = cfn.describe_stacks(StackName=summary["StackId"])["Stacks"][0]
        assert stack["StackStatus"] == "DELETE_COMPLETE"
        tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
        assert tags[E2E_TAG] == "true"
        assert tags[RUN_TAG] == night.run_id
        assert aws.served[name]["outputs"]["EndpointUrl"].startswith("http://127.0.0.1:")
    assert night.cleanup.returncode == 0, night.cleanup.stdout + night.cleanup.stderr
    assert "0 e2e stack(s), 0 e2e role(s) of run" in night.cleanup.stdout
    assert _live_stacks(aws) == []
    assert _roles(aws, night.stack_name) == []
    _assert_stayed_on_this_machine(aws)


def test_night_rides_out_throttling_and_an_access_denied_after_success(night: Night) -> None:
    """Both faults fired, and the night is green: standard-mode retries absorbed the throttled
    CreateRole, and the settle-then-retry logic the AccessDenied that followed STS's first yes
    (today's code fails: AuthError(status=None) instead of the URL's 403)."""
    assert night.faults["throttled"].injected == 5
    assert night.faults["denied_once"].injected == 1
    assert night.run.returncode == 0, night.run.stdout[-4000:]


def test_night_builds_the_image_under_a_new_tag_and_records_its_base(
    aws: FakeAws, night: Night
) -> None:
    """The image is built and pushed under a tag of this run (so ECR never has it yet: the CLI
    cannot skip the build), from a base image pulled fresh whose digest is in the evidence, and
    the function runs that very image."""
    registry = f"{aws.account}.dkr.ecr.{REGION}.amazonaws.com"
    commands = aws.docker_commands()
    verbs = [c["command"] for c in commands]
    assert "unsupported" not in verbs
    pulls = [c for c in commands if c["command"] == "pull"]
    assert pulls
    assert pulls[0]["image"] == "public.ecr.aws/lambda/python:3.12"
    assert verbs.index("pull") < verbs.index("build") < verbs.index("push")
    logins = [c for c in commands if c["command"] == "login"]
    assert {c["registry"] for c in logins} == {registry}
    assert "password" not in json.dumps(logins).replace("password_given", "")
    builds = [c for c in commands if c["command"] == "build"]
    assert {b["platform"] for b in builds} == {"linux/amd64"}
    pushes = [c for c in commands if c["command"] == "push"]
    assert pushes
    assert all(p["tag"].endswith(f"-e2e{night.run_id}") for p in pushes)
    image_uri = aws.served[night.stack_name]["image_uri"]
    assert image_uri.replace(".${AWS::URLSuffix}", ".amazonaws.com") in {p["image"] for p in pushes}
    for push in pushes:
        assert aws.client("ecr").describe_images(
            repositoryName=push["repository"], imageIds=[{"imageTag": push["tag"]}]
        )["imageDetails"]
    digests = json.loads(
        (aws.evidence_dir / night.stack_name / "base-image-digests.json").read_text()
    )
    assert digests == {
        "public.ecr.aws/lambda/python:3.12": [f"public.ecr.aws/lambda/python@{pulls[0]['digest']}"]
    }


def test_night_keeps_the_evidence_of_each_stack(aws: FakeAws, night: Night) -> None:
    """Before teardown, each stack's events and its log group's events were written to the
    evidence folder, and the CLI's output was written there as it ran."""
    for name in night.stacks:
        folder = aws.evidence_dir / name
        assert "deploy" in (folder / "cdk-deploy.log").read_text()
        events = json.loads((folder / "stack-events.json").read_text())
        assert {e["ResourceStatus"] for e in events} >= {"CREATE_COMPLETE"}
        (log_file,) = folder.glob("log-events-*.json")
        assert json.loads(log_file.read_text())["logGroupName"]
        assert not (folder / "evidence-error.txt").exists()


def _who(call: Call) -> str:
    """Which credentials made the call: the nightly's role, a CDK bootstrap role, or not the
    night's (the rehearsal's own inspections, the docker stub standing in for a registry)."""
    if call.access_key == FAKE_KEY_ID:
        return "docker-stub" if DOCKER_STUB_AGENT in call.user_agent else "e2e-role"
    if call.access_key == OPERATOR_KEY_ID:
        return "rehearsal"
    credentials = lookup_access_key(call.access_key)
    arn = credentials.principal_arn if credentials else "unknown"
    return "bootstrap" if BOOTSTRAP_ROLE in arn else arn


def refused_by_policy(
    calls: list[Call], *, policy: dict[str, Any], account: str, region: str
) -> list[str]:
    """The calls `policy` does not allow, by the project's own IAM evaluator; a call this
    check cannot map to an action and resource counts as refused."""
    refused: set[str] = set()
    for call in calls:
        if (call.service, call.action) in NEEDS_NO_PERMISSION:
            continue
        request = iam_request(call, account=account, region=region)
        if request is None:
            refused.add(f"{call.service}:{call.action} (no resource known)")
            continue
        action, resource = request
        decision = evaluate(policies=[policy], action=action, resource=resource, context={})
        if decision is not Decision.ALLOW:
            refused.add(f"{action} on {resource}")
    return sorted(refused)


def test_every_call_of_the_night_is_allowed_by_the_e2e_role_policy(
    aws: FakeAws, night: Night
) -> None:
    """Every AWS call the nightly's own credentials made (harness, CLI, cleanup step) is
    allowed by .github/e2e-role-policy.json; everything the deploy itself does (change sets,
    the template to S3, the image's repository) went through the CDK bootstrap roles."""
    policy = json.loads(E2E_ROLE_POLICY.read_text())
    by_who: dict[str, list[Call]] = {}
    for call in night.calls:
        by_who.setdefault(_who(call), []).append(call)

    assert set(by_who) <= {"e2e-role", "bootstrap", "rehearsal", "docker-stub"}, set(by_who)
    own = by_who["e2e-role"]
    assert refused_by_policy(own, policy=policy, account=aws.account, region=REGION) == []
    # The check saw what matters: the teardown, the role test, the evidence, the cleanup step.
    own_actions = {f"{c.service}:{c.action}" for c in own}
    assert own_actions >= {
        "cloudformation:DeleteStack",
        "cloudformation:ListStackResources",
        "cloudformation:ListStacks",
        "iam:CreateRole",
        "iam:DeleteRole",
        "logs:FilterLogEvents",
        "sts:AssumeRole",
    }, own_actions
    deploying = {
        ("cloudformation", "CreateChangeSet"),
        ("cloudformation", "ExecuteChangeSet"),
        ("ecr", "DescribeImages"),
    }
    deploy_calls = [c for c in night.calls if (c.service, c.action) in deploying]
    assert {(c.service, c.action) for c in deploy_calls} == deploying
    assert {_who(c) for c in deploy_calls} == {"bootstrap"}
    uploads = [c for c in night.calls if c.service == "s3" and c.action.startswith("PUT ")]
    assert uploads
    assert {_who(c) for c in uploads} == {"bootstrap"}


def test_policy_check_refuses_a_call_the_policy_does_not_allow() -> None:
    """The check can fail: a call outside the policy, or one it cannot map, is refused."""
    policy = json.loads(E2E_ROLE_POLICY.read_text())

    def call(service: str, action: str, **params: str) -> Call:
        return Call(
            service=service,
            action=action,
            params=params,
            access_key=FAKE_KEY_ID,
            path="/",
            protocol="query",
        )

    calls = [
        call("iam", "DeleteRole", RoleName="ml-e2e-1-nogrant"),
        call("iam", "DeleteRole", RoleName="production-role"),
        call("cloudformation", "DeleteStack", StackName="CdkMlLambda"),
        call("lambda", "GET /2015-03-31/functions/x"),
    ]
    assert refused_by_policy(calls, policy=policy, account="123456789012", region=REGION) == [
        "cloudformation:DeleteStack on "
        f"arn:aws:cloudformation:{REGION}:123456789012:stack/CdkMlLambda/*",
        "iam:DeleteRole on arn:aws:iam::123456789012:role/production-role",
        "lambda:GET /2015-03-31/functions/x (no resource known)",
    ]


def test_interrupted_deploy_is_torn_down_by_the_harness_itself(aws: FakeAws) -> None:
    """GIVEN a deploy in progress (its stack created, the deploy command still waiting) WHEN
    the run is cancelled the way tox does it (SIGINT, then SIGTERM 0.3 s later, to the whole
    process group, while DeleteStack is under way) THEN the harness's own teardown deletes
    the stack (not only the cleanup step
    after it), and nothing is left. The deploy is fake_cdk's: the CLI is not under test here."""
    run_id = f"rehearsal-int-{unique_stack_name().rsplit('-', 1)[1]}"
    stack_name = unique_stack_name()
    created = aws.traffic.hold("cloudformation", "CreateStack", seconds=0.5)
    # Teardown takes its time (minutes on AWS): the SIGTERM arrives while it is under way.
    aws.traffic.hold("cloudformation", "DeleteStack", seconds=1.0)
    try:
        session = _e2e_session(
            aws,
            "tests/e2e/test_deployed_model.py",
            run_id=run_id,
            stack_name=stack_name,
            start_new_session=True,
            extra_env={"E2E_CDK_CLI": str(aws.fake_cdk()), "FAKE_CDK_HANG": "1"},
        )
        assert created.wait(timeout=120), "the deploy never created its stack"
        time.sleep(1.0)  # the deploy command is now waiting, as on CloudFormation
        os.killpg(session.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(session.pid, signal.SIGTERM)
        output, _ = session.communicate(timeout=120)
    finally:
        aws.traffic.holds.clear()
    deleted_by_harness = stack_name in _deleted_stacks(aws)
    cleanup = _cleanup_step(aws, run_id)

    assert session.returncode != 0, output[-3000:]
    assert "KeyboardInterrupt: SIGINT" in output, output[-3000:]
    assert deleted_by_harness, output[-3000:]
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert _live_stacks(aws) == []
    assert _roles(aws, stack_name) == []


def test_delete_failed_is_retried_retaining_and_reported_by_the_cleanup_step(
    aws: FakeAws,
) -> None:
    """GIVEN a run's stack whose deletion ends in DELETE_FAILED (its log group) WHEN the cleanup
    step deletes the run's resources THEN it retries with that resource retained, the stack is
    gone (the next night starts clean), and the step is red, naming what was retained."""
    run_id = f"rehearsal-df-{unique_stack_name().rsplit('-', 1)[1]}"
    name = f"{unique_stack_name()}-df"
    template = {"Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup"}}}
    aws.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Tags=[{"Key": E2E_TAG, "Value": "true"}, {"Key": RUN_TAG, "Value": run_id}],
    )
    failure = DeleteFails(stack_name=name)
    aws.traffic.delete_failures.append(failure)
    try:
        cleanup = _cleanup_step(aws, run_id)
    finally:
        aws.traffic.delete_failures.remove(failure)

    assert failure.retained == ["LogGroup"]
    assert cleanup.returncode == 1
    assert "RETAINED" in cleanup.stderr, cleanup.stderr
    assert "LogGroup" in cleanup.stderr, cleanup.stderr
    assert name in _deleted_stacks(aws)
    assert _live_stacks(aws) == []


def test_janitor_cli_deletes_what_killed_runs_left_in_the_account(aws: FakeAws) -> None:
    """GIVEN what killed runs leave (a tagged stack whose change set was never executed, a
    tagged -nogrant role) and two things that are not the janitor's (an untagged -nogrant role,
    another app's stack) WHEN the nightly's janitor command runs THEN it deletes exactly the
    first two and exits 0."""
    cfn = aws.client("cloudformation")
    iam = aws.client("iam")
    killed = f"{STACK_PREFIX}killed-{dt.datetime.now(dt.UTC):%H%M%S%f}"
    template = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    cfn.create_change_set(
        StackName=killed,
        ChangeSetName="cdk-deploy-change-set",
        ChangeSetType="CREATE",
        TemplateBody=template,
        Tags=[{"Key": E2E_TAG, "Value": "true"}],
    )
    cfn.create_stack(StackName=f"other-app-{killed}", TemplateBody=template)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(
        RoleName=f"{killed}-nogrant",
        AssumeRolePolicyDocument=trust,
        Tags=[{"Key": E2E_TAG, "Value": "true"}],
    )
    iam.create_role(RoleName=f"{killed}x-nogrant", AssumeRolePolicyDocument=trust)
    assert cfn.describe_stacks(StackName=killed)["Stacks"][0]["StackStatus"] == (
        "REVIEW_IN_PROGRESS"
    )

    run = subprocess.run(
        [sys.executable, "-m", "tests.e2e.janitor", "--older-than-hours", "0"],
        cwd=ROOT,
        env=aws.environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert killed in _deleted_stacks(aws)
    assert _live_stacks(aws) == [f"other-app-{killed}"]
    assert _roles(aws, killed) == [f"{killed}x-nogrant"]
    cfn.delete_stack(StackName=f"other-app-{killed}")
    iam.delete_role(RoleName=f"{killed}x-nogrant")


def test_deploy_that_fails_halfway_is_torn_down_and_the_run_is_red(aws_env: FakeAws) -> None:
    """GIVEN a deploy that CloudFormation completes but whose URL never answers WHEN
    aws_deployment runs THEN no test body runs, the readiness failure reaches the caller, and
    the deployed stack is deleted: nothing of the run is left. The deploy is fake_cdk's."""
    stack_name = unique_stack_name()
    entered = False

    with (
        pytest.raises(E2EDeployError, match="did not answer 200"),
        aws_deployment(
            stack_name,
            keep_stack=False,
            timeouts=_fast(ready=3),
            evidence_dir=aws_env.evidence_dir,
            run_deploy=fake_cdk.runner(),  # the readiness failure is the subject, not the CLI
        ),
    ):
        entered = True

    assert not entered
    assert stack_name in _deleted_stacks(aws_env)
    assert _live_stacks(aws_env) == []
    # The failed run's folder (its assembly, with the CLI) is kept for the workflow's artifact.
    assert (ROOT / "cdk.out.e2e" / stack_name / "outputs.json").exists()
    shutil.rmtree(ROOT / "cdk.out.e2e" / stack_name)


def test_cleanup_that_raises_does_not_skip_stack_deletion(aws_env: FakeAws) -> None:
    """GIVEN a deployed stack and an ungranted role that IAM refuses to delete (AccessDenied)
    WHEN the run ends THEN the failing DeleteRole is reported (red), the stack is deleted
    anyway, and the cleanup step (by run id) removes the role once IAM lets it."""
    stack_name = unique_stack_name()
    run_id = f"rehearsal-cr-{stack_name.rsplit('-', 1)[1]}"
    refused = Fault(service="iam", action="DeleteRole", code="AccessDenied", status=403, times=9)

    with (  # noqa: PT012 - the error comes from the teardown, after the body
        aws_env.serve_when_deployed(stack_name),
        pytest.raises(TeardownError, match="cleanup"),
        aws_deployment(
            stack_name,
            keep_stack=False,
            run_id=run_id,
            timeouts=_fast(),
            evidence_dir=aws_env.evidence_dir,
        ) as deployment,
    ):
        deployment.create_ungranted_role()
        aws_env.traffic.faults.append(refused)
    aws_env.traffic.faults.remove(refused)

    assert refused.injected == 1
    assert stack_name in _deleted_stacks(aws_env)
    assert _live_stacks(aws_env) == []
    assert _roles(aws_env, stack_name) == [f"{stack_name}-nogrant"]
    assert _cleanup_step(aws_env, run_id).returncode == 0
    assert _roles(aws_env, stack_name) == []


def _fast(*, ready: float = 60) -> AwsTimeouts:
    return AwsTimeouts(
        deploy_seconds=300, ready_seconds=ready, role_propagation_seconds=10, poll_seconds=0.5
    )
