"""The container-image function, its log group, execution role, alias and IAM-authenticated URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aws_cdk import CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import Architecture

# DockerImageFunction builds the image asset for the function's architecture (linux/amd64 or
# linux/arm64): an image for the other one would fail at invoke with "exec format error".
_ARCHITECTURES = {
    Architecture.X86_64: lambda_.Architecture.X86_64,
    Architecture.ARM64: lambda_.Architecture.ARM_64,
}


@dataclass(frozen=True, kw_only=True)
class InferenceFunctionProps:
    handler_dir: Path
    function_name: str | None
    alias_name: str
    architecture: Architecture
    memory_size: int
    timeout_seconds: int
    log_retention_days: int
    max_rows: int


class InferenceFunction(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, props: InferenceFunctionProps
    ) -> None:
        super().__init__(scope, construct_id)
        architecture = _ARCHITECTURES[props.architecture]

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=RETENTION_BY_DAYS[props.log_retention_days],
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A role of our own instead of AWSLambdaBasicExecutionRole, whose logs:* resource is "*".
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Execution role of the XGBoost inference function: its own log group only",
        )
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            function_name=props.function_name,
            description="XGBoost wine-quality inference behind an IAM-authenticated Function URL",
            code=lambda_.DockerImageCode.from_image_asset(str(props.handler_dir)),
            architecture=architecture,
            memory_size=props.memory_size,
            timeout=Duration.seconds(props.timeout_seconds),
            role=self.execution_role,
            log_group=self.log_group,
            environment={"MAX_ROWS": str(props.max_rows)},
        )
        # CDK makes the function depend on the whole role construct, so that the log permissions
        # exist before the first invoke. Its role half repeats what the GetAtt in Role already
        # orders (cfn-lint W3005): depend on the policy alone.
        policy = cast(
            CfnResource, self.execution_role.node.find_child("DefaultPolicy").node.default_child
        )
        cfn_function = cast(CfnResource, self.function.node.default_child)
        cfn_function.add_override("DependsOn", [policy.logical_id])

        self.alias = lambda_.Alias(
            self, "Alias", alias_name=props.alias_name, version=self.function.current_version
        )
        # The URL targets the alias, not the function: callers keep one URL while a release moves
        # the alias to a new version (or back), and nobody invokes an unpublished $LATEST.
        self.url = self.alias.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)

    def grant_invoke_url(self, grantee: iam.IGrantable) -> iam.Grant:
        # aws-cdk-lib >= 2.220 emits both statements AWS requires since October 2025:
        # lambda:InvokeFunctionUrl (FunctionUrlAuthType) and lambda:InvokeFunction
        # (InvokedViaFunctionUrl), scoped to the alias this URL serves.
        return self.url.grant_invoke_url(grantee)


# CDK takes an enum, the config a number of days (config.LOG_RETENTION_DAYS lists the same keys).
RETENTION_BY_DAYS: Mapping[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}
