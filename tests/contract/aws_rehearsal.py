"""moto posing as AWS for the rehearsal of `tests/e2e --target aws`.

One in-process moto server (with localurl's CloudFormation models) stands in for the account:
the CDK bootstrap resources the pinned CLI needs, fake credentials, AWS_ENDPOINT_URL for every
SDK (boto3 and the CLI's JS SDK), a `docker` stub (CDK_DOCKER) so no registry is ever contacted,
and a Node preload that refuses any connection that does not go to 127.0.0.1. When the CLI's
change set has created the stack, `serve_when_deployed` serves its Function URL locally, so the
signed invocations of the AWS path run against the stack the CLI deployed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from localurl.deploy import MOTO_ACCOUNT, LocalSystem
from localurl.synth import read_assembly
from tests.contract.aws_traffic import AwsTraffic, RecordingMotoServer

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"
REGION = "eu-west-1"  # not moto's default: the region must come from the environment
QUALIFIER = "hnb659fds"
FAKE_KEY_ID = "AKIAREHEARSAL0000000"
FAKE_SECRET = "rehearsal-secret-for-local-moto-only"
DOCKER_STUB = Path(__file__).resolve().parent / "docker_stub.py"
FAKE_CDK = Path(__file__).resolve().parent / "fake_cdk.py"

# Loaded into every Node process of the rehearsal (the CLI, the app's jsii kernel): a connection
# to anything but loopback throws before a packet leaves, and every attempt is written down.
NETWORK_GUARD = r"""
'use strict';
const fs = require('fs');
const net = require('net');
const dns = require('dns');
const log = (event, detail) => fs.appendFileSync(
  process.env.NETWORK_GUARD_LOG, JSON.stringify({ event, detail }) + '\n');
const loopback = (host) => host === undefined || host === '127.0.0.1' || host === '::1';
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof options !== 'object' || options === null) options = { port: args[0], host: args[1] };
  if (options.path == null) {  // not a Unix socket (http passes path: null)
    log('connect', { host: options.host, port: options.port });
    if (!loopback(options.host)) throw new Error(`network guard: refused ${options.host}`);
  }
  return connect.apply(this, args);
};
const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  log('lookup', { hostname });
  if (hostname !== '127.0.0.1') throw new Error(`network guard: refused lookup of ${hostname}`);
  return lookup.call(this, hostname, ...rest);
};
"""


@dataclass
class FakeAws:
    """The rehearsal's account: a LocalSystem's moto, bootstrapped as `cdk bootstrap` leaves it."""

    system: LocalSystem
    workdir: Path
    traffic: AwsTraffic
    served: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return MOTO_ACCOUNT

    @property
    def endpoint_url(self) -> str:
        return self.system.moto.endpoint_url

    @property
    def docker_log(self) -> Path:
        return self.workdir / "docker.log"

    @property
    def evidence_dir(self) -> Path:
        return self.workdir / "e2e-evidence"

    @property
    def network_log(self) -> Path:
        return self.workdir / "network.log"

    def client(self, service: str) -> Any:
        return self.system.moto.client(service)

    def fake_cdk(self) -> Path:
        """An executable `cdk` that only creates a small stack, then hangs (fake_cdk.py)."""
        wrapper = self.workdir / "fake-cdk"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_CDK}" "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    def bootstrap(self) -> None:
        """The resources the CLI's deploy uses from the bootstrap stack (the version parameter
        is LocalSystem's): the file-asset bucket and the image-asset repository."""
        suffix = f"{self.account}-{REGION}"
        self.client("s3").create_bucket(
            Bucket=f"cdk-{QUALIFIER}-assets-{suffix}",
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
        self.client("ecr").create_repository(
            repositoryName=f"cdk-{QUALIFIER}-container-assets-{suffix}"
        )

    def environment(self) -> dict[str, str]:
        """What `tests/e2e --target aws` and the CLI see: fake credentials, every endpoint at
        moto, the docker stub, the network guard; nothing from the caller's AWS setup."""
        stub = self.workdir / "docker"
        if not stub.exists():
            stub.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{DOCKER_STUB}" "$@"\n')
            stub.chmod(0o755)
            (self.workdir / "network-guard.js").write_text(NETWORK_GUARD)
        port = self.endpoint_url.rsplit(":", 1)[1]
        keep = ("PATH", "LANG", "JSII_RUNTIME_PACKAGE_CACHE_ROOT", "PYENV_ROOT", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env.update(
            {
                # The CLI runs `python3 app.py` (cdk.json): this interpreter's, with aws-cdk-lib.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
                "HOME": str(home),
                "CDK_HOME": str(home / ".cdk"),
                "JSII_RUNTIME_PACKAGE_CACHE_ROOT": os.environ.get(
                    "JSII_RUNTIME_PACKAGE_CACHE_ROOT",
                    str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache"),
                ),
                "PYTHONDONTWRITEBYTECODE": "1",
                "CDK_DISABLE_CLI_TELEMETRY": "true",
                "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
                "CDK_DOCKER": str(stub),
                "DOCKER_STUB_LOG": str(self.docker_log),
                "NODE_OPTIONS": f"--require {self.workdir / 'network-guard.js'}",
                "NETWORK_GUARD_LOG": str(self.network_log),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # The CLI builds the TemplateURL it hands CloudFormation from this endpoint;
                # moto parses bucket and key out of a path-style URL only when the host is
                # "localhost". Nothing connects to it: moto reads its own S3.
                "AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION": f"http://localhost:{port}",
                "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "E2E_EVIDENCE_DIR": str(self.evidence_dir),
            }
        )
        return env

    def docker_commands(self) -> list[dict[str, Any]]:
        return _json_lines(self.docker_log)

    def network_attempts(self) -> list[dict[str, Any]]:
        return _json_lines(self.network_log)

    @contextmanager
    def serve_when_deployed(self, stack_name: str, *, serve: bool = True) -> Iterator[None]:
        """Reserve `stack_name`'s local Function URL (it answers 503 until served), and serve it
        as soon as the CLI's change set has created the stack (from the assembly the CLI
        deployed, cdk.out.e2e/). `serve=False`: a URL that never becomes ready."""
        self.system.reserve_endpoint(stack_name)
        stop = threading.Event()
        errors: list[BaseException] = []
        watcher = threading.Thread(
            target=self._serve_once_complete, args=(stack_name, stop, errors), daemon=True
        )
        if serve:
            watcher.start()
        try:
            yield
        finally:
            stop.set()
            if serve:
                watcher.join(timeout=30)
            self.system.release_endpoint(stack_name)
        if errors:
            raise errors[0]

    def _serve_once_complete(
        self, stack_name: str, stop: threading.Event, errors: list[BaseException]
    ) -> None:
        cfn = self.client("cloudformation")
        lam = self.client("lambda")
        assembly = ROOT / "cdk.out.e2e" / stack_name / "cdk.out"
        while not stop.wait(0.1):
            stacks = [
                s
                for s in cfn.list_stacks()["StackSummaries"]
                if s["StackName"] == stack_name and s["StackStatus"] != "DELETE_COMPLETE"
            ]
            if not stacks or stacks[0]["StackStatus"] != "CREATE_COMPLETE":
                continue
            try:
                synthesized = read_assembly(assembly)
                # Lambda runs a snapshot (the pushed image), not the CLI's output folder, which
                # the CLI may still be rewriting: serve a copy of the staged build context.
                image = self.workdir / "images" / stack_name
                shutil.copytree(synthesized.image_asset_dir, image)
                deployed = self.system.serve_deployed(
                    dataclasses.replace(synthesized, image_asset_dir=image)
                )
                function = lam.get_function(FunctionName=deployed.function_arn.split(":")[6])
                self.served[stack_name] = {
                    "outputs": deployed.outputs,
                    "image_uri": function["Code"]["ImageUri"],
                    "at": time.monotonic(),
                }
            except Exception as exc:  # noqa: BLE001 - reported by serve_when_deployed
                errors.append(exc)
            return


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@contextmanager
def fake_aws(workdir: Path) -> Iterator[FakeAws]:
    system = LocalSystem(workdir=workdir / "local", region=REGION)
    traffic = AwsTraffic()
    # Every request to the account goes through `traffic` (recorded, faults injected).
    system.moto._server = RecordingMotoServer(traffic)
    (workdir / "local").mkdir(parents=True, exist_ok=True)
    try:
        system.start(bootstrap=False)
        # moto's backends are per process: a module before this one (a ThreadedMotoServer of
        # its own) may have left stacks in them. A fresh account starts empty.
        requests.post(f"{system.moto.endpoint_url}/moto-api/reset", timeout=30).raise_for_status()
        system.moto.bootstrap()
        fake = FakeAws(system=system, workdir=workdir, traffic=traffic)
        fake.bootstrap()
        yield fake
    finally:
        system.close()


def rehearsal_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAws]:
    """For a module-scoped fixture: the pinned CLI installed, a fresh fake account."""
    if not CLI.exists():
        # tox runs `npm ci` in commands_pre; a bare `pytest` may not have.
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, timeout=300)
    with fake_aws(tmp_path_factory.mktemp("fake-aws")) as fake:
        yield fake


def as_nightly_environment(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    """This process's environment as the nightly job's, with moto as the account: for tests
    that call aws_deployment in-process."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    return aws


def live_stacks(aws: FakeAws) -> list[str]:
    return [
        s["StackName"]
        for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]


def deleted_stacks(aws: FakeAws) -> set[str]:
    return {
        s["StackName"]
        for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] == "DELETE_COMPLETE"
    }


def roles(aws: FakeAws, prefix: str) -> list[str]:
    roles = aws.client("iam").list_roles()["Roles"]
    return [r["RoleName"] for r in roles if r["RoleName"].startswith(prefix)]


def assert_stayed_on_this_machine(aws: FakeAws) -> None:
    attempts = aws.network_attempts()
    off_machine = [
        a
        for a in attempts
        if a["event"] == "lookup" or a["detail"].get("host") not in (None, "127.0.0.1", "::1")
    ]
    assert off_machine == []
    # The guard ran: the CLI did talk to moto on 127.0.0.1.
    assert any(a["detail"].get("host") == "127.0.0.1" for a in attempts), attempts


def e2e_session(
    aws: FakeAws,
    *args: str,
    run_id: str,
    stack_name: str,
    extra_env: dict[str, str] | None = None,
    **popen: Any,
) -> subprocess.Popen[str]:
    env = {
        **aws.environment(),
        "E2E_STACK_NAME": stack_name,
        "E2E_RUN_ID": run_id,
        "E2E_POLL_SECONDS": "0.2",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            *args,
            "--target",
            "aws",
            "--allow-hosts=127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def cleanup_step(aws: FakeAws, run_id: str) -> subprocess.CompletedProcess[str]:
    """The workflow's last step (`if: always()`): this run's stacks and roles, any age."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.e2e.janitor",
            "--run-id",
            run_id,
            "--timeout-minutes",
            "1",
            "--poll-seconds",
            "0.2",
        ],
        cwd=ROOT,
        env={**aws.environment(), "E2E_POLL_SECONDS": "0.2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
