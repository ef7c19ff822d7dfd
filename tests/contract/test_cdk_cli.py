"""`cdk synth` with the pinned CLI from the project root: offline, quiet, and a minimal image asset.

"Offline" is observed, not assumed: the proxy variables point at a local listener that counts
connections (clients that honour a proxy), and a preload script in every Node process of the run
(NODE_OPTIONS=--require) records each socket connect and DNS lookup (clients that do not).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"
HANDLER = ROOT / "handler"
BANNER = re.compile(r"notice|telemetry|end-of-life|end of life|warning|feature flag", re.I)

NETWORK_PRELOAD = r"""
'use strict';
const fs = require('fs');
const net = require('net');
const dns = require('dns');
const record = (event, detail) => fs.appendFileSync(
  process.env.NETWORK_WATCH_LOG, JSON.stringify({ event, pid: process.pid, detail }) + '\n');
record('loaded', process.argv[1] || '');
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  // net.connect passes its normalized arguments as one array; a socket.connect call passes them.
  let options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof options !== 'object' || options === null) options = { port: args[0], host: args[1] };
  if (options.path === undefined) record('connect', { host: options.host, port: options.port });
  return connect.apply(this, args);
};
const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  record('lookup', { hostname });
  return lookup.call(this, hostname, ...rest);
};
"""


_SENTINEL = b"network-watch-sentinel"


@dataclass
class NetworkWatch:
    """A proxy that accepts, records and drops every connection, plus the Node preload's log."""

    workdir: Path
    proxy_requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.preload = self.workdir / "network-watch.js"
        self.preload.write_text(NETWORK_PRELOAD)
        self.log = self.workdir / "network-watch.log"
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    self.proxy_requests.append(connection.recv(512))
                except OSError:
                    self.proxy_requests.append(b"")

    def reset(self) -> None:
        self.proxy_requests.clear()
        self.log.write_text("")

    def settle(self) -> None:
        """Wait until every connection made so far has been recorded (the backlog is FIFO)."""
        with socket.create_connection(self._server.getsockname(), timeout=5) as sentinel:
            sentinel.sendall(_SENTINEL)
        # Each silent connection holds the (sequential) listener for its 1 s receive timeout.
        deadline = time.monotonic() + 60
        while _SENTINEL not in self.proxy_requests:
            assert time.monotonic() < deadline, "the network watch did not drain its backlog"
            time.sleep(0.01)
        self.proxy_requests.remove(_SENTINEL)

    def node_events(self, event: str) -> list[dict]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [e for e in map(json.loads, lines) if e["event"] == event]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()

    def env(self, home: Path) -> dict[str, str]:
        """A minimal environment: no AWS credentials or profile, a fresh HOME, proxies to us."""
        return {
            # The CLI runs `python3 app.py` (cdk.json): this interpreter's, with aws-cdk-lib.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "HOME": str(home),
            # The CLI's cache (notices, a connectivity verdict kept for an hour) is not under HOME
            # but under the passwd entry's home directory, unless CDK_HOME says otherwise.
            "CDK_HOME": str(home / ".cdk"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The caller's jsii package cache: in a fresh HOME the app's jsii kernel would extract
            # aws-cdk-lib (~200 MB, ~5 s) again.
            "JSII_RUNTIME_PACKAGE_CACHE_ROOT": os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT")
            or str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache"),
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "HTTPS_PROXY": self.proxy_url,
            "HTTP_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "http_proxy": self.proxy_url,
            "NODE_OPTIONS": f"--require {self.preload}",
            "NETWORK_WATCH_LOG": str(self.log),
        }


@dataclass(frozen=True, kw_only=True)
class CliRun:
    completed: subprocess.CompletedProcess[str]
    outdir: Path
    proxy_requests: list[bytes]
    node_connects: list[dict]
    node_lookups: list[dict]
    node_processes: list[dict]


@pytest.fixture(scope="module")
def cdk_cli() -> Path:
    if not CLI.exists():
        # tox runs this in commands_pre; a bare `pytest` may not have.
        npm = shutil.which("npm")
        assert npm, "the pinned CDK CLI needs npm: install Node.js, then run `npm ci`"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, timeout=300)
    return CLI


@pytest.fixture(scope="module")
def network_watch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkWatch]:
    watch = NetworkWatch(tmp_path_factory.mktemp("network-watch"))
    yield watch
    watch.close()


def _run_cli(cli: Path, watch: NetworkWatch, workdir: Path, *args: str) -> CliRun:
    watch.reset()
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [str(cli), *args],
        cwd=ROOT,
        env=watch.env(workdir / "home"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    watch.settle()
    return CliRun(
        completed=completed,
        outdir=workdir / "cdk.out",
        proxy_requests=list(watch.proxy_requests),
        node_connects=watch.node_events("connect"),
        node_lookups=watch.node_events("lookup"),
        node_processes=watch.node_events("loaded"),
    )


@pytest.fixture(scope="module")
def cli_synth(cdk_cli, network_watch, tmp_path_factory) -> CliRun:
    workdir = tmp_path_factory.mktemp("cli-synth")
    return _run_cli(
        cdk_cli,
        network_watch,
        workdir,
        "synth",
        "--no-notices",
        "-q",
        "--output",
        str(workdir / "cdk.out"),
    )


def test_cdk_synth_succeeds_when_offline(cli_synth):
    assert cli_synth.completed.returncode == 0, cli_synth.completed.stderr
    manifest = json.loads((cli_synth.outdir / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert [s["properties"]["stackName"] for s in stacks] == ["CdkMlLambda"]


def test_cdk_synth_prints_no_banner_when_quiet(cli_synth):
    stderr = cli_synth.completed.stderr
    assert BANNER.findall(stderr) == [], stderr
    assert stderr.strip() == ""
    assert cli_synth.completed.stdout.strip() == ""


def test_cdk_synth_attempts_no_connection_when_offline(cli_synth):
    assert cli_synth.proxy_requests == []
    assert cli_synth.node_connects == []
    assert cli_synth.node_lookups == []
    # The preload ran in the CLI and in the app's jsii kernel: the empty lists above mean something.
    scripts = {e["detail"] for e in cli_synth.node_processes}
    assert str(CLI) in scripts, scripts
    assert any(s.endswith("jsii-runtime.js") for s in scripts), scripts


def test_network_watch_sees_the_cli_when_it_goes_online(cdk_cli, network_watch, tmp_path):
    # `cdk notices` fetches the notices feed: both detectors must see that attempt.
    run = _run_cli(cdk_cli, network_watch, tmp_path, "notices")
    assert any(r.startswith(b"CONNECT ") for r in run.proxy_requests), run.completed.stderr
    assert run.node_connects, run.node_processes


def test_image_asset_holds_only_what_the_image_needs_when_synthesized(cli_synth):
    assets = json.loads((cli_synth.outdir / "InferenceStack.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    asset_dir = cli_synth.outdir / image["source"]["directory"]
    staged = {p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*") if p.is_file()}
    unwanted = [
        p
        for p in staged
        if "__pycache__" in p
        or "model_card" in p
        or any(s.startswith("test") for s in p.split("/"))
    ]
    assert unwanted == []
    # handler/.dockerignore decides; Docker reads the staged .dockerignore again at build time.
    assert staged == {
        ".dockerignore",
        "Dockerfile",
        "requirements.txt",
        "requirements-build.txt",
        "model/model.ubj",
        *(f"ml_handler/{p.name}" for p in (HANDLER / "ml_handler").glob("*.py")),
        *(f"model_compiler/{p.name}" for p in (HANDLER / "model_compiler").glob("*.py")),
        *(f"model_compiler/{p.name}" for p in (HANDLER / "model_compiler").glob("*.c")),
    }


def test_cli_synth_has_the_resources_the_contract_tests_check_when_default(cli_synth, synth):
    # The in-process fixtures pass cdk.json's context as the CLI does: same resources, same config.
    template = json.loads((cli_synth.outdir / "InferenceStack.template.json").read_text())

    def resource_types(t: dict) -> Counter[str]:
        # AWS::CDK::Metadata is the CLI's version reporting; the in-process app has none.
        return Counter(
            r["Type"] for r in t["Resources"].values() if r["Type"] != "AWS::CDK::Metadata"
        )

    assert resource_types(template) == resource_types(synth.template_dict)
    assert set(template["Outputs"]) == set(synth.template_dict["Outputs"])
