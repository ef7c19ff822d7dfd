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
from typing import Any

from .function_spec import FunctionSpec, read_function_spec
from .image import build_image
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
    task_root: Path | None = None  # what the image holds, as the stand-in laid it out

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

    def __init__(
        self, *, workdir: Path | None = None, concurrency: int = 2, region: str | None = None
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="localurl-"))
        self.concurrency = concurrency
        self.moto = MotoAws(region=region) if region else MotoAws()
        self._running: dict[str, _Running] = {}
        self._reserved: dict[str, FunctionUrlServer] = {}

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
        read_function_spec(synthesized.template)  # fail on an unusable template before moto
        self.reserve_endpoint(stack_name)
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
            self.release_endpoint(stack_name)
            raise
        return self._serve(synthesized, stack)

    def reserve_endpoint(self, stack_name: str) -> str:
        """Start listening for `stack_name`'s Function URL before its stack exists: the URL
        resource (moto_cfn_models) takes this address when CloudFormation creates it."""
        server = FunctionUrlServer()
        self._reserved[stack_name] = server
        UrlRegistry.expect_stack(stack_name, server.base_url)
        # Until the stack is served, the URL answers 503, as a URL that is not ready yet.
        server.start()
        return server.base_url

    def release_endpoint(self, stack_name: str) -> None:
        """Stop serving `stack_name` (reserved or running) without touching its stack."""
        UrlRegistry.forget_stack(stack_name)
        reserved = self._reserved.pop(stack_name, None)
        if reserved is not None:
            reserved.stop()
        running = self._running.pop(stack_name, None)
        if running is not None:
            running.server.stop()
            running.runtime.close()

    def serve_deployed(self, synthesized: SynthesizedStack) -> DeployedStack:
        """Serve the Function URL of a stack that someone else (the CDK CLI) deployed into this
        moto, for an endpoint reserved beforehand; `synthesized` is the assembly it deployed."""
        stack = self.moto.client("cloudformation").describe_stacks(
            StackName=synthesized.stack_name
        )["Stacks"][0]
        if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise DeployError(f"{synthesized.stack_name} is {stack['StackStatus']}")
        return self._serve(synthesized, stack)

    def _serve(self, synthesized: SynthesizedStack, stack: dict[str, Any]) -> DeployedStack:
        stack_name = synthesized.stack_name
        stack_id = str(stack["StackId"])
        server = self._reserved.pop(stack_name)
        try:
            return self._start(synthesized, stack, stack_id, server)
        except Exception:
            self._reserved[stack_name] = server
            self.release_endpoint(stack_name)
            raise

    def _start(
        self,
        synthesized: SynthesizedStack,
        stack: dict[str, Any],
        stack_id: str,
        server: FunctionUrlServer,
    ) -> DeployedStack:
        stack_name = synthesized.stack_name
        spec = read_function_spec(synthesized.template)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        function_name = self._physical_id(stack_id, spec.function_logical_id)
        function_arn = self.moto.client("lambda").get_function(FunctionName=function_name)[
            "Configuration"
        ]["FunctionArn"]
        target_arn = f"{function_arn}:{spec.url_qualifier}" if spec.url_qualifier else function_arn
        (url_record,) = UrlRegistry.for_stack(stack_name)
        log_path = self.workdir / f"{stack_name}.log"
        # What the image would hold: the builder stage's library, the final stage's steps (its
        # pip pins checked against this interpreter, which runs the function).
        image = build_image(
            synthesized.image_asset_dir, self.workdir / f"{stack_name}.task", install=False
        )
        runtime = FunctionRuntime(
            FunctionRuntimeConfig(
                code_dir=image.task_root,
                handler=image.handler,
                environment={**image.env, **spec.environment},
                timeout_seconds=spec.timeout_seconds,
                memory_mb=spec.memory_mb,
                function_name=function_name,
                function_arn=target_arn,
                function_version=self._invoked_version(function_name, spec.url_qualifier),
                log_group_name=self._log_group_name(stack_id, spec),
                execution_env=image.execution_env,
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
        try:
            runtime.warm_up()
        except Exception:
            runtime.close()
            raise
        deployed = DeployedStack(
            stack_name=stack_name,
            stack_id=stack_id,
            outputs=outputs,
            function_arn=target_arn,
            spec=spec,
            log_path=log_path,
            task_root=image.task_root,
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
        for name in list(self._reserved):
            self.release_endpoint(name)
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

    def _invoked_version(self, function_name: str, qualifier: str | None) -> str:
        """The version the URL's qualifier resolves to (an alias names one), as Lambda sets
        AWS_LAMBDA_FUNCTION_VERSION; $LATEST without a qualifier."""
        if qualifier is None or qualifier == "$LATEST":
            return "$LATEST"
        if qualifier.isdigit():
            return qualifier
        alias = self.moto.client("lambda").get_alias(FunctionName=function_name, Name=qualifier)
        return str(alias["FunctionVersion"])

    def _log_group_name(self, stack_id: str, spec: FunctionSpec) -> str | None:
        """LoggingConfig's log group (moto does not keep it); None: Lambda's default."""
        group = spec.log_group
        if isinstance(group, dict) and "Ref" in group:
            return self._physical_id(stack_id, group["Ref"])
        if isinstance(group, str):
            return group
        return None

    def _physical_id(self, stack_id: str, logical_id: str) -> str:
        resource = self.moto.client("cloudformation").describe_stack_resource(
            StackName=stack_id, LogicalResourceId=logical_id
        )
        return str(resource["StackResourceDetail"]["PhysicalResourceId"])
