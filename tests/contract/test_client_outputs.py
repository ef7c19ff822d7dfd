"""Where the client finds the endpoint, the role and the region: outputs files, CloudFormation,
the Function URL's host name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from client.endpoint import region_from_function_url, resolve_region
from client.errors import ConfigurationError
from client.outputs import StackOutputs, load_outputs_file, load_stack_outputs
from tests.contract.test_client_support import ACCOUNT_ID, REGION, trust_policy

URL = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/ml-xgboost-dev-InvokerRole-ABC123"
OUTPUTS = {
    "fnUrlRoleArn": ROLE,
    "EndpointUrl": URL,
    "Region": "eu-west-1",
    "FunctionName": "ml-xgboost-dev-Inference",
    "AliasName": "Dev",
}


def write_outputs(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    return path


def test_outputs_file_with_one_stack_gives_all_fields(tmp_path: Path) -> None:
    outputs = load_outputs_file(write_outputs(tmp_path, {"ml-xgboost-dev": OUTPUTS}))

    assert outputs == StackOutputs(
        endpoint_url=URL,
        role_arn=ROLE,
        region="eu-west-1",
        function_name="ml-xgboost-dev-Inference",
        alias_name="Dev",
        stack_name="ml-xgboost-dev",
    )


def test_outputs_file_stack_name_picks_among_several(tmp_path: Path) -> None:
    other = {**OUTPUTS, "EndpointUrl": "https://other.lambda-url.us-east-1.on.aws/"}
    path = write_outputs(tmp_path, {"a": OUTPUTS, "b": other})

    assert load_outputs_file(path, stack_name="b").endpoint_url == other["EndpointUrl"]
    with pytest.raises(ConfigurationError, match="--stack-name"):
        load_outputs_file(path)


def test_outputs_file_ignores_stacks_without_the_apps_outputs(tmp_path: Path) -> None:
    """`cdk deploy --all` writes every stack; only one of them has the URL and role."""
    path = write_outputs(tmp_path, {"Network": {"VpcId": "vpc-1"}, "ml": OUTPUTS})

    assert load_outputs_file(path).stack_name == "ml"


@pytest.mark.parametrize(
    ("document", "stack_name", "message"),
    [
        ({"ml": {**OUTPUTS, "fnUrlRoleArn": None}}, "ml", "lacks output.*fnUrlRoleArn"),
        ({"ml": {"Region": "eu-west-1"}}, "ml", "EndpointUrl, fnUrlRoleArn"),
        ({"ml": OUTPUTS}, "missing", r"'missing' not in .*\(it has: ml\)"),
        ({"Network": {"VpcId": "vpc-1"}}, None, "no stack .* has the outputs"),
        ({}, None, "stacks: none"),
        ([OUTPUTS], None, "not a `cdk deploy --outputs-file` file"),
        ({"ml": "not an object"}, None, "not a `cdk deploy --outputs-file` file"),
    ],
)
def test_unusable_outputs_files_are_explained(
    tmp_path: Path, document: Any, stack_name: str | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_outputs_file(write_outputs(tmp_path, document), stack_name=stack_name)


def test_missing_or_malformed_outputs_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_outputs_file(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read outputs file"):
        load_outputs_file(broken)


@pytest.fixture
def cloudformation() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def deploy_stack_with_outputs(cloudformation: Any, name: str, url: str) -> str:
    """A stack whose role output is computed by CloudFormation, as the real one's is."""
    template = {
        "Resources": {
            "Invoker": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": json.loads(trust_policy())},
            }
        },
        "Outputs": {
            "fnUrlRoleArn": {"Value": {"Fn::GetAtt": ["Invoker", "Arn"]}},
            "EndpointUrl": {"Value": url},
            "Region": {"Value": {"Ref": "AWS::Region"}},
            "FunctionName": {"Value": "fn"},
            "AliasName": {"Value": "Dev"},
        },
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    outputs = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "fnUrlRoleArn")


def test_stack_outputs_are_read_from_cloudformation(cloudformation: Any) -> None:
    role_arn = deploy_stack_with_outputs(cloudformation, "ml-xgboost-dev", URL)

    outputs = load_stack_outputs("ml-xgboost-dev", cloudformation_client=cloudformation)

    assert outputs.role_arn == role_arn
    assert role_arn.startswith(f"arn:aws:iam::{ACCOUNT_ID}:role/")
    assert (outputs.endpoint_url, outputs.region, outputs.alias_name) == (URL, REGION, "Dev")
    assert outputs.stack_name == "ml-xgboost-dev"


def test_missing_stack_in_cloudformation_is_explained(cloudformation: Any) -> None:
    with pytest.raises(ConfigurationError, match="stack 'absent' does not exist"):
        load_stack_outputs("absent", cloudformation_client=cloudformation)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (URL, "eu-west-1"),
        ("https://abc123.lambda-url.us-east-1.on.aws", "us-east-1"),
        ("https://abc123.lambda-url.ap-southeast-2.on.aws/path?x=1", "ap-southeast-2"),
        ("https://abc123.lambda-url.us-gov-west-1.on.aws/", "us-gov-west-1"),
        ("https://abc123.lambda-url.cn-north-1.on.amazonwebservices.com.cn/", "cn-north-1"),
        ("http://127.0.0.1:8080/", None),
        ("https://example.com/", None),
        ("https://abc123.lambda-url.eu-west-1.on.aws.evil.example/", None),
        ("https://lambda-url.eu-west-1.on.aws/", None),
    ],
)
def test_region_is_parsed_from_function_url_host(url: str, region: str | None) -> None:
    assert region_from_function_url(url) == region


def test_region_precedence_is_explicit_then_url_then_outputs() -> None:
    local = "http://127.0.0.1:9000/"
    assert resolve_region(explicit="us-west-2", endpoint_url=URL, fallback="x") == "us-west-2"
    assert resolve_region(explicit=None, endpoint_url=URL, fallback="us-west-2") == "eu-west-1"
    assert resolve_region(explicit=None, endpoint_url=local, fallback="us-west-2") == "us-west-2"
    with pytest.raises(ConfigurationError, match="--region"):
        resolve_region(explicit=None, endpoint_url=local)
