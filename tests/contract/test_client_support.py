"""Shared helpers for the client's contract tests; this module holds no tests itself.

(Named test_client_* so that it stays within the client's own test files.)

`ScriptedServer` is a real HTTP server on 127.0.0.1 that answers from a script and records each
request exactly as it arrived, so tests check what the client actually sent on the wire.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from client.credentials import TemporaryCredentials

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
JSON_HEADERS = (("Content-Type", "application/json"),)
# How long a test waits for a server thread to stop before calling it a leak.
_JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"[]"
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS
    delay_seconds: float = 0.0

    @classmethod
    def json(
        cls,
        status: int,
        document: Any,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        delay_seconds: float = 0.0,
    ) -> Reply:
        return cls(
            status=status,
            body=json.dumps(document).encode(),
            headers=JSON_HEADERS + headers,
            delay_seconds=delay_seconds,
        )

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Reply:
        """The handler's error shape: {"error": {"code", "message"}}."""
        return cls.json(status, {"error": {"code": code, "message": message}})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    # The request-target as sent: path and query, undecoded.
    target: str
    # As received: original case, order and repeats kept.
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"header {name} sent {len(values)} times"
        return values[0] if values else None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


# A reply, or a function of the request that makes one (e.g. a server that echoes headers).
Script = Reply | Callable[[RecordedRequest], Reply]


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so that server_close() joins them: no thread outlives a test.
    daemon_threads = False

    def __init__(self, replies: tuple[Script, ...]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies = replies
        self.recorded: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.recorded.append(request)
            script = self.replies[min(len(self.recorded), len(self.replies)) - 1]
        return script(request) if callable(script) else script

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up: writing the late answer fails, as it should.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.next_reply(
            RecordedRequest(
                method=self.command,
                target=self.path,
                headers=tuple(self.headers.items()),
                body=body,
            )
        )
        if reply.delay_seconds:
            # Interruptible, so that stopping the server never waits for a slow answer.
            self.server.stopping.wait(reply.delay_seconds)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ScriptedServer:
    """Answers the n-th request with the n-th reply (the last reply repeats)."""

    def __init__(self, *replies: Script) -> None:
        self._server = _Server(replies or (Reply(),))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(_JOIN_SECONDS)
        assert not self._thread.is_alive(), "scripted server thread did not stop"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._server.lock:
            return list(self._server.recorded)


def refused_url() -> str:
    """A 127.0.0.1 URL where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def parse_authorization(value: str) -> dict[str, str]:
    """{'Credential': ..., 'SignedHeaders': ..., 'Signature': ...} of a SigV4 header."""
    algorithm, _, rest = value.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256", value
    return dict(part.strip().split("=", 1) for part in rest.split(","))


def trust_policy(*principal_arns: str) -> str:
    principals = list(principal_arns) or [f"arn:aws:iam::{ACCOUNT_ID}:root"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def create_role(iam: Any, name: str = "invoker", *principal_arns: str) -> str:
    """Create an IAM role (in moto) that `principal_arns` may assume; return its ARN."""
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy(*principal_arns))
    return str(role["Role"]["Arn"])


class StaticCredentials:
    """A credentials provider with fixed keys, for tests about HTTP rather than STS."""

    def __init__(self, *, valid_for: timedelta = timedelta(hours=1)) -> None:
        self.credentials = TemporaryCredentials(
            access_key_id="ASIATESTSTATICKEY000",
            secret_access_key="static-test-secret-key/0123456789abcdefghij",
            session_token="static-test-session-token-" + "x" * 40,
            expiration=datetime.now(UTC) + valid_for,
            assumed_role_arn=f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/invoker/static",
        )
        self.calls = 0

    def get(self) -> TemporaryCredentials:
        self.calls += 1
        return self.credentials


class RecordingSleep:
    """Stands in for time.sleep: records the backoff instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def moto_assumed_role(access_key_id: str) -> Any:
    """moto's record of the role session behind `access_key_id` (its session name, expiration,
    secret and token): what STS issued to a client whose STS calls the test cannot intercept.
    Reads moto's in-memory backend; the one place these tests touch moto internals."""
    from moto.sts.models import sts_backends

    for per_partition in list(sts_backends.values()):
        for backend in list(per_partition.values()):
            for role in list(backend.assumed_roles):
                if role.access_key_id == access_key_id:
                    return role
    raise AssertionError(f"moto issued no role session with key {access_key_id}")
