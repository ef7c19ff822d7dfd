"""cdk-nag's AwsSolutions pack on every synth, and the findings this stack cannot avoid.

cdk-nag 3.x is a validation plugin, not an Aspect: it runs after synthesis, reports into the cloud
assembly's validation-report.json and fails the synth on an error-level finding. Acknowledgments
go through aws-cdk-lib's `Validations.of(...).acknowledge`, so each one stays in that report (as a
suppressed violation, with its reason) instead of disappearing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Stack, Stage, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

# The report's namespace for the pack's rules: the form `Acknowledge with '...'` prints.
PACK_NAMESPACE = "AwsSolutions"


@dataclass(frozen=True, kw_only=True)
class KnownFinding:
    # Construct path below the stack, e.g. "Inference/ExecutionRole".
    path: str
    # As the report names it, e.g. "AwsSolutions-IAM5[Resource::*]".
    rule_id: str
    reason: str


# None today: the execution role is scoped to its own log group (no AWSLambdaBasicExecutionRole,
# whose logs resource is "*"), the invoker policy names the alias ARN, and AwsSolutions' Lambda
# runtime rule does not apply to an image function. tests/contract/test_nag.py fails both on a new
# finding and on an entry here that no longer matches one.
KNOWN_FINDINGS: tuple[KnownFinding, ...] = ()


def enable_nag_checks(app: Stage) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge_known_findings(
    stack: Stack, *, findings: Sequence[KnownFinding] | None = None
) -> None:
    for finding in KNOWN_FINDINGS if findings is None else findings:
        Validations.of(_find(stack, finding.path)).acknowledge(
            Acknowledgment(id=f"{PACK_NAMESPACE}::{finding.rule_id}", reason=finding.reason)
        )


def _find(stack: Stack, path: str) -> IConstruct:
    node: IConstruct = stack
    for part in path.split("/"):
        child = node.node.try_find_child(part)
        if child is None:
            raise LookupError(f"known cdk-nag finding: no construct {path!r} in {stack.node.path}")
        node = child
    return node
