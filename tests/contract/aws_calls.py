"""A recorded AWS call as IAM sees it: the action and the resource ARN it is authorized on.

Only the calls the nightly's own identity makes are mapped (the harness, the janitor, the CLI's
role assumptions); anything else comes back as None, which the policy check counts as refused.
"""

from __future__ import annotations

from tests.contract.aws_traffic import Call

# AWS authorizes no permission for it: any identity may ask who it is.
NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}


def iam_request(call: Call, *, account: str, region: str) -> tuple[str, str] | None:
    """(service:Action, resource ARN) of `call`; None when this module cannot say."""
    action = f"{call.service}:{call.action}"
    params = call.params
    if call.service == "cloudformation":
        if call.action == "ListStacks":
            return action, "*"
        stack = str(params.get("StackName", ""))
        if not stack:
            return None
        if stack.startswith("arn:"):
            return action, stack
        return action, f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/*"
    if call.service == "iam":
        if call.action == "ListRoles":
            return action, "*"
        if "RoleName" in params:
            return action, f"arn:aws:iam::{account}:role/{params['RoleName']}"
        return None
    if call.service == "sts" and call.action == "AssumeRole":
        return action, str(params["RoleArn"])
    if call.service == "ssm" and call.action == "GetParameter":
        return action, f"arn:aws:ssm:{region}:{account}:parameter{params['Name']}"
    if call.service == "logs" and "logGroupName" in params:
        return action, f"arn:aws:logs:{region}:{account}:log-group:{params['logGroupName']}:*"
    return None
