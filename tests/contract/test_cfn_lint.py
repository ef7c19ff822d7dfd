"""cfn-lint on the synthesized templates: no errors, no warnings, only justified informational."""

from __future__ import annotations

import copy
import json

import pytest
from cfnlint.api import ManualArgs, lint

# Regions to lint for. Not cfn-lint's full list: Function URLs (AWS::Lambda::Url) do not exist in
# every region (E3006 names them), and this stack is only deployable where they do.
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"]

# Informational rules the templates are allowed to trigger, and why they are not acted on.
JUSTIFIED_INFORMATIONAL = {
    # CDK renders every ARN it builds as Fn::Join with an empty delimiter; the template is
    # generated, never edited, so the readability of Fn::Sub buys nothing.
    "I1022": "Prefer using Fn::Sub over Fn::Join with an empty delimiter",
    # Experimental: asks for free-text com.aws.cloudformation.Context metadata describing the
    # architecture for tools. CDK emits none; the rationale lives next to the code that needs it.
    "I4010": "missing Metadata.com.aws.cloudformation.Context",
}


def _lint(template: dict) -> list:
    return list(
        lint(
            json.dumps(template),
            config=ManualArgs(regions=REGIONS, include_checks=["I"], include_experimental=True),
        )
    )


def _describe(matches) -> list[str]:
    return [f"{m.rule.id} at {'/'.join(map(str, m.path))}: {m.message}" for m in matches]


@pytest.mark.parametrize("variant", ["synth", "synth_arm64", "synth_configured"])
def test_cfn_lint_finds_no_error_or_warning_when_configured(request, variant):
    matches = _lint(request.getfixturevalue(variant).template_dict)
    assert _describe(m for m in matches if m.rule.severity != "informational") == []
    unjustified = [m for m in matches if m.rule.id not in JUSTIFIED_INFORMATIONAL]
    assert _describe(unjustified) == []


def test_function_waits_for_its_log_permissions_when_default(synth_template):
    # The W3005 fix in infra must keep the dependency that matters: the logs policy before the
    # function, so the first invocations can write their logs.
    (function,) = synth_template.find_resources("AWS::Lambda::Function").values()
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy_id,) = synth_template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    assert function["DependsOn"] == [policy_id]


def test_cfn_lint_reports_errors_when_the_template_is_broken(synth_template_dict):
    broken = copy.deepcopy(synth_template_dict)
    (function_id,) = (
        rid for rid, r in broken["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    )
    broken["Resources"][function_id]["Properties"]["Timeout"] = 901
    del broken["Resources"][function_id]["Properties"]["Role"]
    errors = {
        tuple(map(str, m.path)): m.rule.id for m in _lint(broken) if m.rule.severity == "error"
    }
    assert ("Resources", function_id, "Properties", "Timeout") in errors, errors
    assert errors.get(("Resources", function_id, "Properties")) == "E3003", errors
