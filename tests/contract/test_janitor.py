"""The e2e janitor deletes only this app's tagged e2e stacks, and only old ones (moto-backed)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
from moto import mock_aws

from tests.e2e.janitor import main, stale_e2e_stacks
from tests.e2e.targets import E2E_TAG, STACK_PREFIX

REGION = "eu-west-1"
TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}})


def _create(cfn, name: str, *, tagged: bool) -> None:
    tags = [{"Key": E2E_TAG, "Value": "true"}] if tagged else []
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
