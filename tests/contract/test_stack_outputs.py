"""The stack outputs existing clients read: names and the resources their values point at."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from infra.application import add_inference_stack
from infra.config import StackConfig

OUTPUT_NAMES = {"fnUrlRoleArn", "EndpointUrl", "Region", "FunctionName", "AliasName"}


def _outputs(template) -> dict[str, dict]:
    return dict(template.to_json().get("Outputs", {}))


def test_outputs_are_exactly_the_five_clients_read_when_default(synth_template):
    assert set(_outputs(synth_template)) == OUTPUT_NAMES


def test_outputs_are_not_exported_when_default(synth_template):
    # An export name is a physical name: two copies of the stack would collide on it.
    assert [name for name, output in _outputs(synth_template).items() if "Export" in output] == []


def test_role_output_is_the_role_holding_the_url_grant_when_default(synth_template):
    (grant,) = synth_template.find_resources(
        "AWS::IAM::Policy",
        {
            "Properties": {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Action": "lambda:InvokeFunctionUrl"})]
                    )
                }
            }
        },
    ).values()
    (role,) = grant["Properties"]["Roles"]
    synth_template.has_output("fnUrlRoleArn", {"Value": {"Fn::GetAtt": [role["Ref"], "Arn"]}})


def test_endpoint_output_is_the_function_url_when_default(synth_template):
    (url_id,) = synth_template.find_resources("AWS::Lambda::Url")
    synth_template.has_output("EndpointUrl", {"Value": {"Fn::GetAtt": [url_id, "FunctionUrl"]}})


def test_region_output_is_the_deployment_region_when_default(synth_template):
    synth_template.has_output("Region", {"Value": {"Ref": "AWS::Region"}})


def test_function_name_output_is_the_function_when_default(synth_template):
    (function_id,) = synth_template.find_resources("AWS::Lambda::Function")
    synth_template.has_output("FunctionName", {"Value": {"Ref": function_id}})


def test_alias_name_output_is_the_alias_name_when_default(synth_template):
    (alias,) = synth_template.find_resources("AWS::Lambda::Alias").values()
    synth_template.has_output("AliasName", {"Value": alias["Properties"]["Name"]})
    synth_template.has_output("AliasName", {"Value": "Dev"})


def test_stack_takes_the_cli_environment_when_one_is_given(tmp_path):
    # GIVEN the account and region app.py reads from the CDK CLI (CDK_DEFAULT_ACCOUNT/REGION)
    app = cdk.App(outdir=str(tmp_path))
    env = cdk.Environment(account="111122223333", region="eu-west-1")
    # WHEN the app composes the stack with it
    stack = add_inference_stack(app, config=StackConfig(), env=env)
    template = Template.from_stack(stack)
    # THEN the stack is bound to them: the Region output is the region itself, not a Ref
    assert (stack.account, stack.region) == ("111122223333", "eu-west-1")
    template.has_output("Region", {"Value": "eu-west-1"})
