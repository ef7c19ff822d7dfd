"""A cheap stand-in for `cdk deploy`, for the rehearsal's fault-injection tests only.

Where the CLI's own behaviour is not what a test is about (the harness's teardown after a
failed readiness wait, its signal handling mid-deploy), a real `cdk deploy` costs a synth and
an asset publish for nothing. This reads the harness's exact command line, creates a small
stack (a log group) with the command's tags and name in the account AWS_ENDPOINT_URL points
at, and writes the outputs file. Run as a program (E2E_CDK_CLI) with FAKE_CDK_HANG=1 it then
waits, like a deploy CloudFormation is still working on, until it is interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import boto3

# Where the deployed "URL" points by default: nothing listens on the discard port.
UNREACHABLE_URL = "http://127.0.0.1:9/"


def deploy(command: list[str], env: Mapping[str, str], *, endpoint_url: str) -> dict[str, str]:
    context = {
        command[i + 1].split("=", 1)[0]: command[i + 1].split("=", 1)[1]
        for i, arg in enumerate(command)
        if arg == "-c"
    }
    stack_name = context["stackName"]
    tags = [
        {"Key": key, "Value": value}
        for key, value in (pair.split("=", 1) for pair in context["tags"].split(","))
    ]
    outputs = {
        "EndpointUrl": endpoint_url,
        "fnUrlRoleArn": f"arn:aws:iam::123456789012:role/{stack_name}-invoker",
    }
    template = {
        "Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cfn = boto3.client(
        "cloudformation",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template), Tags=tags)
    outputs_file = Path(command[command.index("--outputs-file") + 1])
    outputs_file.write_text(json.dumps({stack_name: outputs}))
    return outputs


def runner(*, endpoint_url: str = UNREACHABLE_URL):
    def run(command: list[str], env: Mapping[str, str], log: Path, timeout: float) -> None:
        del timeout
        log.write_text(f"fake cdk: {command[1:3]}\n")
        deploy(command, env, endpoint_url=endpoint_url)

    return run


def main(argv: list[str]) -> int:
    deploy(["cdk", *argv], os.environ, endpoint_url=UNREACHABLE_URL)
    print("fake cdk: stack created; CloudFormation still working", flush=True)
    while os.environ.get("FAKE_CDK_HANG"):
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
