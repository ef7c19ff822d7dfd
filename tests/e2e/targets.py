"""Where the e2e tests deploy the real app: the local IAM-enforcing stand-in, or an AWS account.

Both yield the same Deployment, so the same test code runs on every pull request (local) and
every night (aws). Teardown is in `finally`, waits until the stack is gone, and fails loudly.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from client.errors import InferenceClientError
from client.invoke import InferenceClient
from client.retry import RetryPolicy
from localurl.deploy import LocalSystem

ROOT = Path(__file__).resolve().parents[2]
STACK_PREFIX = "ml-e2e-"
E2E_TAG = "cdk-ml-lambda:e2e"
CREATED_TAG = "cdk-ml-lambda:created"
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


class E2ESetupError(RuntimeError):
    """The chosen target cannot be used: says exactly what is missing."""


class E2EDeployError(RuntimeError):
    """The deploy ran but did not produce a usable system (the stack is torn down)."""


class TeardownError(RuntimeError):
    pass


def unique_stack_name() -> str:
    return f"{STACK_PREFIX}{int(time.time())}-{secrets.token_hex(3)}"


def e2e_context(stack_name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The context of an e2e deployment: its name and janitor tags, plus `extra` settings."""
    return {
        **(extra or {}),
        "stackName": stack_name,
        "tags": f"{E2E_TAG}=true,{CREATED_TAG}={int(time.time())}",
    }


@dataclass(kw_only=True)
class Deployment:
    target: str
    stack_name: str
    outputs: dict[str, str]
    region: str
    # An STS client for the identity running the tests (it may assume the invoker role).
    sts_client: Callable[[], Any]
    # Creates a role in the same account that lacks the URL grant; returns its ARN.
    create_ungranted_role: Callable[[], str]
    local: LocalSystem | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        return self.outputs["EndpointUrl"]

    @property
    def role_arn(self) -> str:
        return self.outputs["fnUrlRoleArn"]


@contextmanager
def local_deployment(
    stack_name: str,
    *,
    system: LocalSystem | None = None,
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
) -> Iterator[Deployment]:
    """Deploy into a fresh local system (or into `system`, which the caller then owns).

    `context`: settings on top of the defaults (`-c key=value`); `app`: the CDK app to run,
    as Python arguments (default: app.py)."""
    owned = system is None
    if system is None:
        system = LocalSystem()
        system.start()
    try:
        synthesized = system.synth(
            stack_name=stack_name, context=e2e_context(stack_name, context), app=app
        )
        deployed = system.deploy(synthesized)
        iam = system.moto.client("iam")

        def create_ungranted_role() -> str:
            name = f"{stack_name}-nogrant"[:64]
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(_trust_account(system.account_id)),
            )
            return str(role["Role"]["Arn"])

        deployment = Deployment(
            target="local",
            stack_name=stack_name,
            outputs=deployed.outputs,
            region=system.region,
            sts_client=lambda: system.moto.client("sts"),
            create_ungranted_role=create_ungranted_role,
            local=system,
        )
        try:
            yield deployment
        finally:
            try:
                run_cleanups(deployment.cleanups)
            finally:
                system.destroy(stack_name)
                if system.is_deployed(stack_name):
                    raise TeardownError(f"stack {stack_name} still exists after destroy")
    finally:
        if owned:
            system.close()


@dataclass(frozen=True, kw_only=True)
class AwsTimeouts:
    """Every wait of an AWS run has its own cap; together they fit the nightly job's timeout
    and the OIDC session (.github/workflows/nightly-e2e.yml: 110 min job, 120 min session)."""

    # Docker build of numpy/scipy/xgboost, ECR push, CloudFormation: 5-10+ min cold.
    deploy_seconds: float = 40 * 60
    # The invoker policy and the URL's resource policy take seconds to apply after CREATE_COMPLETE.
    ready_seconds: float = 5 * 60
    # A brand-new IAM role is not assumable until IAM has propagated it.
    role_propagation_seconds: float = 2 * 60
    delete_seconds: float = 20 * 60
    poll_seconds: float = 5.0


def cdk_deploy_command(
    cdk: str,
    *,
    stack_name: str,
    outputs_file: Path,
    output_dir: Path,
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
) -> list[str]:
    """The exact `cdk deploy` command line of an AWS run (the rehearsal and its tests use it).

    `-c key=value` must be two words: the CLI reads `-ckey=value` as bundled one-letter flags,
    warns about unknown options and synthesizes the app's default stack.
    """
    context_args = [
        arg for k, v in e2e_context(stack_name, context).items() for arg in ("-c", f"{k}={v}")
    ]
    app_args = ["--app", shlex.join([sys.executable, *app])] if app else []
    return [
        cdk,
        "deploy",
        "--require-approval",
        "never",
        "--no-notices",
        "--ci",
        "--outputs-file",
        str(outputs_file),
        "--output",
        str(output_dir),
        *app_args,
        *context_args,
    ]


@contextmanager
def aws_deployment(
    stack_name: str,
    *,
    keep_stack: bool,
    timeouts: AwsTimeouts | None = None,
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
) -> Iterator[Deployment]:
    timeouts = timeouts or AwsTimeouts()
    session = boto3.Session()
    if session.get_credentials() is None:
        raise E2ESetupError(
            "--target aws needs AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or OIDC in CI); none were found, so nothing was deployed"
        )
    region = session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise E2ESetupError("--target aws needs a region: set AWS_REGION")
    account = session.client("sts", region_name=region).get_caller_identity()["Account"]
    _require_bootstrap(session, region, account)
    cdk = _cdk_cli()
    workdir = ROOT / "cdk.out.e2e" / stack_name
    outputs_file = workdir / "outputs.json"
    workdir.mkdir(parents=True, exist_ok=True)
    cfn = session.client("cloudformation", region_name=region)
    iam = session.client("iam", region_name=region)
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DEFAULT_REGION": region,
        "CDK_DEFAULT_ACCOUNT": account,
    }
    cleanups: list[Callable[[], None]] = []
    try:
        subprocess.run(
            cdk_deploy_command(
                cdk,
                stack_name=stack_name,
                outputs_file=outputs_file,
                output_dir=workdir / "cdk.out",
                context=context,
                app=app,
            ),
            cwd=ROOT,
            env=env,
            check=True,
            timeout=timeouts.deploy_seconds,
        )
        outputs = read_stack_outputs(outputs_file, stack_name)
        sts_client = lambda: session.client("sts", region_name=region)  # noqa: E731

        def create_ungranted_role() -> str:
            name = f"{stack_name}-nogrant"[:64]
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(_trust_account(account)),
                Tags=[{"Key": E2E_TAG, "Value": "true"}],
            )
            cleanups.append(lambda: iam.delete_role(RoleName=name))
            iam.get_waiter("role_exists").wait(RoleName=name)
            arn = str(role["Role"]["Arn"])
            wait_until_assumable(
                sts_client(),
                arn,
                timeout_seconds=timeouts.role_propagation_seconds,
                poll_seconds=timeouts.poll_seconds,
            )
            return arn

        deployment = Deployment(
            target="aws",
            stack_name=stack_name,
            outputs=outputs,
            region=region,
            sts_client=sts_client,
            create_ungranted_role=create_ungranted_role,
            cleanups=cleanups,
        )
        wait_until_invocable(
            deployment, timeout_seconds=timeouts.ready_seconds, poll_seconds=timeouts.poll_seconds
        )
        yield deployment
    finally:
        # The stack is deleted whatever the cleanups do; their errors are raised afterwards.
        try:
            run_cleanups(cleanups)
        finally:
            if keep_stack:
                print(f"--keep-stack: {stack_name} left deployed in {region}; delete it when done")
            else:
                delete_stack_and_wait(
                    cfn,
                    stack_name,
                    timeout_seconds=timeouts.delete_seconds,
                    poll_seconds=timeouts.poll_seconds,
                )
                shutil.rmtree(workdir, ignore_errors=True)


def read_stack_outputs(outputs_file: Path, stack_name: str) -> dict[str, str]:
    """The stack's outputs from `cdk deploy --outputs-file`; says which stacks it holds if not."""
    outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
    if stack_name not in outputs:
        raise E2EDeployError(
            f"`cdk deploy` wrote no outputs for {stack_name} to {outputs_file} "
            f"(it has: {sorted(outputs) or 'nothing'}): did the CLI deploy another stack?"
        )
    return {str(k): str(v) for k, v in outputs[stack_name].items()}


def wait_until_assumable(
    sts: Any, role_arn: str, *, timeout_seconds: float, poll_seconds: float
) -> None:
    """Poll AssumeRole until STS accepts the (new) role: IAM propagates it in seconds to
    minutes, and until then STS answers AccessDenied."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            sts.assume_role(
                RoleArn=role_arn, RoleSessionName="cdk-ml-lambda-e2e-probe", DurationSeconds=900
            )
            return
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "AccessDenied" or time.monotonic() > deadline:
                raise
        time.sleep(poll_seconds)


def wait_until_invocable(
    deployment: Deployment, *, timeout_seconds: float, poll_seconds: float
) -> None:
    """Poll a signed GET until it answers 200: the invoker's grants take effect some seconds
    after CloudFormation reports CREATE_COMPLETE, and the tests do not retry a 403."""
    deadline = time.monotonic() + timeout_seconds
    last = "no answer"
    while True:
        client = InferenceClient.for_role(
            endpoint_url=deployment.endpoint_url,
            role_arn=deployment.role_arn,
            region=deployment.region,
            sts_client=deployment.sts_client(),
            session_name="cdk-ml-lambda-e2e-ready",
            retry=RetryPolicy(max_attempts=1),
        )
        try:
            with client:
                client.metadata()
            return
        except InferenceClientError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise E2EDeployError(
                f"{deployment.stack_name} deployed, but a signed GET did not answer 200 within "
                f"{timeout_seconds:.0f} s (last: {last})"
            )
        time.sleep(poll_seconds)


_DELETE_DONE = "DELETE_COMPLETE"


def delete_stack_and_wait(
    cfn: Any, stack_name: str, *, timeout_seconds: float = 20 * 60, poll_seconds: float = 10.0
) -> None:
    """Delete and wait until gone; a stack that never existed counts as gone.

    Polls DescribeStacks by stack id instead of botocore's StackDeleteComplete waiter: that one
    fails on the first answer if it still shows the pre-delete state (ROLLBACK_COMPLETE,
    UPDATE_ROLLBACK_COMPLETE, an old DELETE_FAILED...) while the deletion has just begun.
    """
    stack = _describe(cfn, stack_name)
    if stack is None or stack["StackStatus"] == _DELETE_DONE:
        return
    stack_id = stack["StackId"]
    cfn.delete_stack(StackName=stack_id)
    deadline = time.monotonic() + timeout_seconds
    stale_until = time.monotonic() + min(60.0, timeout_seconds)
    seen_in_progress = False
    while True:
        stack = _describe(cfn, stack_id)
        status = _DELETE_DONE if stack is None else stack["StackStatus"]
        if status == _DELETE_DONE:
            return
        seen_in_progress = seen_in_progress or status == "DELETE_IN_PROGRESS"
        # A DELETE_FAILED seen before DELETE_IN_PROGRESS may be the previous attempt's.
        if status == "DELETE_FAILED" and (seen_in_progress or time.monotonic() > stale_until):
            reason = stack.get("StackStatusReason", "") if stack else ""
            raise TeardownError(f"deleting {stack_name} failed: DELETE_FAILED {reason}")
        if time.monotonic() > deadline:
            raise TeardownError(
                f"deleting {stack_name}: still {status} after {timeout_seconds:.0f} s"
            )
        time.sleep(poll_seconds)


def _describe(cfn: Any, stack_name_or_id: str) -> dict[str, Any] | None:
    try:
        return dict(cfn.describe_stacks(StackName=stack_name_or_id)["Stacks"][0])
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _require_bootstrap(session: boto3.Session, region: str, account: str) -> None:
    ssm = session.client("ssm", region_name=region)
    try:
        ssm.get_parameter(Name=BOOTSTRAP_PARAMETER)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "ParameterNotFound":
            raise E2ESetupError(
                f"account {account} is not bootstrapped in {region}: run "
                f"`npx cdk bootstrap aws://{account}/{region}` once, then rerun"
            ) from None
        raise


def _cdk_cli() -> str:
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        raise E2ESetupError("the pinned CDK CLI is not installed: run `npm ci` first")
    return str(cli)


def _trust_account(account: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def run_cleanups(cleanups: list[Callable[[], None]]) -> None:
    """Run every cleanup (last registered first), even when one raises; then raise the first
    error, so the caller's stack deletion (in its own `finally`) still happens."""
    errors: list[BaseException] = []
    while cleanups:
        try:
            cleanups.pop()()
        except Exception as exc:  # noqa: BLE001 - run the others, then report
            errors.append(exc)
    if errors:
        raise TeardownError(f"{len(errors)} cleanup(s) failed: {errors}") from errors[0]
