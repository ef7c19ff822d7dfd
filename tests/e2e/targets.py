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
import botocore.config
import botocore.exceptions

from client.errors import InferenceClientError
from client.invoke import InferenceClient
from client.retry import RetryPolicy
from localurl.deploy import LocalSystem
from tests.e2e.evidence import save_base_image_digest, save_stack_evidence, stack_folder
from tests.e2e.fresh_image import APP_MODULE as FRESH_IMAGE_APP
from tests.e2e.stack_teardown import TeardownError, delete_stack_and_wait

__all__ = ["TeardownError", "delete_stack_and_wait"]

ROOT = Path(__file__).resolve().parents[2]
STACK_PREFIX = "ml-e2e-"
E2E_TAG = "cdk-ml-lambda:e2e"
CREATED_TAG = "cdk-ml-lambda:created"
# The workflow run that created it: the run's last step deletes what carries its id, any age.
RUN_TAG = "cdk-ml-lambda:e2e-run"
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


class E2ESetupError(RuntimeError):
    """The chosen target cannot be used: says exactly what is missing."""


class E2EDeployError(RuntimeError):
    """The deploy ran but did not produce a usable system (the stack is torn down)."""


def unique_stack_name() -> str:
    return f"{STACK_PREFIX}{int(time.time())}-{secrets.token_hex(3)}"


def local_run_id() -> str:
    """A run id for a run outside the workflow (which sets E2E_RUN_ID)."""
    return f"local-{secrets.token_hex(4)}"


def e2e_context(
    stack_name: str, extra: Mapping[str, str] | None = None, *, run_id: str
) -> dict[str, str]:
    """The context of an e2e deployment: its name and janitor tags, plus `extra` settings."""
    return {
        **(extra or {}),
        "stackName": stack_name,
        "tags": f"{E2E_TAG}=true,{CREATED_TAG}={int(time.time())},{RUN_TAG}={run_id}",
    }


def e2e_role_tags(run_id: str) -> list[dict[str, str]]:
    return [{"Key": E2E_TAG, "Value": "true"}, {"Key": RUN_TAG, "Value": run_id}]


def aws_config(*, max_attempts: int = 10) -> botocore.config.Config:
    """Every AWS client of the harness: standard retry mode (exponential backoff with jitter on
    throttling and transient errors), not one attempt that turns a throttle into a red night."""
    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
    )


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
    run_id: str | None = None,
) -> Iterator[Deployment]:
    """Deploy into a fresh local system (or into `system`, which the caller then owns).

    `context`: settings on top of the defaults (`-c key=value`); `app`: the CDK app to run,
    as Python arguments (default: app.py)."""
    owned = system is None
    run_id = run_id or local_run_id()
    if system is None:
        system = LocalSystem()
        system.start()
    try:
        synthesized = system.synth(
            stack_name=stack_name, context=e2e_context(stack_name, context, run_id=run_id), app=app
        )
        deployed = system.deploy(synthesized)
        iam = system.moto.client("iam")

        def create_ungranted_role() -> str:
            name = f"{stack_name}-nogrant"[:64]
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(_trust_account(system.account_id)),
                Tags=e2e_role_tags(run_id),
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
    """Every wait of an AWS run has its own cap, and all of them live inside the session's
    budget (SessionBudget): .github/workflows/nightly-e2e.yml adds the sums up."""

    # Docker build of the image from a fresh base pull, ECR push, CloudFormation: 5-10 min cold.
    deploy_seconds: float = 25 * 60
    # The invoker policy and the URL's resource policy take seconds to apply after CREATE_COMPLETE.
    ready_seconds: float = 5 * 60
    # A brand-new IAM role is not assumable until IAM has propagated it.
    role_propagation_seconds: float = 2 * 60
    delete_seconds: float = 15 * 60
    poll_seconds: float = 5.0
    # IAM and STS are eventually consistent: one success is not yet a settled state.
    consecutive_successes: int = 3


@dataclass(kw_only=True)
class SessionBudget:
    """The whole e2e session's time, teardown included: every deploy reserves its stack's
    delete cap before it starts, and no wait may eat into what is reserved."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    reserved: float = 0.0
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.seconds

    def left(self) -> float:
        return self.deadline - self.clock() - self.reserved

    def cap(self, seconds: float, what: str) -> float:
        left = self.left()
        if left <= 0:
            raise E2EDeployError(f"the e2e session's time budget is spent: no time for {what}")
        return min(seconds, left)

    def reserve(self, seconds: float) -> None:
        self.reserved += seconds

    def release(self, seconds: float) -> None:
        self.reserved = max(0.0, self.reserved - seconds)


def cdk_deploy_command(
    cdk: str,
    *,
    stack_name: str,
    outputs_file: Path,
    output_dir: Path,
    run_id: str,
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
    image_nonce: str | None = None,
) -> list[str]:
    """The exact `cdk deploy` command line of an AWS run (the rehearsal and its tests use it).

    `-c key=value` must be two words: the CLI reads `-ckey=value` as bundled one-letter flags,
    warns about unknown options and synthesizes the app's default stack. `image_nonce`: the app
    runs through tests.e2e.fresh_image, so its image is built and pushed under a new tag.
    """
    context_args = [
        arg
        for k, v in e2e_context(stack_name, context, run_id=run_id).items()
        for arg in ("-c", f"{k}={v}")
    ]
    if image_nonce is not None:
        app = ["-m", FRESH_IMAGE_APP, image_nonce, *(app or ["app.py"])]
    app_args = ["--app", shlex.join([sys.executable, *app])] if app else []
    return [
        cdk,
        "deploy",
        "--require-approval",
        "never",
        "--no-notices",
        "--ci",
        "--progress",
        "events",
        "--outputs-file",
        str(outputs_file),
        "--output",
        str(output_dir),
        *app_args,
        *context_args,
    ]


# (command, environment, log file, timeout): runs `cdk deploy`. The rehearsal's fault-injection
# tests pass a cheap stand-in where the CLI's own behaviour is not what they test.
DeployRunner = Callable[[list[str], Mapping[str, str], Path, float], None]


def run_cdk_cli(command: list[str], env: Mapping[str, str], log: Path, timeout: float) -> None:
    """Run the CLI with its output going to `log` as it runs (it survives a killed run)."""
    with log.open("ab") as out:
        subprocess.run(
            command,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=timeout,
        )


@contextmanager
def aws_deployment(
    stack_name: str,
    *,
    keep_stack: bool,
    run_id: str | None = None,
    timeouts: AwsTimeouts | None = None,
    budget: SessionBudget | None = None,
    evidence_dir: Path | None = None,
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
    image_nonce: str | None = None,
    run_deploy: DeployRunner = run_cdk_cli,
    cdk_cli: str | None = None,
) -> Iterator[Deployment]:
    """Deploy with `cdk deploy` (`cdk_cli`: default, the pinned CLI) into the account of the
    environment's credentials; yield the deployment; keep the evidence; delete it."""
    timeouts = timeouts or AwsTimeouts()
    budget = budget or SessionBudget(seconds=24 * 3600)
    run_id = run_id or local_run_id()
    session = boto3.Session()
    if session.get_credentials() is None:
        raise E2ESetupError(
            "--target aws needs AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or OIDC in CI); none were found, so nothing was deployed"
        )
    region = session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise E2ESetupError("--target aws needs a region: set AWS_REGION")
    config = aws_config()

    def client(service: str) -> Any:
        return session.client(service, region_name=region, config=config)  # type: ignore[call-overload]

    account = client("sts").get_caller_identity()["Account"]
    _require_bootstrap(client("ssm"), region, account)
    cdk = cdk_cli or _cdk_cli()
    workdir = ROOT / "cdk.out.e2e" / stack_name
    outputs_file = workdir / "outputs.json"
    workdir.mkdir(parents=True, exist_ok=True)
    evidence = stack_folder(evidence_dir or ROOT / "cdk.out.e2e" / "evidence", stack_name)
    cfn = client("cloudformation")
    iam = client("iam")
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DEFAULT_REGION": region,
        "CDK_DEFAULT_ACCOUNT": account,
    }
    cleanups: list[Callable[[], None]] = []
    delete_seconds = budget.cap(timeouts.delete_seconds, f"deleting {stack_name}")
    budget.reserve(delete_seconds)
    failed = True
    try:
        if image_nonce is not None:
            save_base_image_digest(
                docker=os.environ.get("CDK_DOCKER", "docker"),
                dockerfile=ROOT / "handler" / "Dockerfile",
                folder=evidence,
            )
        run_deploy(
            cdk_deploy_command(
                cdk,
                stack_name=stack_name,
                outputs_file=outputs_file,
                output_dir=workdir / "cdk.out",
                run_id=run_id,
                context=context,
                app=app,
                image_nonce=image_nonce,
            ),
            env,
            evidence / "cdk-deploy.log",
            budget.cap(timeouts.deploy_seconds, f"deploying {stack_name}"),
        )
        outputs = read_stack_outputs(outputs_file, stack_name)
        sts_client = lambda: client("sts")  # noqa: E731

        def create_ungranted_role() -> str:
            name = f"{stack_name}-nogrant"[:64]
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(_trust_account(account)),
                Tags=e2e_role_tags(run_id),
            )
            cleanups.append(lambda: delete_role(iam, name))
            iam.get_waiter("role_exists").wait(RoleName=name)
            arn = str(role["Role"]["Arn"])
            wait_until_assumable(
                sts_client(),
                arn,
                timeout_seconds=budget.cap(timeouts.role_propagation_seconds, "a new role"),
                poll_seconds=timeouts.poll_seconds,
                consecutive=timeouts.consecutive_successes,
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
            deployment,
            timeout_seconds=budget.cap(timeouts.ready_seconds, f"{stack_name} to answer"),
            poll_seconds=timeouts.poll_seconds,
            consecutive=timeouts.consecutive_successes,
        )
        yield deployment
        failed = False
    finally:
        # Evidence first (the log group goes with the stack); the stack is deleted whatever the
        # cleanups do; their errors are raised afterwards.
        save_stack_evidence(cfn=cfn, logs=client("logs"), stack_name=stack_name, folder=evidence)
        try:
            run_cleanups(cleanups)
        finally:
            if keep_stack:
                print(f"--keep-stack: {stack_name} left deployed in {region}; delete it when done")
            else:
                delete_stack_and_wait(
                    cfn,
                    stack_name,
                    timeout_seconds=delete_seconds,
                    poll_seconds=timeouts.poll_seconds,
                )
                budget.release(delete_seconds)
                if not failed:  # a failed run keeps its assembly for the workflow's artifact
                    shutil.rmtree(workdir, ignore_errors=True)


def delete_role(iam: Any, name: str) -> None:
    """Delete the role and whatever a test may have attached to it; a gone role counts as gone."""
    try:
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise


def read_stack_outputs(outputs_file: Path, stack_name: str) -> dict[str, str]:
    """The stack's outputs from `cdk deploy --outputs-file`; says which stacks it holds if not."""
    outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
    if stack_name not in outputs:
        raise E2EDeployError(
            f"`cdk deploy` wrote no outputs for {stack_name} to {outputs_file} "
            f"(it has: {sorted(outputs) or 'nothing'}): did the CLI deploy another stack?"
        )
    return {str(k): str(v) for k, v in outputs[stack_name].items()}


def settle(
    probe: Callable[[], str | None],
    *,
    what: str,
    timeout_seconds: float,
    poll_seconds: float,
    consecutive: int,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll `probe` (None: success, else why not) until it succeeds `consecutive` times in a
    row, `poll_seconds` apart: IAM and STS are eventually consistent, and one success may be
    followed by an AccessDenied from a replica that has not seen the change yet."""
    deadline = clock() + timeout_seconds
    streak = 0
    last = "no answer"
    while True:
        failure = probe()
        streak = streak + 1 if failure is None else 0
        last = failure or last
        if streak >= consecutive:
            return
        if clock() > deadline:
            raise E2EDeployError(
                f"{what}: not {consecutive} successes in a row within {timeout_seconds:.0f} s "
                f"(last failure: {last})"
            )
        sleep(poll_seconds)


def wait_until_assumable(
    sts: Any, role_arn: str, *, timeout_seconds: float, poll_seconds: float, consecutive: int = 3
) -> None:
    """STS accepts the (new) role, reliably: IAM propagates it in seconds to minutes, and until
    then STS answers AccessDenied."""

    def probe() -> str | None:
        try:
            sts.assume_role(
                RoleArn=role_arn, RoleSessionName="cdk-ml-lambda-e2e-probe", DurationSeconds=900
            )
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "AccessDenied":
                raise
            return f"AccessDenied: {exc}"
        return None

    settle(
        probe,
        what=f"assuming {role_arn}",
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        consecutive=consecutive,
    )


def wait_until_invocable(
    deployment: Deployment, *, timeout_seconds: float, poll_seconds: float, consecutive: int = 3
) -> None:
    """Signed GETs answer 200, reliably: the invoker's grants take effect some seconds after
    CloudFormation reports CREATE_COMPLETE, and the tests do not retry a 403."""

    def probe() -> str | None:
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
        except InferenceClientError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    try:
        settle(
            probe,
            what=f"{deployment.stack_name} deployed, but a signed GET answering 200",
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            consecutive=consecutive,
        )
    except E2EDeployError as exc:
        raise E2EDeployError(f"{exc} (did not answer 200 reliably)") from None


def _require_bootstrap(ssm: Any, region: str, account: str) -> None:
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
