"""Delete this app's e2e stacks and roles: older than N hours, or of one workflow run.

python -m tests.e2e.janitor --older-than-hours 6 [--region eu-west-1] [--dry-run]
python -m tests.e2e.janitor --run-id RUN   (the run's own last step: its resources, any age)
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

import boto3

from tests.e2e.stack_teardown import TeardownError, delete_stack_and_wait, describe_stack
from tests.e2e.targets import E2E_TAG, RUN_TAG, STACK_PREFIX, aws_config, delete_role

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


def _selected(tags: dict[str, str], run_id: str | None) -> bool:
    return tags.get(E2E_TAG) == "true" and (run_id is None or tags.get(RUN_TAG) == run_id)


def stale_e2e_stacks(
    cfn: Any, *, older_than: dt.timedelta, now: dt.datetime, run_id: str | None = None
) -> list[str]:
    """Tagged e2e stacks older than `older_than`; with `run_id`, only that run's."""
    stale: list[str] = []
    for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=_ACTIVE):
        for summary in page["StackSummaries"]:
            name = summary["StackName"]
            if not name.startswith(STACK_PREFIX) or now - summary["CreationTime"] < older_than:
                continue
            stack = cfn.describe_stacks(StackName=summary["StackId"])["Stacks"][0]
            if _selected({t["Key"]: t["Value"] for t in stack.get("Tags", [])}, run_id):
                stale.append(name)
    return stale


def stale_e2e_roles(
    iam: Any, *, older_than: dt.timedelta, now: dt.datetime, run_id: str | None = None
) -> list[str]:
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
            if _selected(tags, run_id):
                stale.append(name)
    return stale


def delete_stacks(
    cfn: Any, names: list[str], *, timeout_seconds: float, poll_seconds: float = 10.0
) -> list[str]:
    """Start every deletion first, then wait for each: N stacks cost one delete's time, not N.
    Returns one message per stack that failed (or was deleted only by retaining resources)."""
    failures: list[str] = []
    for name in names:
        stack = describe_stack(cfn, name)
        if stack is not None and stack["StackStatus"] not in (
            "DELETE_FAILED",
            "DELETE_IN_PROGRESS",
        ):
            cfn.delete_stack(StackName=stack["StackId"])
    for name in names:
        try:
            delete_stack_and_wait(
                cfn, name, timeout_seconds=timeout_seconds, poll_seconds=poll_seconds
            )
        except TeardownError as exc:
            failures.append(f"stack {name}: {exc}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--older-than-hours", type=float, default=6.0)
    parser.add_argument(
        "--run-id",
        default=None,
        help="only this workflow run's stacks and roles, whatever their age",
    )
    parser.add_argument("--timeout-minutes", type=float, default=10.0)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--region", default=None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    if session.get_credentials() is None:
        print("janitor: no AWS credentials; nothing checked", file=sys.stderr)
        return 2
    cfn = session.client("cloudformation", config=aws_config())
    iam = session.client("iam", config=aws_config())
    # A run's own resources go whatever their age; otherwise only those older than N hours.
    older_than = dt.timedelta(0 if args.run_id else args.older_than_hours)
    now = dt.datetime.now(dt.UTC)
    stacks = stale_e2e_stacks(cfn, older_than=older_than, now=now, run_id=args.run_id)
    roles = stale_e2e_roles(iam, older_than=older_than, now=now, run_id=args.run_id)
    verb = "would delete" if args.dry_run else "deleting"
    for kind, names in (("stack", stacks), ("role", roles)):
        for name in names:
            print(f"janitor: {verb} {kind} {name}")
    failures: list[str] = []
    if not args.dry_run:
        failures = delete_stacks(
            cfn,
            stacks,
            timeout_seconds=args.timeout_minutes * 60,
            poll_seconds=args.poll_seconds,
        )
        for name in roles:
            try:
                delete_role(iam, name)
            except Exception as exc:  # noqa: BLE001 - report every role, then fail
                failures.append(f"role {name}: {exc}")
    for failure in failures:
        print(f"janitor: {failure}", file=sys.stderr)
    print(
        f"janitor: {len(stacks)} e2e stack(s), {len(roles)} e2e role(s) "
        f"{'of run ' + args.run_id if args.run_id else 'stale'}, {len(failures)} failed to delete"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
