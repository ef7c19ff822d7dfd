"""Contract-test fixtures: the app synthesized in-process, once per configuration per session."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localurl.deploy import MOTO_ACCOUNT, LocalSystem
from localurl.moto_service import DEFAULT_REGION
from localurl.synth import SynthesizedStack, read_assembly
from localurl.synth import synth as synth_app
from tests.session_artifacts import shared_artifact

ROOT = Path(__file__).resolve().parents[2]


def _start_cdk_without_builtin_validation() -> None:
    """Start the jsii kernel with CDK_VALIDATION=false unless the caller chose otherwise.

    aws-cdk-lib reads CDK_VALIDATION from the environment of its Node process (the jsii kernel) at
    synth time; that process copies os.environ once, when aws_cdk is first imported. So it is set
    here, before the first import, and os.environ is restored afterwards: subprocesses (the CDK CLI,
    a local deploy's synth) keep the caller's setting. The built-in template validation costs ~2 s
    per synth; test_nag.py registers it explicitly, since it is about validation.
    """
    if "aws_cdk" in sys.modules or "CDK_VALIDATION" in os.environ:
        return
    os.environ["CDK_VALIDATION"] = "false"
    try:
        import aws_cdk  # noqa: F401  (the import starts the kernel with this environment)
    finally:
        del os.environ["CDK_VALIDATION"]


_start_cdk_without_builtin_validation()

import aws_cdk as cdk  # noqa: E402
from aws_cdk import cx_api  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.application import add_inference_stack  # noqa: E402
from infra.config import StackConfig  # noqa: E402
from infra.stack import InferenceStack  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class Synthesized:
    """One synth of the app: what a test needs to look at the template and the cloud assembly."""

    app: cdk.App
    stack: InferenceStack
    assembly: cx_api.CloudAssembly
    template: Template

    @property
    def template_dict(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    @property
    def assembly_dir(self) -> Path:
        return Path(self.assembly.directory)

    @property
    def stack_artifact(self) -> cx_api.CloudFormationStackArtifact:
        return self.assembly.get_stack_artifact(self.stack.artifact_id)

    @property
    def asset_manifest(self) -> dict[str, Any]:
        (manifest,) = self.assembly_dir.glob("*.assets.json")
        return dict(json.loads(manifest.read_text()))

    @property
    def image_assets(self) -> list[dict[str, Any]]:
        return list(self.asset_manifest.get("dockerImages", {}).values())


def _cdk_json_context() -> dict[str, Any]:
    # The CLI passes cdk.json's context (feature flags included) to app.py; in-process apps do not
    # read cdk.json, so without this the tests would check a template the CLI never produces.
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def synthesize(
    outdir: Path,
    context: Mapping[str, Any] | None = None,
    *,
    customize: Callable[[InferenceStack], object] | None = None,
    plugins: tuple[cdk.IPolicyValidationPlugin, ...] = (),
) -> Synthesized:
    """Synthesize the app as app.py composes it, with cdk.json's context plus `context` on top.

    The stack is environment-agnostic (app.py takes the account and region from the CLI), so the
    template does not depend on the machine running the tests. `customize(stack)` runs before the
    synth (tests that add a construct to a copy of the stack); `plugins` are added to the app's.
    """
    app = cdk.App(context={**_cdk_json_context(), **(context or {})}, outdir=str(outdir))
    config = StackConfig.from_context(app.node.try_get_context)
    stack = add_inference_stack(app, config=config, env=None)
    if customize is not None:
        customize(stack)
    if plugins:
        cdk.Validations.of(app).add_plugins(*plugins)
    assembly = app.synth()
    template = Template.from_json(assembly.get_stack_artifact(stack.artifact_id).template)
    return Synthesized(app=app, stack=stack, assembly=assembly, template=template)


@pytest.fixture(scope="session")
def synthesize_app() -> Callable[..., Synthesized]:
    """`synthesize` for tests that build their own copy of the app (e.g. with a bad construct)."""
    return synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default configuration: what `cdk synth` produces without `-c` options."""
    return synthesize(tmp_path_factory.mktemp("cdk.out.default"))


@pytest.fixture(scope="session")
def synth_template(synth: Synthesized) -> Template:
    return synth.template


@pytest.fixture(scope="session")
def synth_template_dict(synth: Synthesized) -> dict[str, Any]:
    """The default template as a plain dict (e.g. to deploy it). Shared: deepcopy to change it."""
    return synth.template_dict


@pytest.fixture(scope="session")
def synth_arm64(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out.arm64"), {"architecture": "arm64"})


@pytest.fixture(scope="session")
def synth_second_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A second copy of the default configuration, as a second developer would deploy it."""
    return synthesize(tmp_path_factory.mktemp("cdk.out.copy"), {"stackName": "CdkMlLambdaCopy"})


# Every non-default setting that changes the template, except architecture (synth_arm64).
CONFIGURED_CONTEXT: dict[str, str] = {
    "stackName": "MlXgboostConfigured",
    "functionName": "ML-XGBoost",
    "memorySize": "2048",
    "logRetentionDays": "7",
    "invokerPrincipals": (
        "arn:aws:iam::111122223333:role/ml-caller,arn:aws:iam::444455556666:user/analyst"
    ),
    "tags": "cost-center=ml,owner=data-science",
}


@pytest.fixture(scope="session")
def synth_configured(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out.configured"), CONFIGURED_CONTEXT)


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    """A LocalSystem (in-process moto + local Function URLs) per module. Module scope, because
    moto's mock_aws in other modules resets the in-process backends it lives in."""
    local = LocalSystem()
    try:
        local.start()
        yield local
    finally:
        local.close()


# The stack name every stand-in contract module deploys (each module has its own moto): the demo's,
# so that `python -m localurl demo` in test_demo.py finds this synth in localurl's synth cache.
STAND_IN_STACK = "cdk-ml-lambda-demo"


@pytest.fixture(scope="session")
def stand_in_assembly(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """app.py synthesized as the stand-in does it (default configuration, moto's account and
    region), once per session: the modules that deploy it into their own moto share it."""
    folder = shared_artifact(
        tmp_path_factory,
        "stand-in-assembly",
        lambda out: synth_app(
            outdir=out / "cdk.out",
            context={"stackName": STAND_IN_STACK},
            account=MOTO_ACCOUNT,
            region=DEFAULT_REGION,
        ),
    )
    return read_assembly(folder / "cdk.out")
