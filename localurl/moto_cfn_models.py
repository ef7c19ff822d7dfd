"""CloudFormation models moto lacks: AWS::Lambda::Alias and AWS::Lambda::Url; and the stack
outputs moto forgets when a change set (what the CDK CLI deploys with) creates the stack.

moto builds its resource-type map from CloudFormationModel subclasses, cached: defining the
classes here and clearing that cache registers them. Ref/GetAtt follow CloudFormation's docs.
"""

from __future__ import annotations

import contextlib
import secrets
import string
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from moto.awslambda.exceptions import UnknownAliasException, UnknownFunctionException
from moto.awslambda.models import LambdaVersion, lambda_backends
from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend
from moto.core.common_models import CloudFormationModel


@dataclass(frozen=True, kw_only=True)
class UrlRecord:
    url: str
    url_id: str
    function_arn: str
    qualifier: str | None
    auth_type: str
    stack_id: str


class UrlRegistry:
    """Where the local endpoint for a stack lives, and the URL resources created for it."""

    _lock = threading.Lock()
    _endpoints: ClassVar[dict[str, str]] = {}
    _urls: ClassVar[dict[str, UrlRecord]] = {}

    @classmethod
    def expect_stack(cls, stack_name: str, base_url: str) -> None:
        with cls._lock:
            cls._endpoints[stack_name] = base_url

    @classmethod
    def forget_stack(cls, stack_name: str) -> None:
        with cls._lock:
            cls._endpoints.pop(stack_name, None)
            for key in [k for k, v in cls._urls.items() if _stack_name(v.stack_id) == stack_name]:
                del cls._urls[key]

    @classmethod
    def endpoint_for(cls, stack_id: str) -> str:
        name = _stack_name(stack_id)
        with cls._lock:
            try:
                return cls._endpoints[name]
            except KeyError:
                raise RuntimeError(
                    f"no local endpoint was reserved for stack {name!r}: deploy it with "
                    "localurl.deploy, which starts the endpoint first"
                ) from None

    @classmethod
    def add(cls, record: UrlRecord) -> None:
        with cls._lock:
            cls._urls[record.url] = record

    @classmethod
    def for_stack(cls, stack_name: str) -> list[UrlRecord]:
        with cls._lock:
            return [r for r in cls._urls.values() if _stack_name(r.stack_id) == stack_name]


def _stack_name(stack_id: str) -> str:
    # arn:aws:cloudformation:us-east-1:123456789012:stack/NAME/uuid
    return stack_id.split(":stack/", 1)[-1].split("/", 1)[0]


class LocalLambdaAlias(CloudFormationModel):
    def __init__(self, *, arn: str, name: str, function_name: str) -> None:
        self.arn = arn
        self.name = name
        self.function_name = function_name

    @property
    def physical_resource_id(self) -> str:
        return self.arn  # Ref of an alias is its ARN

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("AliasArn",)

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "AliasArn":
            return self.arn
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalLambdaAlias:
        del resource_name, kwargs
        props = cloudformation_json["Properties"]
        alias = lambda_backends[account_id][region_name].create_alias(
            name=props["Name"],
            function_name=props["FunctionName"],
            function_version=str(props["FunctionVersion"]),
            description=props.get("Description", ""),
            routing_config=props.get("RoutingConfig"),
        )
        return cls(arn=alias.arn, name=props["Name"], function_name=props["FunctionName"])

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        del resource_name
        props = cloudformation_json["Properties"]
        _delete_alias(account_id, region_name, props["Name"], props["FunctionName"])

    def delete(self, account_id: str, region_name: str) -> None:
        _delete_alias(account_id, region_name, self.name, self.function_name)

    def is_created(self) -> bool:
        return True


def _delete_alias(account_id: str, region_name: str, name: str, function_name: str) -> None:
    # moto deletes the stack's resources in no dependency order: the function may be gone
    # already, and its aliases with it.
    with contextlib.suppress(UnknownFunctionException, UnknownAliasException):
        lambda_backends[account_id][region_name].delete_alias(name, function_name)


class LocalLambdaUrl(CloudFormationModel):
    def __init__(self, record: UrlRecord) -> None:
        self.record = record

    @property
    def physical_resource_id(self) -> str:
        return self.record.function_arn  # Ref of a URL is the function ARN

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Url"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("FunctionArn", "FunctionUrl")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "FunctionUrl":
            return self.record.url
        if attribute_name == "FunctionArn":
            return self.record.function_arn
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LocalLambdaUrl:
        del resource_name, account_id, region_name
        props = cloudformation_json["Properties"]
        stack_id = str(kwargs["StackId"])
        alphabet = string.ascii_lowercase + string.digits
        record = UrlRecord(
            url=UrlRegistry.endpoint_for(stack_id),
            url_id="".join(secrets.choice(alphabet) for _ in range(32)),
            function_arn=props["TargetFunctionArn"],
            qualifier=props.get("Qualifier"),
            auth_type=props["AuthType"],
            stack_id=stack_id,
        )
        UrlRegistry.add(record)
        return cls(record)

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        del resource_name, cloudformation_json, account_id, region_name

    def delete(self, account_id: str, region_name: str) -> None:
        del account_id, region_name

    def is_created(self) -> bool:
        return True


def _version_attribute(self: LambdaVersion, attribute_name: str) -> str:
    # moto's Version model answers no GetAtt; CDK's alias uses Fn::GetAtt [Version, "Version"].
    if attribute_name == "Version":
        return str(self.version)
    raise NotImplementedError(attribute_name)


_original_execute_change_set = CloudFormationBackend.execute_change_set


def _execute_change_set_with_outputs(
    self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
) -> None:
    # moto creates the stack for a CREATE change set with an empty template and, executing the
    # set, creates the resources but keeps the empty output map: DescribeStacks (and so
    # `cdk deploy --outputs-file`) would show no outputs. Rebuild it from the executed template.
    _original_execute_change_set(self, change_set_name, stack_name)
    for change_set in self.change_sets.values():
        stack = self.stacks.get(change_set.stack_id)
        named = change_set_name in (change_set.change_set_id, change_set.change_set_name)
        if stack is None or not named or stack_name not in (None, stack.name, stack.stack_id):
            continue
        stack._parse_template()
        stack.output_map = stack._create_output_map()


_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    LambdaVersion.get_cfn_attribute = _version_attribute  # type: ignore[attr-defined]
    CloudFormationBackend.execute_change_set = _execute_change_set_with_outputs  # type: ignore[method-assign]
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    _registered = True
