"""cdk-nag AwsSolutions (a validation plugin in 3.x), run by a synth with validation enabled.

The conftest starts the jsii kernel with CDK_VALIDATION=false; a user-registered
CloudFormationValidatePlugin runs regardless of it, so these synths include the built-in template
validation as `cdk synth` does.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk import CloudFormationValidatePlugin
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from infra.nag import KNOWN_FINDINGS, PACK_NAMESPACE, KnownFinding, acknowledge_known_findings


def _report(synthesized) -> list[dict]:
    report = json.loads((synthesized.assembly_dir / "validation-report.json").read_text())
    return list(report["pluginReports"])


@pytest.fixture(scope="module")
def synth_validated(synthesize_app):
    # One plugin instance for the module: it loads the resource schemas once (~3 s), then caches.
    template_validation = CloudFormationValidatePlugin()

    def synth(outdir, customize=None):
        return synthesize_app(outdir, customize=customize, plugins=(template_validation,))

    return synth


def _add_role_with_managed_policy_and_wildcard(stack) -> None:
    role = iam.Role(
        stack,
        "Careless",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AWSLambdaBasicExecutionRole"
            )
        ],
    )
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))


def _add_role_with_wildcard(stack) -> None:
    role = iam.Role(stack, "Careless", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))


def test_nag_reports_no_unacknowledged_finding_when_validation_is_enabled(
    synth_validated, tmp_path
):
    synthesized = synth_validated(tmp_path)
    reports = _report(synthesized)
    assert [(r["pluginName"], v["ruleName"]) for r in reports for v in r["violations"]] == []
    # Every acknowledgment in infra/nag.py still matches a finding (none is stale) and says why.
    suppressed = {
        (v["ruleName"], v["reason"])
        for r in reports
        if r["pluginName"] == PACK_NAMESPACE
        for v in r.get("suppressedViolations", [])
    }
    assert suppressed == {(f.rule_id, f.reason) for f in KNOWN_FINDINGS}
    assert all(f.reason.strip() for f in KNOWN_FINDINGS)


def test_nag_pack_finds_only_the_known_findings_when_run_on_the_app(synth):
    # The pack on its own (validate_scope), outside the synth's report plumbing. It does not read
    # the namespaced acknowledgments the report honours, so it returns the raw findings.
    report = AwsSolutionsChecks().validate_scope(synth.app)
    assert {v.rule_name for v in report.violations} == {f.rule_id for f in KNOWN_FINDINGS}


def test_nag_fails_the_synth_when_a_role_gains_a_managed_policy_and_a_wildcard(
    synth_validated, tmp_path
):
    with pytest.raises(RuntimeError) as raised:
        synth_validated(tmp_path, _add_role_with_managed_policy_and_wildcard)
    message = str(raised.value)
    assert "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/" in message
    assert "AwsSolutions-IAM5[Resource::*]" in message
    assert "InferenceStack/Careless" in message


def test_nag_passes_with_the_reason_on_record_when_the_finding_is_acknowledged(
    synth_validated, tmp_path
):
    finding = KnownFinding(
        path="Careless",
        rule_id="AwsSolutions-IAM5[Resource::*]",
        reason="test: reads any object of a bucket chosen at run time",
    )

    def customize(stack) -> None:
        _add_role_with_wildcard(stack)
        acknowledge_known_findings(stack, findings=[finding])

    synthesized = synth_validated(tmp_path, customize)
    (nag_report,) = [r for r in _report(synthesized) if r["pluginName"] == PACK_NAMESPACE]
    assert nag_report["violations"] == []
    (suppressed,) = nag_report["suppressedViolations"]
    assert suppressed["ruleName"] == finding.rule_id
    assert suppressed["reason"] == finding.reason
    assert suppressed["acknowledgedAt"] == "InferenceStack/Careless"


def test_acknowledgment_lands_on_the_nested_construct_when_the_path_has_parts(
    synthesize_app, tmp_path
):
    # Validation off (no plugin): the acknowledgment is construct metadata before any report.
    finding = KnownFinding(
        path="Inference/ExecutionRole", rule_id="AwsSolutions-IAM5[x]", reason="test: nested"
    )
    synthesized = synthesize_app(
        tmp_path, customize=lambda stack: acknowledge_known_findings(stack, findings=[finding])
    )
    role = synthesized.stack.inference.execution_role
    acknowledged = [m.data for m in role.node.metadata if m.type == "aws:cdk:acknowledged-rules"]
    assert acknowledged == [{"AwsSolutions::AwsSolutions-IAM5[x]": "test: nested"}]


def test_acknowledging_fails_loudly_when_the_construct_path_is_gone(synth):
    stale = KnownFinding(path="Inference/NoSuchRole", rule_id="AwsSolutions-IAM5[x]", reason="r")
    with pytest.raises(LookupError, match="Inference/NoSuchRole"):
        acknowledge_known_findings(synth.stack, findings=[stale])


def test_builtin_validation_fails_the_synth_when_a_property_is_out_of_range(
    synth_validated, tmp_path
):
    # Proves the template validation these synths claim to include really runs.
    def customize(stack) -> None:
        stack.inference.function.node.default_child.add_property_override("MemorySize", 64)

    with pytest.raises(RuntimeError) as raised:
        synth_validated(tmp_path, customize)
    assert "MemorySize: 64 is less than the minimum of 128" in str(raised.value)
    assert "(CloudFormation Validate)" in str(raised.value)
