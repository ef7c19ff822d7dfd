"""The role that callers assume (through STS) to invoke the Function URL."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class InvokerRoleProps:
    # Empty: the account principal, as the original stack had it.
    trusted_principal_arns: tuple[str, ...]


class InvokerRole(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, props: InvokerRoleProps) -> None:
        super().__init__(scope, construct_id)
        principal: iam.IPrincipal
        if props.trusted_principal_arns:
            principal = iam.CompositePrincipal(
                *(iam.ArnPrincipal(arn) for arn in props.trusted_principal_arns)
            )
        else:
            principal = iam.AccountPrincipal(Stack.of(self).account)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=principal,
            description="Assumed by callers of the inference Function URL (SigV4, service lambda)",
        )
