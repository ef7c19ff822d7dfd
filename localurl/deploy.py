"""Deploy the synthesized app into moto and serve its Function URL on 127.0.0.1; destroy it."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .dockerfile import read_image_spec
from .function_spec import FunctionSpec, read_function_spec
from .lambda_event import UrlIdentity
from .moto_cfn_models import UrlRegistry
from .moto_service import MotoAws
from .runtime import FunctionRuntime, FunctionRuntimeConfig
from .server import FunctionUrlServer, UrlTarget
from .synth import DEFAULT_APP, SynthesizedStack, synth
from .url_auth import IamUrlAuthorizer

log = logging.getLogger(__name__)

MOTO_ACCOUNT = "123456789012"  # moto's default account
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True, kw_only=True)
class DeployedStack:
    stack_name: str
    stack_id: str
    outputs: dict[str, str]
    function_arn: str  # what the URL targets: the alias-qualified ARN when it has a qualifier
    spec: FunctionSpec
    log_path: Path

    @property
    def endpoint_url(self) -> str:
        return self.outputs["EndpointUrl"]

    @property
    def role_arn(self) -> str:
        return self.outputs["fnUrlRoleArn"]


@dataclass
class _Running:
    deployed: DeployedStack
    server: FunctionUrlServer
    runtime: FunctionRuntime


class LocalSystem:
    """moto plus one local Function URL per deployed stack. Use as a context manager."""

    def __init__(self, *, workdir: Path | None = None, concurrency: int = 2) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="localurl-"))
        self.concurrency = concurrency
        self.moto = MotoAws()
        self._running: dict[str, _Running] = {}

    @property
    def region(self) -> str:
        return self.moto.region

    @property
    def account_id(self) -> str:
        return MOTO_ACCOUNT

    def __enter__(self) -> LocalSystem:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, *, bootstrap: bool = True) -> None:
        self.moto.start()
        if bootstrap:
            self.moto.bootstrap()

    def synth(
        self,
        *,
        stack_name: str,
        context: Mapping[str, str] | None = None,
        app: Sequence[str] | None = None,
    ) -> SynthesizedStack:
        """`app`: the CDK app as Python arguments, run in the project root (default: app.py)."""
        outdir = self.workdir / f"cdk.out.{stack_name}"
        return synth(
            outdir=outdir,
            context={"stackName": stack_name, **(context or {})},
            account=self.account_id,
            region=self.region,
            app=tuple(app) if app else DEFAULT_APP,
        )

    def deploy(self, synthesized: SynthesizedStack) -> DeployedStack:
        if not self.moto.is_bootstrapped():
            raise DeployError(
                "the (local) account is not bootstrapped: the CDK bootstrap version parameter "
                "is missing; run `cdk bootstrap` (the local system does it in start())"
            )
        stack_name = synthesized.stack_name
        spec = read_function_spec(synthesized.template)
        image = read_image_spec(synthesized.image_asset_dir / "Dockerfile")
        server = FunctionUrlServer()
        UrlRegistry.expect_stack(stack_name, server.base_url)
        cfn = self.moto.client("cloudformation")
        try:
            stack_id = cfn.create_stack(
                StackName=stack_name,
                TemplateBody=json.dumps(synthesized.template),
                Capabilities=_CAPABILITIES,
            )["StackId"]
            stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
            if stack["StackStatus"] != "CREATE_COMPLETE":
                raise DeployError(
                    f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}"
                )
        except Exception:
            server.server_close()
            UrlRegistry.forget_stack(stack_name)
            raise
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        function_name = self._physical_id(stack_id, spec.function_logical_id)
        function_arn = self.moto.client("lambda").get_function(FunctionName=function_name)[
            "Configuration"
        ]["FunctionArn"]
        target_arn = f"{function_arn}:{spec.url_qualifier}" if spec.url_qualifier else function_arn
        (url_record,) = UrlRegistry.for_stack(stack_name)
        log_path = self.workdir / f"{stack_name}.log"
        runtime = FunctionRuntime(
            FunctionRuntimeConfig(
                code_dir=synthesized.image_asset_dir,
                handler=image.handler,
                environment={**image.environment, **spec.environment},
                timeout_seconds=spec.timeout_seconds,
                memory_mb=spec.memory_mb,
                function_name=function_name,
                function_arn=target_arn,
                region=self.region,
                log_path=log_path,
                concurrency=self.concurrency,
            )
        )
        authorizer = (
            IamUrlAuthorizer(moto=self.moto, function_arn=target_arn, account_id=self.account_id)
            if spec.url_auth_type == "AWS_IAM"
            else None
        )
        server.configure(
            UrlTarget(
                identity=UrlIdentity(
                    account_id=self.account_id, url_id=url_record.url_id, region=self.region
                ),
                authorizer=authorizer,
                runtime=runtime,
            )
        )
        runtime.warm_up()
        server.start()
        deployed = DeployedStack(
            stack_name=stack_name,
            stack_id=stack_id,
            outputs=outputs,
            function_arn=target_arn,
            spec=spec,
            log_path=log_path,
        )
        self._running[stack_name] = _Running(deployed=deployed, server=server, runtime=runtime)
        return deployed

    def destroy(self, stack_name: str, *, timeout_seconds: float = 60) -> None:
        """Delete the stack and wait until it is gone; stop its endpoint. Raises if it lingers."""
        running = self._running.pop(stack_name, None)
        try:
            cfn = self.moto.client("cloudformation")
            stack_id = running.deployed.stack_id if running else stack_name
            cfn.delete_stack(StackName=stack_id)
            deadline = time.monotonic() + timeout_seconds
            while True:
                status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
                if status == "DELETE_COMPLETE":
                    break
                if status == "DELETE_FAILED" or time.monotonic() > deadline:
                    raise DeployError(f"deleting {stack_name} ended in {status}")
                time.sleep(0.2)
        finally:
            UrlRegistry.forget_stack(stack_name)
            if running is not None:
                running.server.stop()
                running.runtime.close()

    def close(self) -> None:
        errors: list[BaseException] = []
        for name in list(self._running):
            try:
                self.destroy(name)
            except Exception as exc:  # noqa: BLE001 - tear everything down, then report
                errors.append(exc)
        self.moto.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise DeployError(f"teardown failed: {errors}")

    def is_deployed(self, stack_name: str) -> bool:
        stacks = self.moto.client("cloudformation").list_stacks()["StackSummaries"]
        return any(
            s["StackName"] == stack_name and s["StackStatus"] != "DELETE_COMPLETE" for s in stacks
        )

    def endpoint(self, stack_name: str) -> FunctionUrlServer:
        """The running Function URL server of a stack this system deployed (e.g. for tests that
        swap its target, or benchmarks that time its parts)."""
        running = self._running.get(stack_name)
        if running is None:
            raise KeyError(f"{stack_name!r} is not deployed by this LocalSystem")
        return running.server

    def _physical_id(self, stack_id: str, logical_id: str) -> str:
        resource = self.moto.client("cloudformation").describe_stack_resource(
            StackName=stack_id, LogicalResourceId=logical_id
        )
        return str(resource["StackResourceDetail"]["PhysicalResourceId"])
