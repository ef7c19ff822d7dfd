"""Config → template: every configured value lands in its template property, output or manifest.

One property test over valid configurations (tests/contract/config_cases.py): each example
synthesizes the app in-process, in the session's one jsii kernel (about 0.1 s a synth), from
context as `-c` strings or cdk.json values, and finds each key's value where it must act. A stack
that ignores any one configured value (uses the default instead) fails here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match
from hypothesis import HealthCheck, example, given, settings

from tests.contract.config_cases import ConfigCase, case_from_cli_strings, config_cases
from tests.e2e.configuration import E2E_CONFIGURED_CONTEXT

# Synths per session: the explicit examples plus these. The CI profile derandomizes them, so a red
# run replays; the dev profile draws fresh ones each run.
SYNTH_EXAMPLES = max(8, min(settings.default.max_examples // 4, 30))

ACCOUNT_ROOT = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
    ]
}
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}

EVERY_KEY_AS_JSON = ConfigCase(
    context={
        "stackName": "ml-xgboost-json",
        "functionName": "ML-XGBoost",
        "aliasName": "Prod",
        "architecture": "arm64",
        "memorySize": 3008,
        "timeoutSeconds": 900,
        "logRetentionDays": 365,
        "maxRows": 1,
        "invokerPrincipals": [
            "arn:aws:iam::111122223333:role/ml-caller",
            "arn:aws:iam::444455556666:user/path/analyst",
        ],
        "tags": {"cost-center": "ml", "owner": "data-science"},
    },
    expected={
        "stackName": "ml-xgboost-json",
        "functionName": "ML-XGBoost",
        "aliasName": "Prod",
        "architecture": "arm64",
        "memorySize": 3008,
        "timeoutSeconds": 900,
        "logRetentionDays": 365,
        "maxRows": 1,
        "invokerPrincipals": (
            "arn:aws:iam::111122223333:role/ml-caller",
            "arn:aws:iam::444455556666:user/path/analyst",
        ),
        "tags": {"cost-center": "ml", "owner": "data-science"},
    },
)
EVERY_KEY_AS_CLI = case_from_cli_strings(
    {
        "stackName": "MlXgboostCli",
        "functionName": "ml_fn-1",
        "aliasName": "v2",
        "architecture": "arm64",
        "memorySize": "128",
        "timeoutSeconds": "1",
        "logRetentionDays": "1",
        "maxRows": "9999999",
        "invokerPrincipals": "arn:aws:iam::111122223333:role/a",
        "tags": "team=ml,env=",
    }
)


def _only(template: Any, resource_type: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    return next(iter(resources.items()))


def _captured(capture: Capture) -> Any:
    # Capture hands out a value only through its type's accessor.
    for accessor in (capture.as_string, capture.as_array, capture.as_object):
        try:
            return accessor()
        except RuntimeError:
            continue
    raise AssertionError("captured neither a string, an array nor an object")


def _assert_config_lands(synthesized: Any, case: ConfigCase) -> None:
    template = synthesized.template
    artifact = synthesized.stack_artifact

    # The stack's name and tags are the cloud assembly's, not the template's.
    assert artifact.stack_name == case.value("stackName")
    assert artifact.tags == case.value("tags")

    function_id, _ = _only(template, "AWS::Lambda::Function")
    function_name = case.value("functionName")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": Match.absent() if function_name is None else function_name,
            "Architectures": [case.value("architecture")],
            "MemorySize": case.value("memorySize"),
            "Timeout": case.value("timeoutSeconds"),
            "Environment": {"Variables": Match.exact({"MAX_ROWS": str(case.value("maxRows"))})},
        },
    )
    template.has_output("FunctionName", {"Value": {"Ref": function_id}})
    (image,) = synthesized.image_assets
    assert image["source"]["platform"] == PLATFORMS[case.value("architecture")]

    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": case.value("logRetentionDays")}
    )

    # The alias, the URL's qualifier, the output clients read and the grant name the one alias.
    alias = case.value("aliasName")
    alias_id, _ = _only(template, "AWS::Lambda::Alias")
    template.has_resource_properties(
        "AWS::Lambda::Alias", {"Name": alias, "FunctionName": {"Ref": function_id}}
    )
    template.has_resource_properties(
        "AWS::Lambda::Url",
        {
            "AuthType": "AWS_IAM",
            "Qualifier": alias,
            "TargetFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]},
        },
    )
    template.has_output("AliasName", {"Value": alias})
    granted = Capture()
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": "lambda:InvokeFunctionUrl", "Resource": granted})]
                )
            }
        },
    )
    assert _captured(granted) == {"Ref": alias_id}

    principal = Capture()
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "Description": Match.string_like_regexp("callers of the inference Function URL"),
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": principal}}
                ]
            },
        },
    )
    principals = case.value("invokerPrincipals")
    trusted = _captured(principal)
    if principals:
        # One principal renders as a string, several as a list (duplicates merged).
        assert sorted(trusted if isinstance(trusted, list) else [trusted]) == sorted(
            set(principals)
        )
    else:
        assert trusted == ACCOUNT_ROOT


@pytest.fixture(scope="module")
def synth_case(synthesize_app, tmp_path_factory):
    root = tmp_path_factory.mktemp("config-cases")

    def synth(case: ConfigCase) -> None:
        # Not tmp_path: one directory per example, removed after it (each holds a staged image).
        with tempfile.TemporaryDirectory(dir=root) as outdir:
            _assert_config_lands(synthesize_app(Path(outdir), dict(case.context)), case)

    return synth


@settings(max_examples=SYNTH_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(case=config_cases())
@example(case=ConfigCase(context={}))
@example(case=case_from_cli_strings(E2E_CONFIGURED_CONTEXT))
@example(case=EVERY_KEY_AS_JSON)
@example(case=EVERY_KEY_AS_CLI)
def test_every_configured_value_lands_in_the_template_when_valid(synth_case, case):
    """Property: for any valid context (each key absent, a `-c` string or a cdk.json value),
    the synthesized template, outputs and manifest carry each key's value, and the documented
    default where the key is absent."""
    synth_case(case)
