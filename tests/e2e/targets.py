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

from localurl.deploy import LocalSystem

ROOT = Path(__file__).resolve().parents[2]
STACK_PREFIX = "ml-e2e-"
E2E_TAG = "cdk-ml-lambda:e2e"
CREATED_TAG = "cdk-ml-lambda:created"
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


class E2ESetupError(RuntimeError):
    """The chosen target cannot be used: says exactly what is missing."""


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
            _run_cleanups(deployment)
            system.destroy(stack_name)
            if system.is_deployed(stack_name):
                raise TeardownError(f"stack {stack_name} still exists after destroy")
    finally:
        if owned:
            system.close()


@contextmanager
def aws_deployment(
    stack_name: str,
    *,
    keep_stack: bool,
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
) -> Iterator[Deployment]:
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
    context_args = [f"-c{k}={v}" for k, v in e2e_context(stack_name, context).items()]
    app_args = ["--app", shlex.join([sys.executable, *app])] if app else []
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DEFAULT_REGION": region,
        "CDK_DEFAULT_ACCOUNT": account,
    }
    deployment: Deployment | None = None
    try:
        subprocess.run(
            [
                cdk,
                "deploy",
                "--require-approval",
                "never",
                "--no-notices",
                "--ci",
                "--outputs-file",
                str(outputs_file),
                "--output",
                str(workdir / "cdk.out"),
                *app_args,
                *context_args,
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=45 * 60,
        )
        outputs = json.loads(outputs_file.read_text())[stack_name]

        def create_ungranted_role() -> str:
            name = f"{stack_name}-nogrant"[:64]
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(_trust_account(account)),
                Tags=[{"Key": E2E_TAG, "Value": "true"}],
            )
            assert deployment is not None
            deployment.cleanups.append(lambda: iam.delete_role(RoleName=name))
            iam.get_waiter("role_exists").wait(RoleName=name)
            time.sleep(10)  # IAM is eventually consistent: STS may not see a brand-new role yet
            return str(role["Role"]["Arn"])

        deployment = Deployment(
            target="aws",
            stack_name=stack_name,
            outputs=outputs,
            region=region,
            sts_client=lambda: session.client("sts", region_name=region),
            create_ungranted_role=create_ungranted_role,
        )
        yield deployment
    finally:
        if deployment is not None:
            _run_cleanups(deployment)
        if keep_stack:
            print(f"--keep-stack: {stack_name} left deployed in {region}; delete it when done")
        else:
            delete_stack_and_wait(cfn, stack_name)
            shutil.rmtree(workdir, ignore_errors=True)


def delete_stack_and_wait(cfn: Any, stack_name: str) -> None:
    """Delete and wait until gone; a stack that never existed counts as gone."""
    try:
        stack_id = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackId"]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return
        raise
    cfn.delete_stack(StackName=stack_id)
    try:
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack_id, WaiterConfig={"Delay": 10, "MaxAttempts": 90}
        )
    except botocore.exceptions.WaiterError as exc:
        raise TeardownError(f"deleting {stack_name} failed: {exc}") from exc


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


def _run_cleanups(deployment: Deployment) -> None:
    while deployment.cleanups:
        deployment.cleanups.pop()()
