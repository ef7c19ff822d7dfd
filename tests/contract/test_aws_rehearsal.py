"""The rehearsal of the nightly AWS run, on every pull request: `tests/e2e --target aws` with the
pinned CDK CLI's real `cdk deploy`, against moto posing as AWS (tests/contract/aws_rehearsal.py).

What runs for real here: the AWS target's code (credentials and region from the environment, the
bootstrap check, the exact `cdk deploy` command line, the outputs file, the readiness poll, the
ungranted-role flow, teardown), the CLI's synth, asset publishing (S3 template, ECR image via
the docker stub), change set creation and execution, the e2e tests' signed calls, the janitor.
What only AWS can answer is listed in docs/ci.md ("Where the rehearsal stops").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.aws_rehearsal import REGION, FakeAws, fake_aws
from tests.e2e.targets import (
    E2E_TAG,
    STACK_PREFIX,
    AwsTimeouts,
    E2EDeployError,
    TeardownError,
    aws_deployment,
    unique_stack_name,
)

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"


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


def test_aws_target_runs_end_to_end_against_moto_posing_as_aws(aws: FakeAws) -> None:
    """GIVEN moto as the account (bootstrapped, fake credentials, docker stubbed) WHEN the e2e
    tests run with --target aws THEN the pinned CLI deploys the ml-e2e stack with its tags,
    every e2e test passes against the stack it deployed, the image it published is the one the
    function runs, nothing leaves 127.0.0.1, and teardown leaves no stack and no role."""
    stack_name = unique_stack_name()
    env = {**aws.environment(), "E2E_STACK_NAME": stack_name}
    with aws.serve_when_deployed(stack_name):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                "-rA",
                "tests/e2e/test_deployed_system.py",
                "--target",
                "aws",
                "--allow-hosts=127.0.0.1",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert " passed" in run.stdout
    assert "skipped" not in run.stdout
    assert "failed" not in run.stdout

    # The CLI deployed the stack the harness named, with the e2e tags (-c key=value), and the
    # harness deleted it and the role it created.
    cfn = aws.client("cloudformation")
    (summary,) = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == stack_name]
    stack = cfn.describe_stacks(StackName=summary["StackId"])["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}[E2E_TAG] == "true"
    assert _live_stacks(aws) == []
    assert _roles(aws, stack_name) == []
    served = aws.served[stack_name]
    assert served["outputs"]["EndpointUrl"].startswith("http://127.0.0.1:")

    # The image asset went through the docker stub: ECR login to the account's registry, a
    # build for the function's platform, a push of the very URI the function was created with.
    registry = f"{aws.account}.dkr.ecr.{REGION}.amazonaws.com"
    commands = aws.docker_commands()
    verbs = [c["command"] for c in commands]
    assert "unsupported" not in verbs
    assert verbs.index("login") < verbs.index("build") < verbs.index("push")
    (login,) = [c for c in commands if c["command"] == "login"]
    assert login["registry"] == registry
    assert "password" not in json.dumps(login).replace("password_given", "")
    (build,) = [c for c in commands if c["command"] == "build"]
    assert build["platform"] == "linux/amd64"
    (push,) = [c for c in commands if c["command"] == "push"]
    assert push["image"] == served["image_uri"].replace(".${AWS::URLSuffix}", ".amazonaws.com")
    images = aws.client("ecr").describe_images(
        repositoryName=push["repository"], imageIds=[{"imageTag": push["tag"]}]
    )["imageDetails"]
    assert len(images) == 1
    _assert_stayed_on_this_machine(aws)


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
    """GIVEN a deploy that CloudFormation completes but whose URL never answers 200 (503: not
    ready) WHEN aws_deployment runs THEN no test body runs, the readiness failure reaches the
    caller, and the deployed stack is deleted: nothing of the run is left."""
    stack_name = unique_stack_name()
    entered = False

    with (
        aws_env.serve_when_deployed(stack_name, serve=False),
        pytest.raises(E2EDeployError, match="did not answer 200"),
        aws_deployment(stack_name, keep_stack=False, timeouts=_fast(ready=3)),
    ):
        entered = True

    assert not entered
    assert stack_name in _deleted_stacks(aws_env)
    assert _live_stacks(aws_env) == []
    assert not (ROOT / "cdk.out.e2e" / stack_name).exists()
    _assert_stayed_on_this_machine(aws_env)


def test_cleanup_that_raises_does_not_skip_stack_deletion(aws_env: FakeAws) -> None:
    """GIVEN a deployed stack and an ungranted role that someone deleted behind the harness's
    back WHEN the run ends THEN the failing DeleteRole is reported (red) and the stack is
    deleted anyway."""
    stack_name = unique_stack_name()
    iam = aws_env.client("iam")

    with (  # noqa: PT012 - the error comes from the teardown, after the body
        aws_env.serve_when_deployed(stack_name),
        pytest.raises(TeardownError, match="cleanup"),
        aws_deployment(stack_name, keep_stack=False, timeouts=_fast()) as deployment,
    ):
        role_arn = deployment.create_ungranted_role()
        iam.delete_role(RoleName=role_arn.rsplit("/", 1)[1])

    assert stack_name in _deleted_stacks(aws_env)
    assert _live_stacks(aws_env) == []


def _fast(*, ready: float = 60) -> AwsTimeouts:
    return AwsTimeouts(
        deploy_seconds=300, ready_seconds=ready, role_propagation_seconds=10, poll_seconds=0.5
    )
