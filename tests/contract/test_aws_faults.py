"""The rehearsal's faults, each against moto posing as AWS: a run cancelled mid-deploy, a stack
whose deletion fails, a deploy that never gets ready, a cleanup that raises, what killed runs
leave behind. After each, the workflow's cleanup step leaves nothing of the run in the account.

Where the CDK CLI's own behaviour is not the subject, the deploy is fake_cdk's (a small stack
with the harness's exact name and tags): the whole night with the real CLI is
test_aws_rehearsal.py's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import botocore.endpoint
import pytest

from tests.contract import fake_cdk
from tests.contract.aws_rehearsal import (
    ROOT,
    FakeAws,
    as_nightly_environment,
    cleanup_step,
    deleted_stacks,
    e2e_session,
    live_stacks,
    rehearsal_account,
    roles,
)
from tests.contract.aws_traffic import DeleteFails, Fault
from tests.e2e import janitor
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


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAws]:
    yield from rehearsal_account(tmp_path_factory)


@pytest.fixture
def aws_env(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    return as_nightly_environment(aws, monkeypatch)


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
        session = e2e_session(
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
    deleted_by_harness = stack_name in deleted_stacks(aws)
    cleanup = cleanup_step(aws, run_id)

    assert session.returncode != 0, output[-3000:]
    assert "KeyboardInterrupt: SIGINT" in output, output[-3000:]
    assert deleted_by_harness, output[-3000:]
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert live_stacks(aws) == []
    assert roles(aws, stack_name) == []


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
        cleanup = cleanup_step(aws, run_id)
    finally:
        aws.traffic.delete_failures.remove(failure)

    assert failure.retained == ["LogGroup"]
    assert cleanup.returncode == 1
    assert "RETAINED" in cleanup.stderr, cleanup.stderr
    assert "LogGroup" in cleanup.stderr, cleanup.stderr
    assert name in deleted_stacks(aws)
    assert live_stacks(aws) == []


def test_cleanup_step_rides_out_a_burst_of_throttling(
    aws_env: FakeAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN CloudFormation throttling ListStacks five times in a row (botocore's legacy mode
    gives up after 5 attempts) WHEN the run's cleanup step runs (in-process; botocore's backoff
    sleeps are recorded, not slept) THEN its standard-mode retries back off and get through,
    and the run's stack is deleted."""
    run_id = f"rehearsal-th-{unique_stack_name().rsplit('-', 1)[1]}"
    name = f"{unique_stack_name()}-th"
    aws_env.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps({"Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup"}}}),
        Tags=[{"Key": E2E_TAG, "Value": "true"}, {"Key": RUN_TAG, "Value": run_id}],
    )
    backoffs: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", backoffs.append)
    burst = Fault(service="cloudformation", action="ListStacks", code="Throttling", times=5)
    aws_env.traffic.faults.append(burst)
    try:
        exit_code = janitor.main(
            ["--run-id", run_id, "--poll-seconds", "0", "--timeout-minutes", "1"]
        )
    finally:
        aws_env.traffic.faults.remove(burst)

    assert burst.injected == 5
    assert exit_code == 0
    assert len(backoffs) == 5
    assert name in deleted_stacks(aws_env)
    assert live_stacks(aws_env) == []


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
    assert killed in deleted_stacks(aws)
    assert live_stacks(aws) == [f"other-app-{killed}"]
    assert roles(aws, killed) == [f"{killed}x-nogrant"]
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
    assert stack_name in deleted_stacks(aws_env)
    assert live_stacks(aws_env) == []
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
    assert stack_name in deleted_stacks(aws_env)
    assert live_stacks(aws_env) == []
    assert roles(aws_env, stack_name) == [f"{stack_name}-nogrant"]
    assert cleanup_step(aws_env, run_id).returncode == 0
    assert roles(aws_env, stack_name) == []


def _fast(*, ready: float = 60) -> AwsTimeouts:
    return AwsTimeouts(
        deploy_seconds=300, ready_seconds=ready, role_propagation_seconds=10, poll_seconds=0.5
    )
