"""Where the endpoint and the role come from: the stack's outputs, from a file or CloudFormation.

Output names are the ones the original TypeScript stack used and `infra/stack.py` keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import botocore.exceptions as bx

from .aws_errors import error_code, error_message, translate_aws_error
from .errors import ConfigurationError, ServerError
from .redaction import withhold_sdk_debug_logs

OUTPUT_ROLE_ARN: Final = "fnUrlRoleArn"
OUTPUT_ENDPOINT_URL: Final = "EndpointUrl"
OUTPUT_REGION: Final = "Region"
OUTPUT_FUNCTION_NAME: Final = "FunctionName"
OUTPUT_ALIAS_NAME: Final = "AliasName"
REQUIRED_OUTPUTS: Final = (OUTPUT_ENDPOINT_URL, OUTPUT_ROLE_ARN)


@dataclass(frozen=True, kw_only=True)
class StackOutputs:
    endpoint_url: str
    role_arn: str
    region: str | None = None
    function_name: str | None = None
    alias_name: str | None = None
    stack_name: str | None = None

    @classmethod
    def from_mapping(
        cls, outputs: Mapping[str, object], *, stack_name: str | None = None
    ) -> StackOutputs:
        """From {output name: value}; ConfigurationError naming any required output missing."""
        where = f"stack {stack_name!r}" if stack_name else "the stack outputs"
        missing = [key for key in REQUIRED_OUTPUTS if not isinstance(outputs.get(key), str)]
        if missing:
            raise ConfigurationError(f"{where} lacks output(s) {', '.join(missing)}")

        def optional(key: str) -> str | None:
            value = outputs.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            endpoint_url=str(outputs[OUTPUT_ENDPOINT_URL]),
            role_arn=str(outputs[OUTPUT_ROLE_ARN]),
            region=optional(OUTPUT_REGION),
            function_name=optional(OUTPUT_FUNCTION_NAME),
            alias_name=optional(OUTPUT_ALIAS_NAME),
            stack_name=stack_name,
        )


def load_outputs_file(path: str | Path, *, stack_name: str | None = None) -> StackOutputs:
    """Read `cdk deploy --outputs-file` JSON: {"<stack>": {"<output>": "<value>", ...}, ...}.

    Without `stack_name`, the file must hold exactly one stack with this app's outputs.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"outputs file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read outputs file {path}: {exc}") from None
    if not isinstance(document, dict) or not all(isinstance(v, dict) for v in document.values()):
        raise ConfigurationError(
            f"{path} is not a `cdk deploy --outputs-file` file ({{stack: {{output: value}}}})"
        )
    if stack_name is not None:
        if stack_name not in document:
            raise ConfigurationError(
                f"stack {stack_name!r} not in {path} (it has: {_names(document)})"
            )
        return StackOutputs.from_mapping(document[stack_name], stack_name=stack_name)
    candidates = [
        name
        for name, outputs in document.items()
        if all(isinstance(outputs.get(key), str) for key in REQUIRED_OUTPUTS)
    ]
    if len(candidates) == 1:
        return StackOutputs.from_mapping(document[candidates[0]], stack_name=candidates[0])
    if not candidates:
        raise ConfigurationError(
            f"no stack in {path} has the outputs {' and '.join(REQUIRED_OUTPUTS)} "
            f"(stacks: {_names(document)})"
        )
    raise ConfigurationError(
        f"{path} has several stacks with these outputs ({', '.join(candidates)}): "
        "pick one with --stack-name"
    )


def load_stack_outputs(
    stack_name: str,
    *,
    cloudformation_client: Any,  # a boto3 client: untyped here
) -> StackOutputs:
    """The outputs of a deployed stack, from CloudFormation DescribeStacks."""
    action = f"reading the outputs of stack {stack_name!r}"
    try:
        with withhold_sdk_debug_logs():
            stacks = cloudformation_client.describe_stacks(StackName=stack_name)["Stacks"]
    except bx.ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            raise ConfigurationError(f"stack {stack_name!r} does not exist") from None
        raise _translated(exc, action) from None
    except bx.BotoCoreError as exc:
        raise _translated(exc, action) from None
    if not stacks:
        raise ConfigurationError(f"stack {stack_name!r} does not exist")
    outputs = {
        str(item["OutputKey"]): str(item["OutputValue"])
        for item in stacks[0].get("Outputs", [])
        if "OutputKey" in item and "OutputValue" in item
    }
    return StackOutputs.from_mapping(outputs, stack_name=stack_name)


def _names(document: Mapping[str, object]) -> str:
    return ", ".join(sorted(document)) or "none"


def _translated(exc: Exception, action: str) -> Exception:
    return translate_aws_error(exc, action=action) or ServerError(f"{action}: {exc}")
