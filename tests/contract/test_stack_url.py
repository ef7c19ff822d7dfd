"""The alias on the published version and the IAM-authenticated Function URL that targets it."""

from __future__ import annotations

from aws_cdk.assertions import Capture, Match


def _function_id(template) -> str:
    (function_id,) = template.find_resources("AWS::Lambda::Function")
    return function_id


def test_alias_is_named_dev_on_the_current_version_when_default(synth_template):
    function_id = _function_id(synth_template)
    version = Capture()
    synth_template.has_resource_properties(
        "AWS::Lambda::Alias",
        {
            "Name": "Dev",
            "FunctionName": {"Ref": function_id},
            "FunctionVersion": {"Fn::GetAtt": [version, "Version"]},
        },
    )
    # The version the alias points at is a published version of this very function.
    versions = synth_template.find_resources(
        "AWS::Lambda::Version", {"Properties": {"FunctionName": {"Ref": function_id}}}
    )
    assert version.as_string() in versions


def test_url_requires_iam_auth_when_default(synth_template):
    synth_template.resource_count_is("AWS::Lambda::Url", 1)
    synth_template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "AWS_IAM"})


def test_url_targets_the_alias_when_default(synth_template):
    function_id = _function_id(synth_template)
    synth_template.has_resource_properties(
        "AWS::Lambda::Url",
        {"Qualifier": "Dev", "TargetFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]}},
    )


def test_url_is_created_after_the_alias_when_default(synth_template):
    # The qualifier names the alias: CloudFormation must create the alias first.
    (alias_id,) = synth_template.find_resources("AWS::Lambda::Alias")
    synth_template.has_resource("AWS::Lambda::Url", {"DependsOn": Match.array_with([alias_id])})


def test_function_has_no_resource_policy_when_default(synth_template):
    # Callers get in through the invoker role's identity policy only; a resource-based permission
    # (what AuthType NONE needs, for principal "*") would be a second way in.
    synth_template.resource_count_is("AWS::Lambda::Permission", 0)
