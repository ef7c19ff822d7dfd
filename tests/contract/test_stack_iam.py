"""IAM: the invoker role's trust and URL grant, the execution role's scope, no wildcards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match

ACCOUNT_ROOT = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
    ]
}


def _role_id(template, description_word: str) -> str:
    roles = template.find_resources(
        "AWS::IAM::Role",
        {"Properties": {"Description": Match.string_like_regexp(description_word)}},
    )
    assert len(roles) == 1, f"expected one role described with {description_word!r}: {roles}"
    return next(iter(roles))


def _policies_of(template, role_id: str) -> dict[str, dict]:
    return template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": Match.array_with([{"Ref": role_id}])}}
    )


def _only_policy_statements(template, role_id: str) -> list[dict]:
    policies = _policies_of(template, role_id)
    assert len(policies) == 1, f"expected one policy on {role_id}, found {sorted(policies)}"
    (policy,) = policies.values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_invoker_role_trusts_the_account_root_when_default(synth_template):
    synth_template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "Description": Match.string_like_regexp("callers of the inference Function URL"),
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"AWS": ACCOUNT_ROOT},
                    }
                ]
            },
        },
    )


def test_invoker_role_trusts_exactly_the_configured_principals_when_configured(synth_configured):
    role_id = _role_id(synth_configured.template, "callers of the inference Function URL")
    role = synth_configured.template.find_resources("AWS::IAM::Role")[role_id]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Principal"]["AWS"]) == [
        "arn:aws:iam::111122223333:role/ml-caller",
        "arn:aws:iam::444455556666:user/analyst",
    ]
    assert set(statement["Principal"]) == {"AWS"}


def test_invoker_policy_grants_url_invoke_on_exactly_the_alias_when_default(synth_template):
    alias = Capture()
    synth_template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Action": "lambda:InvokeFunctionUrl",
                        "Effect": "Allow",
                        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
                        "Resource": {"Ref": alias},
                    },
                    {
                        "Action": "lambda:InvokeFunction",
                        "Effect": "Allow",
                        "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": True}},
                        "Resource": {"Ref": alias},
                    },
                ]
            }
        },
    )
    # Ref of an AWS::Lambda::Alias is the alias ARN: both statements name the URL's alias.
    assert alias.as_string() in synth_template.find_resources("AWS::Lambda::Alias")


def test_invoker_role_has_only_the_url_grant_when_default(synth_template):
    role_id = _role_id(synth_template, "callers of the inference Function URL")
    statements = _only_policy_statements(synth_template, role_id)
    assert [s["Action"] for s in statements] == [
        "lambda:InvokeFunctionUrl",
        "lambda:InvokeFunction",
    ]
    assert all(set(s) == {"Action", "Condition", "Effect", "Resource"} for s in statements)
    role = synth_template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_execution_role_is_assumed_by_lambda_only_when_default(synth_template):
    role_id = _role_id(synth_template, "Execution role")
    role = synth_template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    synth_template.has_resource_properties(
        "AWS::Lambda::Function", {"Role": {"Fn::GetAtt": [role_id, "Arn"]}}
    )


def test_execution_role_may_only_write_its_own_log_group_when_default(synth_template):
    role_id = _role_id(synth_template, "Execution role")
    (log_group_id,) = synth_template.find_resources("AWS::Logs::LogGroup")
    assert _only_policy_statements(synth_template, role_id) == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
        }
    ]
    role = synth_template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "Policies" not in role


@pytest.mark.parametrize("variant", ["synth", "synth_configured"])
def test_no_role_has_managed_policies_when_configured(request, variant):
    template = request.getfixturevalue(variant).template
    roles = template.find_resources("AWS::IAM::Role")
    assert roles
    assert [rid for rid, role in roles.items() if "ManagedPolicyArns" in role["Properties"]] == []
    template.resource_count_is("AWS::IAM::ManagedPolicy", 0)


def _action_and_resource_strings(
    node: Any, *, under: str | None = None
) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _action_and_resource_strings(value, under=key if key in _IAM_KEYS else under)
    elif isinstance(node, list):
        for item in node:
            yield from _action_and_resource_strings(item, under=under)
    elif isinstance(node, str) and under is not None:
        yield under, node


_IAM_KEYS = {"Action", "NotAction", "Resource", "NotResource"}


@pytest.mark.parametrize("variant", ["synth", "synth_configured"])
def test_no_iam_action_or_resource_has_a_wildcard_when_configured(request, variant):
    template = request.getfixturevalue(variant).template_dict
    values = list(_action_and_resource_strings(template["Resources"]))
    assert values, "expected IAM statements in the template"
    assert [(key, value) for key, value in values if "*" in value] == []
