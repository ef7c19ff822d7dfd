"""The inference stack: function, alias, IAM-authenticated URL, invoker role, outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from .config import StackConfig
from .inference_function import InferenceFunction, InferenceFunctionProps
from .invoker_role import InvokerRole, InvokerRoleProps
from .nag import acknowledge_known_findings


class InferenceStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, stack_name=config.stack_name, **kwargs)
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

        inference = InferenceFunction(
            self,
            "Inference",
            props=InferenceFunctionProps(
                handler_dir=config.handler_dir,
                function_name=config.function_name,
                alias_name=config.alias_name,
                architecture=config.architecture,
                memory_size=config.memory_size,
                timeout_seconds=config.timeout_seconds,
                log_retention_days=config.log_retention_days,
                max_rows=config.max_rows,
            ),
        )
        invoker = InvokerRole(
            self,
            "Invoker",
            props=InvokerRoleProps(trusted_principal_arns=config.invoker_principal_arns),
        )
        inference.grant_invoke_url(invoker.role)
        acknowledge_known_findings(self, execution_role=inference.execution_role)

        # Output names as the original TypeScript stack had them: existing clients read these.
        CfnOutput(self, "fnUrlRoleArn", value=invoker.role.role_arn)
        CfnOutput(self, "EndpointUrl", value=inference.url.url)
        CfnOutput(self, "Region", value=self.region)
        CfnOutput(self, "FunctionName", value=inference.function.function_name)
        CfnOutput(self, "AliasName", value=inference.alias.alias_name)

        self.inference = inference
        self.invoker = invoker
