"""The e2e janitor deletes only this app's tagged e2e stacks, and only old ones (moto-backed)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from tests.e2e.janitor import main, stale_e2e_roles, stale_e2e_stacks
from tests.e2e.targets import E2E_TAG, RUN_TAG, STACK_PREFIX, delete_stack_and_wait

REGION = "eu-west-1"
TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}})


def _create(cfn, name: str, *, tagged: bool, run_id: str | None = None) -> None:
    tags = [{"Key": E2E_TAG, "Value": "true"}] if tagged else []
    if run_id is not None:
        tags.append({"Key": RUN_TAG, "Value": run_id})
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE, Tags=tags)


def _names(cfn) -> set[str]:
    return {
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }


@mock_aws
def test_janitor_selects_old_tagged_e2e_stacks_only() -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    _create(cfn, f"{STACK_PREFIX}old", tagged=True)
    _create(cfn, f"{STACK_PREFIX}untagged", tagged=False)
    _create(cfn, "someone-elses-stack", tagged=True)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)

    stale = stale_e2e_stacks(cfn, older_than=dt.timedelta(hours=6), now=later)
    fresh = stale_e2e_stacks(cfn, older_than=dt.timedelta(hours=6), now=dt.datetime.now(dt.UTC))

    assert stale == [f"{STACK_PREFIX}old"]
    assert fresh == []


@mock_aws
def test_janitor_cli_deletes_and_waits(monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    cfn = boto3.client("cloudformation", region_name=REGION)
    _create(cfn, f"{STACK_PREFIX}old", tagged=True)
    _create(cfn, "someone-elses-stack", tagged=True)

    assert main(["--older-than-hours", "0", "--region", REGION]) == 0

    assert _names(cfn) == {"someone-elses-stack"}


@mock_aws
def test_janitor_dry_run_deletes_nothing(capsys) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    _create(cfn, f"{STACK_PREFIX}old", tagged=True)

    assert main(["--older-than-hours", "0", "--region", REGION, "--dry-run"]) == 0

    assert _names(cfn) == {f"{STACK_PREFIX}old"}
    assert f"would delete stack {STACK_PREFIX}old" in capsys.readouterr().out


@mock_aws
def test_janitor_selects_review_in_progress_stacks_of_killed_runs() -> None:
    """A run killed between CreateChangeSet and ExecuteChangeSet leaves REVIEW_IN_PROGRESS."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_change_set(
        StackName=f"{STACK_PREFIX}review",
        ChangeSetName="cdk-deploy-change-set",
        ChangeSetType="CREATE",
        TemplateBody=TEMPLATE,
        Tags=[{"Key": E2E_TAG, "Value": "true"}],
    )
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)

    assert stale_e2e_stacks(cfn, older_than=dt.timedelta(hours=6), now=later) == [
        f"{STACK_PREFIX}review"
    ]


@mock_aws
def test_janitor_selects_old_tagged_nogrant_roles_only() -> None:
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    tag = [{"Key": E2E_TAG, "Value": "true"}]
    iam.create_role(RoleName=f"{STACK_PREFIX}1-nogrant", AssumeRolePolicyDocument=trust, Tags=tag)
    iam.create_role(RoleName=f"{STACK_PREFIX}2-nogrant", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName=f"{STACK_PREFIX}3-other", AssumeRolePolicyDocument=trust, Tags=tag)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)

    stale = stale_e2e_roles(iam, older_than=dt.timedelta(hours=6), now=later)
    fresh = stale_e2e_roles(iam, older_than=dt.timedelta(hours=6), now=dt.datetime.now(dt.UTC))

    assert stale == [f"{STACK_PREFIX}1-nogrant"]
    assert fresh == []


def test_delete_wait_is_not_fooled_by_the_pre_delete_state() -> None:
    """GIVEN an UPDATE_ROLLBACK_COMPLETE stack whose first DescribeStacks after DeleteStack
    still shows that state (botocore's StackDeleteComplete waiter fails on it) WHEN the
    harness deletes it THEN it keeps polling until DELETE_COMPLETE."""
    cfn = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    stack_id = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{STACK_PREFIX}x/1"
    now = dt.datetime.now(dt.UTC)

    def described(status: str) -> dict:
        return {
            "Stacks": [
                {
                    "StackName": f"{STACK_PREFIX}x",
                    "StackId": stack_id,
                    "CreationTime": now,
                    "StackStatus": status,
                }
            ]
        }

    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", described("UPDATE_ROLLBACK_COMPLETE"))
        stub.add_response("delete_stack", {})
        for status in ("UPDATE_ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
            stub.add_response("describe_stacks", described(status))
        delete_stack_and_wait(cfn, f"{STACK_PREFIX}x", poll_seconds=0)
        stub.assert_no_pending_responses()


@mock_aws
def test_janitor_run_id_mode_deletes_this_runs_resources_whatever_their_age(capsys) -> None:
    """GIVEN stacks and roles created seconds ago by this run, by another run, and untagged
    WHEN the run's cleanup step runs (--run-id) THEN exactly this run's are deleted, though
    they are far younger than the age-based janitor's 6 hours."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    for run in ("101-1", "202-1"):
        _create(cfn, f"{STACK_PREFIX}{run}", tagged=True, run_id=run)
        iam.create_role(
            RoleName=f"{STACK_PREFIX}{run}-nogrant",
            AssumeRolePolicyDocument=trust,
            Tags=[{"Key": E2E_TAG, "Value": "true"}, {"Key": RUN_TAG, "Value": run}],
        )
    _create(cfn, f"{STACK_PREFIX}untagged", tagged=False, run_id="101-1")

    assert main(["--run-id", "101-1", "--region", REGION, "--poll-seconds", "0"]) == 0

    assert _names(cfn) == {f"{STACK_PREFIX}202-1", f"{STACK_PREFIX}untagged"}
    roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert roles == {f"{STACK_PREFIX}202-1-nogrant"}
    assert "1 e2e stack(s), 1 e2e role(s) of run 101-1" in capsys.readouterr().out
