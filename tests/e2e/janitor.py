"""Delete this app's e2e stacks and roles older than N hours (left behind by killed runs).

python -m tests.e2e.janitor --older-than-hours 6 [--region eu-west-1] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

import boto3
import botocore.exceptions

from tests.e2e.targets import E2E_TAG, STACK_PREFIX, delete_stack_and_wait

# Every status but DELETE_COMPLETE: a stack in any of them exists and may hold resources.
# REVIEW_IN_PROGRESS: a run killed between CreateChangeSet and ExecuteChangeSet leaves one.
_ACTIVE = [
    "REVIEW_IN_PROGRESS",
    "CREATE_IN_PROGRESS",
    "CREATE_COMPLETE",
    "CREATE_FAILED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_COMPLETE",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "DELETE_IN_PROGRESS",
    "DELETE_FAILED",
    "IMPORT_IN_PROGRESS",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_IN_PROGRESS",
    "IMPORT_ROLLBACK_COMPLETE",
    "IMPORT_ROLLBACK_FAILED",
]
UNGRANTED_ROLE_SUFFIX = "-nogrant"


def stale_e2e_stacks(cfn: Any, *, older_than: dt.timedelta, now: dt.datetime) -> list[str]:
    stale: list[str] = []
    for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=_ACTIVE):
        for summary in page["StackSummaries"]:
            name = summary["StackName"]
            if not name.startswith(STACK_PREFIX) or now - summary["CreationTime"] < older_than:
                continue
            stack = cfn.describe_stacks(StackName=summary["StackId"])["Stacks"][0]
            tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
            if tags.get(E2E_TAG) == "true":
                stale.append(name)
    return stale


def stale_e2e_roles(iam: Any, *, older_than: dt.timedelta, now: dt.datetime) -> list[str]:
    """The "role without the grant" roles (`ml-e2e-…-nogrant`, tagged) of killed runs."""
    stale: list[str] = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            if not (name.startswith(STACK_PREFIX) and name.endswith(UNGRANTED_ROLE_SUFFIX)):
                continue
            if now - role["CreateDate"] < older_than:
                continue
            tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
            if tags.get(E2E_TAG) == "true":
                stale.append(name)
    return stale


def delete_role(iam: Any, name: str) -> None:
    """Delete the role and whatever a test may have attached to it; a gone role counts as gone."""
    try:
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--older-than-hours", type=float, default=6.0)
    parser.add_argument("--region", default=None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    if session.get_credentials() is None:
        print("janitor: no AWS credentials; nothing checked", file=sys.stderr)
        return 2
    cfn = session.client("cloudformation")
    iam = session.client("iam")
    older_than = dt.timedelta(hours=args.older_than_hours)
    now = dt.datetime.now(dt.UTC)
    stale_stacks = stale_e2e_stacks(cfn, older_than=older_than, now=now)
    stale_roles = stale_e2e_roles(iam, older_than=older_than, now=now)
    failures = 0
    for kind, name, delete in [
        *(("stack", n, lambda n=n: delete_stack_and_wait(cfn, n)) for n in stale_stacks),
        *(("role", n, lambda n=n: delete_role(iam, n)) for n in stale_roles),
    ]:
        print(f"janitor: {'would delete' if args.dry_run else 'deleting'} {kind} {name}")
        if args.dry_run:
            continue
        try:
            delete()
        except Exception as exc:  # noqa: BLE001 - report every stack and role, then fail
            failures += 1
            print(f"janitor: {kind} {name}: {exc}", file=sys.stderr)
    print(
        f"janitor: {len(stale_stacks)} stale e2e stack(s), {len(stale_roles)} stale e2e role(s), "
        f"{failures} failed to delete"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
