"""The inference stack: function, alias, IAM-authenticated URL, invoker role, outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from .config import StackConfig
from .inference_function import InferenceFunction, InferenceFunctionProps
from .invoker_role import InvokerRole, InvokerRoleProps
from .nag import acknowledge_known_findings


class InferenceStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: Any
    ) -> None:
        # Stack tags (not Tags.of(self)): with @aws-cdk/core:explicitStackTags only these reach the
        # stack itself, where CloudFormation propagates them and the e2e janitor looks for them.
        super().__init__(
            scope,
            construct_id,
            stack_name=config.stack_name,
            description="XGBoost inference Lambda behind an IAM-authenticated Function URL",
            tags=dict(config.tags) or None,
            **kwargs,
        )

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
        acknowledge_known_findings(self)

        # Output names as the original TypeScript stack had them: existing clients read these.
        CfnOutput(
            self,
            "fnUrlRoleArn",
            value=invoker.role.role_arn,
            description="Role to assume (STS) before signing requests to the URL",
        )
        CfnOutput(
            self,
            "EndpointUrl",
            value=inference.url.url,
            description="Function URL of the alias (AWS_IAM: SigV4-signed requests only)",
        )
        CfnOutput(self, "Region", value=self.region, description="Region to sign requests for")
        CfnOutput(self, "FunctionName", value=inference.function.function_name)
        CfnOutput(self, "AliasName", value=inference.alias.alias_name)

        self.inference = inference
        self.invoker = invoker
