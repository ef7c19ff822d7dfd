"""template_diff: snapshot normalization, and the security summary of each kind of change.

Hand-written templates (no synth): each test changes one thing and reads the summary's lines.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.contract.template_diff import ASSET_HASH, describe, normalize, render, security_diff

ASSET = "6507f59f15f2637fd02106ed095dc980122993eed36792a53eb2804e8a11199a"
ROLE = "AppRoleAB12CD34"


def _role(principal: Any = None, **properties: Any) -> dict[str, Any]:
    statement = {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": principal or {"Service": "lambda.amazonaws.com"},
    }
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {"Statement": [statement]}, **properties},
    }


def _policy(*statements: dict[str, Any], role: str = ROLE) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyDocument": {"Statement": list(statements)},
            "Roles": [{"Ref": role}],
        },
    }


def _allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Action": action, "Effect": "Allow", "Resource": resource, **extra}


READ = _allow("s3:GetObject", "arn:aws:s3:::bucket/key")


def _template(**resources: Any) -> dict[str, Any]:
    return {"Resources": resources}


def _lines(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return render(security_diff(old, new)).splitlines()[1:]


def _widenings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [line for line in _lines(old, new) if line.startswith("WIDENING")]


BASE = _template(**{ROLE: _role(), "AppPolicy": _policy(READ)})


def _with_statements(*statements: dict[str, Any]) -> dict[str, Any]:
    return _template(**{ROLE: _role(), "AppPolicy": _policy(*statements)})


# --- normalization ---


def test_normalize_strips_logical_id_hashes_everywhere_they_are_named():
    template = {
        "Resources": {
            "FnRoleEB5A2C07": _role(),
            "FnPolicyA770B5E4": {
                **_policy(READ, role="FnRoleEB5A2C07"),
                "Metadata": {"aws:cdk:path": "Stack/Fn/Policy/Resource"},
            },
            "Fn05D34FA4": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Role": {"Fn::GetAtt": ["FnRoleEB5A2C07", "Arn"]}},
                "DependsOn": ["FnPolicyA770B5E4"],
            },
            "FnCurrentVersion1DB4BD268b1aa3b85756048fe1ff5cb509dbd164": {
                "Type": "AWS::Lambda::Version",
                "Properties": {"FunctionName": {"Ref": "Fn05D34FA4"}},
            },
            "Alias": {
                "Type": "AWS::Lambda::Alias",
                "Properties": {
                    "FunctionVersion": {
                        "Fn::GetAtt": [
                            "FnCurrentVersion1DB4BD268b1aa3b85756048fe1ff5cb509dbd164",
                            "Version",
                        ]
                    },
                    "Description": {"Fn::Sub": "for ${Fn05D34FA4} and ${Fn05D34FA4.Arn}"},
                },
            },
        },
        "Outputs": {"Fn": {"Value": {"Ref": "Fn05D34FA4"}}},
    }
    normalized = normalize(template)
    assert set(normalized["Resources"]) == {"FnRole", "FnPolicy", "Fn", "FnCurrentVersion", "Alias"}
    assert normalized["Resources"]["FnPolicy"]["Properties"]["Roles"] == [{"Ref": "FnRole"}]
    assert "Metadata" not in normalized["Resources"]["FnPolicy"]
    function = normalized["Resources"]["Fn"]
    assert function["Properties"]["Role"] == {"Fn::GetAtt": ["FnRole", "Arn"]}
    assert function["DependsOn"] == ["FnPolicy"]
    alias = normalized["Resources"]["Alias"]["Properties"]
    assert alias["FunctionVersion"] == {"Fn::GetAtt": ["FnCurrentVersion", "Version"]}
    assert alias["Description"] == {"Fn::Sub": "for ${Fn} and ${Fn.Arn}"}
    assert normalized["Outputs"] == {"Fn": {"Value": {"Ref": "Fn"}}}


def test_normalize_replaces_asset_hashes_and_drops_cdk_metadata_when_present():
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"ImageUri": {"Fn::Sub": f"repo:{ASSET}"}}},
            },
            "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2"}},
        },
        "Conditions": {"CDKMetadataAvailable": {"Fn::Or": []}},
    }
    normalized = normalize(template)
    assert normalized == {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"ImageUri": {"Fn::Sub": f"repo:{ASSET_HASH}"}}},
            }
        }
    }


def test_normalize_refuses_when_ids_collide_without_hashes():
    with pytest.raises(ValueError, match="collide"):
        normalize(_template(RoleAAAAAAAA=_role(), RoleBBBBBBBB=_role()))


def test_describe_renders_intrinsics_in_a_line_when_given():
    assert describe({"Ref": "Alias"}) == "Ref Alias"
    assert describe({"Fn::GetAtt": ["Fn", "Arn"]}) == "Fn.Arn"
    assert (
        describe({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::1:root"]]})
        == "arn:${Ref AWS::Partition}:iam::1:root"
    )
    assert describe({"Fn::If": ["c", 1, 2]}) == '{"Fn::If":["c",1,2]}'


# --- the summary: no change, narrowing ---


def test_summary_is_empty_when_nothing_changed():
    assert security_diff(BASE, copy.deepcopy(BASE)) == []
    assert render([]) == "no security- or behaviour-relevant template change"


def test_summary_lists_a_removed_statement_as_no_widening_when_narrowed():
    lines = _lines(BASE, _with_statements())
    assert lines == [f"          IAM {ROLE}: - Allow s3:GetObject on arn:aws:s3:::bucket/key"]


def test_summary_ignores_statement_order_and_policy_split_when_grants_are_equal():
    other = _allow("s3:PutObject", "arn:aws:s3:::bucket/key")
    split = _template(**{ROLE: _role(), "P1": _policy(other), "P2": _policy(READ)})
    changes = security_diff(_with_statements(READ, other), split)
    # The policy resources differ; what the role may do does not.
    assert {c.area for c in changes} == {"resource"}
    assert security_diff(_with_statements(READ, other), _with_statements(other, READ)) == []


# --- the summary: each widening ---


def test_summary_calls_a_new_action_a_widening_when_granted():
    new = _with_statements(READ, _allow("s3:PutObject", "arn:aws:s3:::bucket/key"))
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + Allow s3:PutObject on arn:aws:s3:::bucket/key  [new action]"
    ]


def test_summary_calls_a_star_resource_a_widening_when_granted():
    new = _with_statements(_allow("s3:GetObject", ["arn:aws:s3:::bucket/key", "*"]))
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + Allow s3:GetObject on *  [`*` resource]"
    ]


def test_summary_calls_a_prefix_wildcard_resource_a_widening_when_granted():
    new = _with_statements(READ, _allow("s3:GetObject", "arn:aws:s3:::bucket/*"))
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + Allow s3:GetObject on arn:aws:s3:::bucket/*  [`*` resource]"
    ]


def test_summary_calls_a_wildcard_action_a_widening_when_granted():
    new = _with_statements(READ, _allow("s3:*", "arn:aws:s3:::bucket/key"))
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + Allow s3:* on arn:aws:s3:::bucket/key  [wildcard action]"
    ]


def test_summary_calls_not_action_a_widening_when_granted():
    statement = {"NotAction": "iam:*", "Effect": "Allow", "Resource": "arn:aws:s3:::b"}
    (line,) = _widenings(BASE, _with_statements(READ, statement))
    assert line.endswith("[wildcard action]")
    assert "NotAction iam:*" in line


def test_summary_calls_a_new_resource_for_a_known_action_a_widening_when_granted():
    new = _with_statements(READ, _allow("s3:GetObject", "arn:aws:s3:::other/key"))
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + Allow s3:GetObject on arn:aws:s3:::other/key  [new resource]"
    ]


def test_summary_calls_a_removed_condition_a_widening_when_dropped():
    condition = {"Bool": {"aws:SecureTransport": True}}
    old = _with_statements(_allow("s3:GetObject", "arn:aws:s3:::b", Condition=condition))
    new = _with_statements(_allow("s3:GetObject", "arn:aws:s3:::b"))
    assert _widenings(old, new) == [
        f"WIDENING  IAM {ROLE}: + Allow s3:GetObject on arn:aws:s3:::b  [condition removed]"
    ]
    changed = {"Bool": {"aws:SecureTransport": False}}
    (line,) = _widenings(
        old, _with_statements(_allow("s3:GetObject", "arn:aws:s3:::b", Condition=changed))
    )
    assert line.endswith("[condition changed]")


def test_summary_calls_a_removed_deny_a_widening_and_an_added_deny_not_when_changed():
    deny = {"Action": "s3:DeleteObject", "Effect": "Deny", "Resource": "*"}
    with_deny = _with_statements(READ, deny)
    (removed,) = _widenings(with_deny, BASE)
    assert removed == (f"WIDENING  IAM {ROLE}: - Deny s3:DeleteObject on *  [Deny removed]")
    assert _widenings(BASE, with_deny) == []
    assert f"          IAM {ROLE}: + Deny s3:DeleteObject on *" in _lines(BASE, with_deny)


def test_summary_calls_an_attached_managed_policy_a_widening_when_added():
    arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    new = _template(**{ROLE: _role(ManagedPolicyArns=[arn]), "AppPolicy": _policy(READ)})
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + managed policy {arn}  [managed policy attached]"
    ]


def test_summary_reads_inline_role_policies_when_present():
    inline = [{"PolicyName": "p", "PolicyDocument": {"Statement": [_allow("sqs:*", "*")]}}]
    new = _template(**{ROLE: _role(Policies=inline), "AppPolicy": _policy(READ)})
    assert _widenings(BASE, new) == [
        f"WIDENING  IAM {ROLE}: + Allow sqs:* on *  [wildcard action, `*` resource]"
    ]


@pytest.mark.parametrize(
    ("principal", "reason"),
    [
        ({"AWS": "arn:aws:iam::111122223333:role/caller"}, "broader principal"),
        ({"AWS": "arn:aws:iam::111122223333:root"}, "a whole account"),
        ({"AWS": "111122223333"}, "a whole account"),
        ({"AWS": "*"}, "any principal"),
        ("*", "any principal"),
        ({"Service": "ec2.amazonaws.com"}, "broader principal"),
    ],
)
def test_summary_calls_a_new_trusted_principal_a_widening_when_added(principal, reason):
    new = copy.deepcopy(BASE)
    statements = new["Resources"][ROLE]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    statements.append({"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": principal})
    (line,) = _widenings(BASE, new)
    assert line.startswith(f"WIDENING  trust {ROLE}: + ")
    assert line.endswith(f"may sts:AssumeRole  [{reason}]")


def test_summary_calls_a_dropped_trust_condition_a_widening_when_removed():
    caller = {"AWS": "arn:aws:iam::111122223333:role/caller"}
    old = _template(**{ROLE: _role(caller)})
    old_statement = old["Resources"][ROLE]["Properties"]["AssumeRolePolicyDocument"]
    old_statement["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": "x"}}
    new = _template(**{ROLE: _role(caller)})
    (line,) = _widenings(old, new)
    assert line.endswith("[condition removed]")


def test_summary_lists_a_removed_trusted_principal_as_no_widening_when_narrowed():
    caller = {"AWS": ["arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:role/b"]}
    narrower = {"AWS": "arn:aws:iam::111122223333:role/a"}
    lines = _lines(_template(**{ROLE: _role(caller)}), _template(**{ROLE: _role(narrower)}))
    assert lines == [
        f"          trust {ROLE}: - AWS arn:aws:iam::111122223333:role/b may sts:AssumeRole"
    ]


def _url(auth: str, qualifier: str = "Dev") -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Url",
        "Properties": {
            "AuthType": auth,
            "Qualifier": qualifier,
            "TargetFunctionArn": {"Fn::GetAtt": ["Fn", "Arn"]},
        },
    }


def test_summary_calls_url_auth_none_a_widening_when_changed_or_added():
    iam_url, open_url = _template(Url=_url("AWS_IAM")), _template(Url=_url("NONE"))
    assert _widenings(iam_url, open_url) == [
        "WIDENING  URL Url: AuthType AWS_IAM → NONE  [auth NONE]"
    ]
    (added,) = _widenings(_template(), open_url)
    assert added == "WIDENING  URL Url: + URL with AuthType NONE on Fn.Arn:Dev  [auth NONE]"
    assert _widenings(_template(), iam_url) == []
    assert _widenings(open_url, iam_url) == []
    assert "          URL Url: Qualifier Dev → Live" in _lines(
        iam_url, _template(Url=_url("AWS_IAM", "Live"))
    )


def _permission(principal: str, **extra: Any) -> dict[str, Any]:
    properties = {
        "Action": "lambda:InvokeFunctionUrl",
        "FunctionName": {"Ref": "Alias"},
        "Principal": principal,
        **extra,
    }
    return {"Type": "AWS::Lambda::Permission", "Properties": properties}


@pytest.mark.parametrize(
    ("permission", "reason"),
    [
        (_permission("*", FunctionUrlAuthType="NONE"), "any principal, auth NONE"),
        (_permission("*"), "any principal"),
        (_permission("111122223333"), "broader principal"),
    ],
)
def test_summary_calls_a_resource_policy_grant_a_widening_when_added(permission, reason):
    (line,) = _widenings(_template(), _template(Perm=permission))
    assert line.startswith("WIDENING  permission Alias: + Action=lambda:InvokeFunctionUrl")
    assert line.endswith(f"[{reason}]")


def _function(**properties: Any) -> dict[str, Any]:
    defaults = {
        "Timeout": 30,
        "MemorySize": 1024,
        "Architectures": ["x86_64"],
        "Environment": {"Variables": {"MAX_ROWS": "10000", "LOG_LEVEL": "INFO"}},
        "Role": {"Fn::GetAtt": [ROLE, "Arn"]},
    }
    return {"Type": "AWS::Lambda::Function", "Properties": {**defaults, **properties}}


def test_summary_names_function_settings_without_widening_when_changed():
    new = _function(
        Timeout=3,
        MemorySize=2048,
        Architectures=["arm64"],
        Environment={"Variables": {"MAX_ROWS": "5", "DEBUG": "1"}},
        Role={"Fn::GetAtt": ["OtherRole", "Arn"]},
    )
    lines = _lines(_template(Fn=_function()), _template(Fn=new))
    assert sorted(lines) == sorted(
        f"          function Fn: {text}"
        for text in (
            "Timeout 30 → 3",
            "MemorySize 1024 → 2048",
            'Architectures ["x86_64"] → ["arm64"]',
            "Role AppRoleAB12CD34.Arn → OtherRole.Arn",
            "environment MAX_ROWS 10000 → 5",
            "environment DEBUG (none) → 1",
            "environment LOG_LEVEL INFO → (none)",
        )
    )


def test_summary_lists_added_and_removed_resources_when_changed():
    lines = _lines(_template(Old=_url("AWS_IAM")), _template(Queue={"Type": "AWS::SQS::Queue"}))
    assert "          resource Old: removed (AWS::Lambda::Url)" in lines
    assert "          resource Queue: added (AWS::SQS::Queue)" in lines


def test_render_puts_widenings_first_and_counts_them_when_mixed():
    new = _template(
        **{ROLE: _role(), "AppPolicy": _policy(READ, _allow("s3:*", "*"))},
        Fn=_function(Timeout=3),
    )
    old = _template(**{ROLE: _role(), "AppPolicy": _policy(READ)}, Fn=_function())
    rendered = render(security_diff(old, new)).splitlines()
    assert rendered[0] == "template changes: 2 (1 WIDENING)"
    assert rendered[1].startswith("WIDENING  IAM")
    assert rendered[2] == "          function Fn: Timeout 30 → 3"
