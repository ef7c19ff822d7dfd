"""Deleting an e2e stack in AWS: wait until gone, and get past a DELETE_FAILED.

Shared by the harness's teardown and the janitor, so a stack one night could not delete is
deleted by the next (with the failed resources retained and named) instead of poisoning it.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions

DELETE_DONE = "DELETE_COMPLETE"
DELETE_FAILED = "DELETE_FAILED"


class TeardownError(RuntimeError):
    pass


class RetainedResourcesError(TeardownError):
    """The stack is gone, but only because these resources were retained: delete them by hand."""

    def __init__(self, stack_name: str, retained: list[dict[str, str]]) -> None:
        listed = ", ".join(
            f"{r['LogicalResourceId']} ({r['ResourceType']} {r.get('PhysicalResourceId', '?')}: "
            f"{r.get('ResourceStatusReason', '')})"
            for r in retained
        )
        super().__init__(f"{stack_name} deleted with resources RETAINED (still exist): {listed}")
        self.stack_name = stack_name
        self.retained = retained


def delete_stack_and_wait(
    cfn: Any, stack_name: str, *, timeout_seconds: float = 15 * 60, poll_seconds: float = 10.0
) -> None:
    """Delete and wait until gone; a stack that never existed counts as gone.

    A DELETE_FAILED (now or left by an earlier night) is retried once with the failed resources
    retained (DeleteStack RetainResources): the stack goes, and RetainedResourcesError names
    what was left, so the run is red but the next one starts clean.

    Polls DescribeStacks by stack id instead of botocore's StackDeleteComplete waiter: that one
    fails on the first answer if it still shows the pre-delete state (ROLLBACK_COMPLETE,
    UPDATE_ROLLBACK_COMPLETE, an old DELETE_FAILED...) while the deletion has just begun.
    """
    stack = describe_stack(cfn, stack_name)
    if stack is None or stack["StackStatus"] == DELETE_DONE:
        return
    stack_id = stack["StackId"]
    deadline = time.monotonic() + timeout_seconds
    retained: list[dict[str, str]] | None = None  # None: not retried yet
    if stack["StackStatus"] == DELETE_FAILED:
        retained = _retry_retaining(cfn, stack_id)
    else:
        cfn.delete_stack(StackName=stack_id)
    stale_until = time.monotonic() + min(60.0, timeout_seconds)
    # Already deleting (the janitor starts every deletion before waiting for each).
    seen_in_progress = stack["StackStatus"] == "DELETE_IN_PROGRESS"
    while True:
        stack = describe_stack(cfn, stack_id)
        status = DELETE_DONE if stack is None else stack["StackStatus"]
        if status == DELETE_DONE:
            if retained:
                raise RetainedResourcesError(stack_name, retained)
            return
        seen_in_progress = seen_in_progress or status == "DELETE_IN_PROGRESS"
        # A DELETE_FAILED seen before DELETE_IN_PROGRESS may be the previous attempt's.
        if status == DELETE_FAILED and (seen_in_progress or time.monotonic() > stale_until):
            if retained is not None:
                reason = stack.get("StackStatusReason", "") if stack else ""
                raise TeardownError(f"deleting {stack_name} failed twice: {reason}")
            retained = _retry_retaining(cfn, stack_id)
            seen_in_progress = False
            stale_until = time.monotonic() + min(60.0, timeout_seconds)
        if time.monotonic() > deadline:
            raise TeardownError(
                f"deleting {stack_name}: still {status} after {timeout_seconds:.0f} s"
            )
        time.sleep(poll_seconds)


def _retry_retaining(cfn: Any, stack_id: str) -> list[dict[str, str]]:
    """DeleteStack again, retaining the resources whose deletion failed; returns them."""
    failed = [
        {k: str(v) for k, v in r.items() if isinstance(v, str)}
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id)
        for r in page["StackResourceSummaries"]
        if r["ResourceStatus"] == DELETE_FAILED
    ]
    cfn.delete_stack(StackName=stack_id, RetainResources=[r["LogicalResourceId"] for r in failed])
    return failed


def describe_stack(cfn: Any, stack_name_or_id: str) -> dict[str, Any] | None:
    try:
        return dict(cfn.describe_stacks(StackName=stack_name_or_id)["Stacks"][0])
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
