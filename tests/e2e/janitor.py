"""Delete this app's e2e stacks older than N hours (left behind by runs that were killed).

python -m tests.e2e.janitor --older-than-hours 6 [--region eu-west-1] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

import boto3

from tests.e2e.targets import E2E_TAG, STACK_PREFIX, delete_stack_and_wait

_ACTIVE = [
    "CREATE_COMPLETE",
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "DELETE_FAILED",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
]


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
    stale = stale_e2e_stacks(
        cfn,
        older_than=dt.timedelta(hours=args.older_than_hours),
        now=dt.datetime.now(dt.UTC),
    )
    failures = 0
    for name in stale:
        print(f"janitor: {'would delete' if args.dry_run else 'deleting'} {name}")
        if args.dry_run:
            continue
        try:
            delete_stack_and_wait(cfn, name)
        except Exception as exc:  # noqa: BLE001 - report every stack, then fail
            failures += 1
            print(f"janitor: {name}: {exc}", file=sys.stderr)
    print(f"janitor: {len(stale)} stale e2e stack(s), {failures} failed to delete")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
