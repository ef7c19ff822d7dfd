"""Authorization of a Function URL call, starting from the statements the CDK stack emits."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localurl.iam_policy import (
    INVOKE_ACTION,
    INVOKE_URL_ACTION,
    Decision,
    Principal,
    evaluate,
    is_url_invoke_allowed,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ml-inference:Dev"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Invoker"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/Invoker/ci-run"

# What grant_invoke_url(role) puts into the role's policy (cdk synth, verbatim but for ARN).
URL_STATEMENT: dict[str, Any] = {
    "Action": "lambda:InvokeFunctionUrl",
    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
    "Effect": "Allow",
    "Resource": ARN,
}
INVOKE_STATEMENT: dict[str, Any] = {
    "Action": "lambda:InvokeFunction",
    "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": True}},
    "Effect": "Allow",
    "Resource": ARN,
}
URL_CONTEXT = {"lambda:FunctionUrlAuthType": "AWS_IAM"}
INVOKE_CONTEXT = {"lambda:InvokedViaFunctionUrl": True}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [copy.deepcopy(s) for s in statements]}


def cdk_policy(*extra: dict[str, Any]) -> dict[str, Any]:
    return policy(URL_STATEMENT, INVOKE_STATEMENT, *extra)


def allowed(
    identity: list[Any],
    resource_policy: dict[str, Any] | None = None,
    *,
    function_arn: str = ARN,
    account_id: str = ACCOUNT,
    principal_arn: str = ROLE_ARN,
    caller_arn: str | None = SESSION_ARN,
) -> bool:
    ok, reason = is_url_invoke_allowed(
        identity_policies=identity,
        resource_policy=resource_policy,
        function_arn=function_arn,
        auth_type="AWS_IAM",
        principal_arn=principal_arn,
        account_id=account_id,
        caller_arn=caller_arn,
    )
    assert reason  # always explained
    return ok


def with_(statement: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(statement), **changes}


def without(statement: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(statement).items() if k != key}


# --- the CDK grant -----------------------------------------------------------------------


def test_url_invoke_allowed_with_cdk_statements():
    assert allowed([cdk_policy()])


def test_url_invoke_allowed_with_cdk_statements_split_over_two_policies():
    assert allowed([policy(URL_STATEMENT), policy(INVOKE_STATEMENT)])


def test_url_invoke_allowed_with_single_statement_object_not_list():
    both = with_(
        INVOKE_STATEMENT,
        Action=["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"],
        Condition={},
    )
    assert allowed([{"Statement": both}])


def test_url_invoke_denied_without_invoke_function_url_statement():
    assert not allowed([policy(INVOKE_STATEMENT)])


def test_url_invoke_denied_without_invoke_function_statement():
    assert not allowed([policy(URL_STATEMENT)])


def test_url_invoke_denied_without_any_policy():
    assert not allowed([])


def test_url_invoke_reason_names_missing_action():
    ok, reason = is_url_invoke_allowed(
        identity_policies=[policy(URL_STATEMENT)],
        resource_policy=None,
        function_arn=ARN,
        auth_type="AWS_IAM",
        principal_arn=ROLE_ARN,
        account_id=ACCOUNT,
    )
    assert not ok
    assert INVOKE_ACTION in reason


@pytest.mark.parametrize(
    "resource",
    [
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:other:Dev",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:other",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ml-inference",  # unqualified
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ml-inference:Prod",
        f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:ml-inference:Dev",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ML-INFERENCE:Dev",  # case-sensitive
    ],
)
def test_url_invoke_denied_when_statements_name_another_resource(resource):
    statements = [with_(s, Resource=resource) for s in (URL_STATEMENT, INVOKE_STATEMENT)]
    assert not allowed([policy(*statements)])


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        {"StringEquals": {"lambda:FunctionUrlAuthType": "aws_iam"}},  # values case-sensitive
        {"StringEquals": {"lambda:SomeOtherKey": "AWS_IAM"}},  # missing key
    ],
)
def test_url_invoke_denied_when_url_condition_has_wrong_value(condition):
    assert not allowed([policy(with_(URL_STATEMENT, Condition=condition), INVOKE_STATEMENT)])


@pytest.mark.parametrize("value", [False, "false", "False"])
def test_url_invoke_denied_when_invoked_via_url_condition_is_false(value):
    condition = {"Bool": {"lambda:InvokedViaFunctionUrl": value}}
    assert not allowed([policy(URL_STATEMENT, with_(INVOKE_STATEMENT, Condition=condition))])


@pytest.mark.parametrize("value", [True, "true", "TRUE", [True]])
def test_url_invoke_allowed_when_bool_condition_value_is_true_in_any_spelling(value):
    condition = {"Bool": {"lambda:InvokedViaFunctionUrl": value}}
    assert allowed([policy(URL_STATEMENT, with_(INVOKE_STATEMENT, Condition=condition))])


def test_url_invoke_allowed_when_condition_key_case_differs():
    condition = {"StringEquals": {"LAMBDA:functionurlauthtype": "AWS_IAM"}}
    assert allowed([policy(with_(URL_STATEMENT, Condition=condition), INVOKE_STATEMENT)])


@pytest.mark.parametrize("operator", ["StringEqualsWhatever", "NumericEquals", "stringequals"])
def test_url_invoke_denied_when_allow_uses_unknown_condition_operator(operator):
    condition = {operator: {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    assert not allowed([policy(with_(URL_STATEMENT, Condition=condition), INVOKE_STATEMENT)])


def test_url_invoke_denied_when_deny_uses_unknown_condition_operator():
    # Cannot tell whether the Deny applies: assume it does.
    deny = {
        "Effect": "Deny",
        "Action": "lambda:*",
        "Resource": "*",
        "Condition": {"IpAddressMaybe": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    assert not allowed([cdk_policy(deny)])


# --- explicit deny -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deny",
    [
        {"Effect": "Deny", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": ARN},
        {"Effect": "Deny", "Action": "lambda:InvokeFunctionUrl", "Resource": ARN},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:*", "NotResource": "arn:aws:s3:::*"},
        {"Effect": "Deny", "Action": "lambda:*", "Resource": "*", "Condition": {}},
    ],
    ids=["lambda-star", "invoke", "invoke-url", "star", "not-action", "not-resource", "empty-cond"],
)
def test_url_invoke_denied_when_identity_policy_explicitly_denies(deny):
    assert not allowed([cdk_policy(deny)])


def test_url_invoke_explicit_deny_reason_says_deny():
    deny = {"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}
    ok, reason = is_url_invoke_allowed(
        identity_policies=[cdk_policy(deny)],
        resource_policy=None,
        function_arn=ARN,
        auth_type="AWS_IAM",
        principal_arn=ROLE_ARN,
        account_id=ACCOUNT,
    )
    assert not ok
    assert "explicit deny" in reason


@pytest.mark.parametrize(
    "deny",
    [
        {"Effect": "Deny", "NotAction": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:*", "NotResource": ARN.rsplit(":", 1)[0] + ":*"},
        {"Effect": "Deny", "Action": "lambda:Delete*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "lambda:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        },
    ],
    ids=["not-action-lambda", "not-resource-function", "other-action", "condition-false"],
)
def test_url_invoke_allowed_when_deny_does_not_apply(deny):
    assert allowed([cdk_policy(deny)])


def test_url_invoke_denied_by_negated_condition_on_key_absent_from_invoke_function():
    # lambda:FunctionUrlAuthType is not in lambda:InvokeFunction's context, and a negated
    # operator holds on a missing key (AWS's rule): without IfExists this Deny applies.
    deny = {
        "Effect": "Deny",
        "Action": "lambda:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
    }
    ok, reason = is_url_invoke_allowed(
        identity_policies=[cdk_policy(deny)],
        resource_policy=None,
        function_arn=ARN,
        auth_type="AWS_IAM",
        principal_arn=ROLE_ARN,
        account_id=ACCOUNT,
    )
    assert not ok
    assert reason == f"explicit deny of {INVOKE_ACTION} in an identity policy"


def test_url_invoke_denied_when_resource_policy_explicitly_denies():
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": ROLE_ARN},
        "Action": "lambda:InvokeFunction",
        "Resource": ARN,
    }
    assert not allowed([cdk_policy()], policy(deny))


@pytest.mark.parametrize("effect", ["deny", "Maybe", None])
def test_url_invoke_denied_when_a_matching_statement_has_unreadable_effect(effect):
    odd = {"Effect": effect, "Action": "lambda:*", "Resource": "*"}
    assert not allowed([cdk_policy(odd)])


# --- NotAction / NotResource / wildcards -------------------------------------------------


def test_url_invoke_allowed_by_not_action_allow():
    grant = {"Effect": "Allow", "NotAction": "s3:*", "Resource": ARN}
    assert allowed([policy(grant)])


def test_url_invoke_denied_by_not_action_allow_excluding_lambda():
    grant = {"Effect": "Allow", "NotAction": ["lambda:Invoke*"], "Resource": ARN}
    assert not allowed([policy(grant)])


def test_url_invoke_allowed_by_not_resource_allow_excluding_other_function():
    grant = {
        "Effect": "Allow",
        "Action": "lambda:Invoke*",
        "NotResource": "arn:aws:lambda:*:*:function:other*",
    }
    assert allowed([policy(grant)])


def test_url_invoke_denied_by_not_resource_allow_excluding_this_function():
    grant = {"Effect": "Allow", "Action": "lambda:*", "NotResource": [ARN]}
    assert not allowed([policy(grant)])


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("lambda:Invoke*", ARN),
        ("lambda:*", "arn:aws:lambda:*:*:function:ml-inference:*"),
        ("*", "*"),
        ("lambda:InvokeFunction*", "arn:aws:lambda:us-east-1:*:function:ml-inference:D?v"),
        ("lambda:Invoke?unction*", "arn:aws:lambda:us-east-1:123456789012:function:ml-*"),
        ("LAMBDA:INVOKEFUNCTION*", ARN),  # actions are case-insensitive
        ("lambda:invokefunction*", ARN),
    ],
)
def test_url_invoke_allowed_by_wildcard_action_and_resource(action, resource):
    grant = {"Effect": "Allow", "Action": action, "Resource": resource}
    assert allowed([policy(grant)])


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("lambda:Invoke", ARN),  # no implicit prefix match
        ("lambda:InvokeAsync", ARN),
        ("lambda:*", "arn:aws:lambda:*:*:function:ml-inference"),  # unqualified only
        ("lambda:*", "arn:aws:lambda:us-east-1:*:function:ml-inference:D?"),  # ? is one char
        ("lambda:*", "arn:aws:lambda:us-east-1:*:function:ml-inference:dev"),  # case-sensitive
        ("lambda:*", "arn:aws:lambda:us-east-1:*:function:ml-inference:${aws:username}"),
        ("lambda:Invoke[F]unction*", ARN),  # brackets are literal, not a character class
    ],
)
def test_url_invoke_denied_by_non_matching_wildcard(action, resource):
    grant = {"Effect": "Allow", "Action": action, "Resource": resource}
    assert not allowed([policy(grant)])


def test_url_invoke_allowed_by_action_and_resource_lists():
    grant = {
        "Effect": "Allow",
        "Action": ["s3:GetObject", "lambda:InvokeFunction", "lambda:InvokeFunctionUrl"],
        "Resource": ["arn:aws:s3:::bucket/*", ARN],
    }
    assert allowed([policy(grant)])


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Resource": ARN},  # no Action
        {"Effect": "Allow", "Action": "lambda:*"},  # no Resource
        {"Effect": "Allow", "Action": "lambda:*", "NotAction": "s3:*", "Resource": ARN},
        {"Effect": "Allow", "Action": {"lambda": "*"}, "Resource": ARN},
    ],
    ids=["no-action", "no-resource", "action-and-not-action", "action-object"],
)
def test_url_invoke_denied_by_malformed_allow(statement):
    assert not allowed([policy(statement)])


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:*", "NotAction": "s3:*", "Resource": "*"},
        "not-a-statement",
    ],
    ids=["deny-no-action", "deny-action-and-not-action", "string-statement"],
)
def test_url_invoke_denied_by_malformed_deny(statement):
    assert not allowed([cdk_policy(), {"Statement": [statement]}])


def test_url_invoke_allowed_from_json_string_policy():
    assert allowed([json.dumps(cdk_policy())])


# --- resource policy ----------------------------------------------------------------------


def resource_policy(principal: Any, *, condition: bool = True) -> dict[str, Any]:
    """What AddPermission writes for a Function URL, for `principal`."""
    url = with_(URL_STATEMENT, Principal=principal, Sid="url")
    invoke = with_(INVOKE_STATEMENT, Principal=principal, Sid="invoke")
    if not condition:
        url, invoke = without(url, "Condition"), without(invoke, "Condition")
    return policy(url, invoke)


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": ROLE_ARN},
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/x", ROLE_ARN]},
        {"AWS": SESSION_ARN},
        "*",
        {"AWS": "*"},
    ],
    ids=["role", "role-in-list", "session", "star", "aws-star"],
)
def test_url_invoke_allowed_by_resource_policy_naming_caller(principal):
    assert allowed([], resource_policy(principal))


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/SomeoneElse"},
        {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        {"AWS": OTHER_ACCOUNT},
        {"Service": "apigateway.amazonaws.com"},
        {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/Invoker/another-session"},
    ],
    ids=["other-role", "other-root", "other-account-id", "service", "other-session"],
)
def test_url_invoke_denied_by_resource_policy_for_another_principal(principal):
    assert not allowed([], resource_policy(principal))


@pytest.mark.parametrize("principal", [{"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, {"AWS": ACCOUNT}])
def test_url_invoke_denied_by_account_principal_alone(principal):
    # An account principal delegates to the account's IAM policies; it grants no one by itself.
    assert not allowed([], resource_policy(principal))


@pytest.mark.parametrize("principal", [{"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, {"AWS": ACCOUNT}])
def test_url_invoke_denied_by_account_principal_deny(principal):
    deny = {"Effect": "Deny", "Principal": principal, "Action": "lambda:*", "Resource": ARN}
    assert not allowed([cdk_policy()], policy(deny))


def test_url_invoke_denied_by_resource_policy_with_wrong_condition():
    grant = resource_policy({"AWS": ROLE_ARN})
    grant["Statement"][0]["Condition"] = {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    assert not allowed([], grant)


def test_url_invoke_denied_by_resource_policy_statement_without_principal():
    assert not allowed([], policy(URL_STATEMENT, INVOKE_STATEMENT))


def test_url_invoke_allowed_by_not_principal_allow_excluding_others():
    grant = resource_policy({"AWS": "*"})
    for statement in grant["Statement"]:
        del statement["Principal"]
        statement["NotPrincipal"] = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Banned"}
    assert allowed([], grant)


def test_url_invoke_denied_by_not_principal_deny_not_excluding_caller():
    deny = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Admin"},
        "Action": "lambda:*",
        "Resource": "*",
    }
    assert not allowed([cdk_policy()], policy(deny))


def test_url_invoke_cross_account_requires_identity_and_resource_policy():
    foreign_role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/Invoker"
    foreign: dict[str, Any] = {
        "account_id": OTHER_ACCOUNT,
        "principal_arn": foreign_role,
        "caller_arn": None,
    }
    grant = resource_policy({"AWS": OTHER_ACCOUNT})
    assert allowed([cdk_policy()], grant, **foreign)
    assert not allowed([cdk_policy()], None, **foreign)
    assert not allowed([], grant, **foreign)


# --- evaluate() and condition operators --------------------------------------------------


def decide(statement: dict[str, Any], context: dict[str, Any], action: str = INVOKE_URL_ACTION):
    return evaluate(policies=[policy(statement)], action=action, resource=ARN, context=context)


def allow_if(condition: dict[str, Any]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "lambda:*", "Resource": "*", "Condition": condition}


def test_evaluate_returns_three_distinct_decisions():
    assert decide(URL_STATEMENT, URL_CONTEXT) is Decision.ALLOW
    assert decide(URL_STATEMENT, {}) is Decision.DENY_IMPLICIT
    deny = {"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}
    assert decide(deny, URL_CONTEXT) is Decision.DENY_EXPLICIT


def test_evaluate_cdk_invoke_statement_needs_invoked_via_url_context():
    assert decide(INVOKE_STATEMENT, INVOKE_CONTEXT, INVOKE_ACTION) is Decision.ALLOW
    assert decide(INVOKE_STATEMENT, {}, INVOKE_ACTION) is Decision.DENY_IMPLICIT


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "b"}, True),  # values OR'd
        ({"StringEquals": {"k": "a", "j": "b"}}, {"k": "a", "j": "c"}, False),  # keys AND'd
        ({"StringEquals": {"k": "a"}, "StringLike": {"j": "b*"}}, {"k": "a", "j": "bc"}, True),
        ({"StringEquals": {"k": "a"}, "StringLike": {"j": "b*"}}, {"k": "a", "j": "cb"}, False),
        ({"StringNotEquals": {"k": "a"}}, {"k": "b"}, True),
        ({"StringNotEquals": {"k": "a"}}, {"k": "a"}, False),
        ({"StringNotEquals": {"k": "a"}}, {}, True),  # negated operators hold on a missing key
        ({"StringEquals": {"k": "a"}}, {}, False),
        ({"StringEqualsIfExists": {"k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False),
        ({"StringLike": {"k": "ab?d*"}}, {"k": "abcdXYZ"}, True),
        ({"StringLike": {"k": "ab?d*"}}, {"k": "abd"}, False),
        ({"StringNotLike": {"k": "a*"}}, {"k": "ba"}, True),
        ({"StringNotLike": {"k": "a*"}}, {"k": "ab"}, False),
        ({"StringEqualsIgnoreCase": {"k": "AWS_iam"}}, {"k": "aws_IAM"}, True),
        ({"StringEquals": {"k": "AWS_iam"}}, {"k": "aws_IAM"}, False),
        ({"StringNotEqualsIgnoreCase": {"k": "A"}}, {"k": "a"}, False),
        ({"Bool": {"k": "true"}}, {"k": True}, True),
        ({"Bool": {"k": True}}, {"k": "true"}, True),
        ({"Bool": {"k": "true"}}, {"k": False}, False),
        ({"BoolIfExists": {"k": "true"}}, {}, True),
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "true"}}, {"k": "x"}, False),
        ({"Null": {"k": "false"}}, {"k": "x"}, True),
        ({"Null": {"k": "false"}}, {}, False),
        ({"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}}, {"aws:PrincipalArn": ROLE_ARN}, True),
        ({"ArnLike": {"k": "arn:aws:iam::*:role/Inv*"}}, {"k": ROLE_ARN}, True),
        ({"ArnLike": {"k": "arn:aws:iam::*:role/Inv*"}}, {"k": "not-an-arn"}, False),
        # a wildcard stays inside its ARN component: "*" cannot swallow the account's colons
        ({"ArnLike": {"k": "arn:aws:*:role/Invoker"}}, {"k": ROLE_ARN}, False),
        ({"StringLike": {"k": "arn:aws:*:role/Invoker"}}, {"k": ROLE_ARN}, True),
        ({"ArnNotEquals": {"k": ROLE_ARN}}, {"k": SESSION_ARN}, True),
        ({"ArnNotLike": {"k": "arn:aws:iam::*:role/*"}}, {"k": ROLE_ARN}, False),
        ({"ForAnyValue:StringEquals": {"k": ["a", "b"]}}, {"k": ["x", "b"]}, True),
        ({"ForAnyValue:StringEquals": {"k": ["a", "b"]}}, {"k": ["x", "y"]}, False),
        ({"ForAnyValue:StringEquals": {"k": "a"}}, {}, False),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a", "b"]}, True),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a", "c"]}, False),
        ({"ForAllValues:StringEquals": {"k": "a"}}, {}, True),
        ({"ForAllValues:StringNotEquals": {"k": ["a"]}}, {"k": ["b", "c"]}, True),
        ({"ForAllValues:StringNotEquals": {"k": ["a"]}}, {"k": ["b", "a"]}, False),
        ({"ForSomeValues:StringEquals": {"k": "a"}}, {"k": ["a"]}, False),  # unknown qualifier
        ({"StringEquals": {"k": "${aws:username}"}}, {"k": "${aws:username}"}, False),
        ({"StringEquals": {"k": {"nested": "a"}}}, {"k": "a"}, False),
    ],
)
def test_evaluate_condition_operator_semantics(condition, context, expected):
    decision = decide(allow_if(condition), context)
    assert decision is (Decision.ALLOW if expected else Decision.DENY_IMPLICIT)


def test_evaluate_resource_policy_ignores_statements_for_other_principals():
    grant = with_(URL_STATEMENT, Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"})
    me = Principal(account_id=ACCOUNT, arn=ROLE_ARN, session_arn=SESSION_ARN)
    decision = evaluate(
        policies=[policy(grant)],
        action=INVOKE_URL_ACTION,
        resource=ARN,
        context=URL_CONTEXT,
        principal=me,
    )
    assert decision is Decision.DENY_IMPLICIT


_action_names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=12
)


@given(name=_action_names)
def test_evaluate_action_match_ignores_case(name):
    """Property: an action matches a statement naming it in any letter case."""
    action = f"lambda:{name}"
    grant = {"Effect": "Allow", "Action": action.swapcase(), "Resource": ARN}
    assert decide(grant, {}, action) is Decision.ALLOW


@given(suffix=st.text(min_size=1, max_size=10).filter(lambda s: s != "Dev"))
def test_evaluate_qualified_resource_matches_only_its_own_qualifier(suffix):
    """Property: a statement for the Dev alias never allows any other qualifier."""
    grant = {"Effect": "Allow", "Action": "lambda:*", "Resource": ARN}
    other = ARN.rsplit(":", 1)[0] + ":" + suffix
    assert (
        evaluate(policies=[policy(grant)], action=INVOKE_ACTION, resource=other, context={})
        is Decision.DENY_IMPLICIT
    )


@given(
    extra=st.lists(st.sampled_from(["lambda:*", "*", INVOKE_ACTION, "lambda:Invoke*"]), max_size=3)
)
def test_evaluate_deny_always_wins_over_any_allows(extra):
    """Property: adding Allow statements never overrides a matching explicit Deny."""
    deny = {"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}
    allows = [{"Effect": "Allow", "Action": a, "Resource": "*"} for a in extra]
    decision = evaluate(
        policies=[policy(*allows, deny)], action=INVOKE_ACTION, resource=ARN, context={}
    )
    assert decision is Decision.DENY_EXPLICIT
