"""Template snapshots (syrupy) of each configuration the tests use, with a security summary.

The snapshot is the normalized template (tests/contract/template_diff.py: no asset hashes, no
logical-ID hashes, no CDK metadata), so a handler edit leaves it alone and any infrastructure
change fails it. The failure, and the update command, print what changed for security and
behaviour, widenings first. Update, once the summary is reviewed:

    ./dev run -e contract -- --snapshot-update -k snapshot
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from syrupy.extensions.json import JSONSnapshotExtension

from infra.application import add_inference_stack
from infra.config import StackConfig
from infra.nag import KnownFinding, acknowledge_known_findings
from tests.contract.template_diff import normalize, render, security_diff
from tests.e2e.configuration import E2E_CONFIGURED_CONTEXT

ROOT = Path(__file__).resolve().parents[2]
UPDATE_COMMAND = "./dev run -e contract -- --snapshot-update -k snapshot"

# The configurations the contract and e2e layers deploy: the default and the e2e's second one
# (the very context tests/e2e deploys, so the snapshot covers what the e2e layer observes).
SNAPSHOT_CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "e2e-non-default": dict(E2E_CONFIGURED_CONTEXT),
}


class TemplateSnapshotExtension(JSONSnapshotExtension):
    """syrupy's JSON snapshots, with the security summary above the line diff of a mismatch."""

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        try:
            old, new = json.loads(str(snapshot_data)), json.loads(str(serialized_data))
        except ValueError:
            pass  # no stored snapshot yet: syrupy says so
        else:
            yield from render(security_diff(old, new)).splitlines()
            yield f"reviewed? update the snapshot: {UPDATE_COMMAND}"
        yield from super().diff_lines(serialized_data, snapshot_data)


def _stored(snapshot: Any) -> dict[str, Any] | None:
    location = Path(snapshot.extension.get_location(test_location=snapshot.test_location, index=0))
    return json.loads(location.read_text()) if location.exists() else None


@pytest.fixture(scope="module")
def normalized_templates(synth, synthesize_app, tmp_path_factory) -> dict[str, dict[str, Any]]:
    # The default reuses the session's synth; the other configuration costs one.
    return {
        name: normalize(
            synth.template_dict
            if not context
            else synthesize_app(tmp_path_factory.mktemp(f"cdk.out.{name}"), context).template_dict
        )
        for name, context in SNAPSHOT_CONFIGS.items()
    }


@pytest.mark.parametrize("config", SNAPSHOT_CONFIGS)
def test_template_matches_the_snapshot_when_synthesized(
    config, normalized_templates, snapshot, capsys
):
    template_snapshot = snapshot.use_extension(TemplateSnapshotExtension)
    normalized = normalized_templates[config]
    stored = _stored(template_snapshot)
    if template_snapshot.update_snapshots and stored != normalized:
        # The update command shows what it accepts, in the terminal even under output capture.
        summary = render(security_diff(stored or {}, normalized))
        with capsys.disabled():
            print(f"\n{config} template snapshot updated; {summary}")
    assert normalized == template_snapshot


def test_snapshot_summary_of_the_e2e_configuration_names_its_settings_when_compared(
    normalized_templates,
):
    lines = render(
        security_diff(normalized_templates["default"], normalized_templates["e2e-non-default"])
    ).splitlines()
    changes = {line.split(": ", 1)[-1] for line in lines[1:]}
    configured = E2E_CONFIGURED_CONTEXT
    # From the default (the README's table) to each configured value.
    assert {
        f"Timeout 30 → {configured['timeoutSeconds']}",
        f"MemorySize 1024 → {configured['memorySize']}",
        f"environment MAX_ROWS 10000 → {configured['maxRows']}",
        f"alias Name Dev → {configured['aliasName']}",
        f"Qualifier Dev → {configured['aliasName']}",
    } <= changes, lines
    assert not any(line.startswith("WIDENING") for line in lines), lines


def _synth_with_handler(handler_dir: Path, outdir: Path) -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(context=context, outdir=str(outdir))
    config = dataclasses.replace(
        StackConfig.from_context(app.node.try_get_context), handler_dir=handler_dir
    )
    stack = add_inference_stack(app, config=config)
    return dict(app.synth().get_stack_artifact(stack.artifact_id).template)


def test_snapshot_is_untouched_by_a_handler_edit_when_normalized(synth, tmp_path):
    # GIVEN a copy of handler/ with an edited handler module
    handler = tmp_path / "handler"
    shutil.copytree(ROOT / "handler", handler, ignore=shutil.ignore_patterns("__pycache__"))
    app_module = handler / "ml_handler" / "app.py"
    app_module.write_text(app_module.read_text() + "\n# an edit\n")
    # WHEN the app is synthesized from it
    edited = _synth_with_handler(handler, tmp_path / "cdk.out")
    # THEN the raw template changed (new asset, new version) and the normalized one did not
    assert edited != synth.template_dict
    assert normalize(edited) == normalize(synth.template_dict)


def _widen_everything(stack: Any) -> None:
    inference = stack.inference
    # A grant with a new action on "*", an attached managed policy, a second trusted principal,
    # the URL opened to anyone, and a resource policy for any principal.
    inference.execution_role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])
    )
    inference.execution_role.add_managed_policy(
        iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")
    )
    stack.invoker.role.assume_role_policy.add_statements(
        iam.PolicyStatement(actions=["sts:AssumeRole"], principals=[iam.AnyPrincipal()])
    )
    inference.url.node.default_child.add_property_override("AuthType", "NONE")
    inference.alias.add_permission(
        "Anyone",
        principal=iam.AnyPrincipal(),
        action="lambda:InvokeFunctionUrl",
        function_url_auth_type=lambda_.FunctionUrlAuthType.NONE,
    )
    # cdk-nag would fail this synth: the summary, not the nag, is under test here.
    acknowledge_known_findings(
        stack,
        findings=[
            KnownFinding(
                path="Inference/ExecutionRole",
                rule_id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/ReadOnlyAccess]",
                reason="test: a widened copy of the stack",
            ),
            KnownFinding(
                path="Inference/ExecutionRole/DefaultPolicy",
                rule_id="AwsSolutions-IAM5[Resource::*]",
                reason="test: a widened copy of the stack",
            ),
        ],
    )


def test_snapshot_summary_calls_out_each_widening_when_the_stack_is_opened(
    synth, synthesize_app, tmp_path
):
    widened = synthesize_app(tmp_path, customize=_widen_everything)
    lines = render(
        security_diff(normalize(synth.template_dict), normalize(widened.template_dict))
    ).splitlines()
    widenings = [line for line in lines if line.startswith("WIDENING")]
    for expected in (
        "IAM InferenceExecutionRole: + Allow s3:GetObject on *  [new action, `*` resource]",
        "IAM InferenceExecutionRole: + managed policy arn:${Ref AWS::Partition}:iam::aws:policy/"
        "ReadOnlyAccess  [managed policy attached]",
        "trust InvokerRole: + AWS * may sts:AssumeRole  [any principal]",
        "URL InferenceAliasFunctionUrl: AuthType AWS_IAM → NONE  [auth NONE]",
        "permission InferenceAlias: + Action=lambda:InvokeFunctionUrl, Principal=*",
    ):
        assert any(expected in line for line in widenings), (expected, lines)
