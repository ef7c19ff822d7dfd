"""What the deployed handler sees of Lambda through the local Function URL: the runtime client's
LambdaContext, filled from the template and the URL's target.

The app is deployed from its real template and image context, with one throwaway module added to
a copy of that context (and COPYed by its Dockerfile) and the CMD pointed at it: it records the
context on a log line of its own, then calls the real `ml_handler.app.lambda_handler` unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from requests_aws4auth import AWS4Auth

from localurl.deploy import DeployedStack, LocalSystem
from localurl.synth import SynthesizedStack
from tests.aws_spec import STACK_MEMORY_MB, STACK_TIMEOUT_SECONDS

PROBE_MODULE = "context_probe"
PROBE_CODE = """
import json, sys

from ml_handler.app import lambda_handler as real_handler


def handler(event, context):
    seen = {
        "message": "context_probe",
        "type": type(context).__module__ + "." + type(context).__qualname__,
        "main": sys.modules["__main__"].__spec__.name,
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "log_group_name": context.log_group_name,
    }
    response = real_handler(event, context)
    print(json.dumps(seen), flush=True)
    return response
"""


@pytest.fixture(scope="module")
def synthesized(stand_in_assembly: SynthesizedStack) -> SynthesizedStack:
    return stand_in_assembly


@pytest.fixture(scope="module")
def probed(
    system: LocalSystem, synthesized: SynthesizedStack, tmp_path_factory: pytest.TempPathFactory
) -> DeployedStack:
    context = tmp_path_factory.mktemp("probe") / "asset"
    shutil.copytree(synthesized.image_asset_dir, context)
    (context / f"{PROBE_MODULE}.py").write_text(PROBE_CODE)
    # Sent to the build, as Docker would send it: the staged .dockerignore keeps a list.
    with (context / ".dockerignore").open("a") as ignore:
        ignore.write(f"\n!{PROBE_MODULE}.py\n")
    dockerfile = context / "Dockerfile"
    original = dockerfile.read_text()
    real_cmd = '"ml_handler.app.lambda_handler"'
    assert f"CMD [{real_cmd}]" in original
    # The task root holds only what the Dockerfile copies, as in the image: copy the probe too.
    probed_cmd = f'COPY {PROBE_MODULE}.py ${{LAMBDA_TASK_ROOT}}/\nCMD ["{PROBE_MODULE}.handler"]'
    dockerfile.write_text(original.replace(f"CMD [{real_cmd}]", probed_cmd))
    return system.deploy(dataclasses.replace(synthesized, image_asset_dir=context))


def signed(system: LocalSystem, deployed: DeployedStack, body: bytes) -> requests.Response:
    credentials = system.moto.client("sts").assume_role(
        RoleArn=deployed.role_arn, RoleSessionName="context-contract"
    )["Credentials"]
    auth = AWS4Auth(
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        system.region,
        "lambda",
        session_token=credentials["SessionToken"],
    )
    return requests.post(
        deployed.endpoint_url,
        data=body,
        headers={"content-type": "application/json"},
        auth=auth,
        timeout=30,
    )


def log_records(path: Path, message: str) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == message:
            records.append(record)
    return records


def test_handler_sees_the_real_lambda_context_of_the_url_invocation(
    system: LocalSystem,
    synthesized: SynthesizedStack,
    probed: DeployedStack,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN the app deployed behind its URL (alias Dev) WHEN two signed POSTs are answered
    THEN for each, the handler's context is awslambdaric's LambdaContext whose aws_request_id is
    the x-amzn-requestid the URL answered and the real handler logged, whose invoked ARN is the
    alias ARN the URL targets, with less time left than the template's timeout, and whose
    memory, version, name and log group are the deployed function's."""
    body = json.dumps(samples).encode()
    responses = [signed(system, probed, body) for _ in range(2)]
    for response in responses:
        assert response.status_code == 200, response.text
        assert len(response.json()) == len(samples)
    request_ids = [response.headers["x-amzn-requestid"] for response in responses]
    assert len(set(request_ids)) == 2

    lambda_ = system.moto.client("lambda")
    qualifier = probed.spec.url_qualifier
    assert qualifier is not None
    function_name = probed.function_arn.split(":")[6]
    function_arn = lambda_.get_function(FunctionName=function_name)["Configuration"]["FunctionArn"]
    version = lambda_.get_alias(FunctionName=function_name, Name=qualifier)["FunctionVersion"]
    assert version != "$LATEST"
    log_group = system.moto.client("cloudformation").describe_stack_resource(
        StackName=probed.stack_id,
        LogicalResourceId=probed.spec.log_group["Ref"],  # type: ignore[index]
    )["StackResourceDetail"]["PhysicalResourceId"]

    seen = {
        record["aws_request_id"]: record for record in log_records(probed.log_path, PROBE_MODULE)
    }
    handled = {record["request_id"] for record in log_records(probed.log_path, "request")}
    for request_id in request_ids:
        context = seen[request_id]
        assert request_id in handled
        assert context["type"] == "awslambdaric.lambda_context.LambdaContext"
        assert context["main"] == "awslambdaric.__main__"
        assert (
            context["invoked_function_arn"] == probed.function_arn == f"{function_arn}:{qualifier}"
        )
        # Invoked in the millisecond the deadline was set, the whole timeout remains.
        assert 0 < context["remaining_ms"] <= STACK_TIMEOUT_SECONDS * 1000
        assert context["memory_limit_in_mb"] == str(STACK_MEMORY_MB)
        assert context["function_name"] == function_name
        assert context["function_version"] == version
        assert context["log_group_name"] == log_group
