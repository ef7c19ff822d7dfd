"""Every request the rehearsal's moto receives, written down, and faults injected into them.

A WSGI layer in front of moto (so it sees the CDK CLI's JS SDK, the docker stub, the harness
and the janitor alike): each call is recorded with its service, action, parameters and access
key; `Fault`s answer chosen calls with AWS's own error (throttling, AccessDenied), and
`DeleteFails` makes a stack's deletion end in DELETE_FAILED until it is retried retaining the
failed resources.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
Params = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Call:
    service: str
    action: str
    params: Params
    access_key: str
    path: str
    protocol: str  # json (X-Amz-Target), query (Action=...), rest
    user_agent: str = ""


@dataclass(kw_only=True)
class Fault:
    """Answer matching calls with `code` (HTTP `status`): after letting `skip` through, `times`
    times. `match` looks at the parameters."""

    service: str
    action: str
    code: str
    status: int = 400
    skip: int = 0
    times: int = 1
    match: Callable[[Params], bool] = lambda params: True
    seen: int = 0
    injected: int = 0

    def fires(self, call: Call) -> bool:
        if (call.service, call.action) != (self.service, self.action) or not self.match(
            call.params
        ):
            return False
        self.seen += 1
        if self.seen <= self.skip or self.injected >= self.times:
            return False
        self.injected += 1
        return True


@dataclass(kw_only=True)
class DeleteFails:
    """The first DeleteStack of `stack_name` is accepted but ends in DELETE_FAILED (its log
    group "could not be deleted"); a DeleteStack that retains resources then goes through."""

    stack_name: str
    failed_type: str = "AWS::Logs::LogGroup"
    state: str = "armed"  # armed -> deleting -> failed -> done
    retained: list[str] = field(default_factory=list)


class AwsTraffic:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.delete_failures: list[DeleteFails] = []
        # (service, action) -> event set when such a call arrives; and a delay for its answer.
        self.holds: dict[tuple[str, str], tuple[threading.Event, float]] = {}
        self._lock = threading.Lock()

    def hold(self, service: str, action: str, seconds: float) -> threading.Event:
        event = threading.Event()
        self.holds[(service, action)] = (event, seconds)
        return event

    def actions(self, service: str | None = None) -> list[str]:
        return [c.action for c in self.calls if service is None or c.service == service]

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            call = _parse(environ, body)
            if call is None:
                return app(environ, start_response)
            with self._lock:
                self.calls.append(call)
                fault = next((f for f in self.faults if f.fires(call)), None)
            if fault is not None:
                return _error(start_response, call, fault.code, fault.status)
            swallowed = self._delete_failure(call)
            if swallowed is not None:
                return _respond(start_response, 200, swallowed, "text/xml")
            hold = self.holds.get((call.service, call.action))
            if hold is not None:  # the call arrived; AWS takes its time before acting on it
                hold[0].set()
                time.sleep(hold[1])
            status_headers: list[Any] = []
            chunks = app(environ, lambda s, h, *a: status_headers.extend([s, h]))
            payload = b"".join(chunks)
            payload = self._rewrite(call, payload)
            headers = [(k, v) for k, v in status_headers[1] if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(payload))))
            start_response(status_headers[0], headers)
            return [payload]

        return middleware

    def _delete_failure(self, call: Call) -> bytes | None:
        if call.service != "cloudformation" or call.action != "DeleteStack":
            return None
        for failure in self.delete_failures:
            if failure.stack_name not in str(call.params.get("StackName")):
                continue
            retained = [v for k, v in call.params.items() if k.startswith("RetainResources.")]
            if failure.state == "armed":
                failure.state = "deleting"
                return b"<DeleteStackResponse><ResponseMetadata/></DeleteStackResponse>"
            if failure.state in ("deleting", "failed") and retained:
                failure.state, failure.retained = "done", retained
            elif failure.state in ("deleting", "failed"):
                return b"<DeleteStackResponse><ResponseMetadata/></DeleteStackResponse>"
        return None

    def _rewrite(self, call: Call, payload: bytes) -> bytes:
        if call.service != "cloudformation":
            return payload
        for failure in self.delete_failures:
            if failure.state not in ("deleting", "failed") or failure.stack_name not in str(
                call.params.get("StackName")
            ):
                continue
            text = payload.decode()
            if call.action == "DescribeStacks":
                status = "DELETE_IN_PROGRESS" if failure.state == "deleting" else "DELETE_FAILED"
                failure.state = "failed"
                text = re.sub(
                    r"<StackStatus>[A-Z_]+</StackStatus>",
                    f"<StackStatus>{status}</StackStatus>"
                    "<StackStatusReason>The following resource(s) failed to delete: "
                    "[LogGroup]. </StackStatusReason>",
                    text,
                )
            elif call.action == "ListStackResources":
                text = re.sub(
                    r"<member>.*?</member>",
                    lambda m, failed=failure.failed_type: _fail_member(m.group(0), failed),
                    text,
                    flags=re.S,
                )
            payload = text.encode()
        return payload


def _fail_member(member: str, failed_type: str) -> str:
    if f"<ResourceType>{failed_type}</ResourceType>" not in member:
        return member
    return re.sub(
        r"<ResourceStatus>[A-Z_]+</ResourceStatus>",
        "<ResourceStatus>DELETE_FAILED</ResourceStatus>"
        "<ResourceStatusReason>injected: resource could not be deleted</ResourceStatusReason>",
        member,
    )


def _parse(environ: dict[str, Any], body: bytes) -> Call | None:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        return None
    access_key, service = match.group(1), match.group(3)
    path = environ.get("PATH_INFO", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    params: Params = {}
    if target:
        action, protocol = target.rsplit(".", 1)[1], "json"
        params = json.loads(body or b"{}")
    else:
        form = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            form.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        action = form.pop("Action", None)
        protocol = "query" if action else "rest"
        action = action or f"{environ['REQUEST_METHOD']} {path}"
        params = form
    return Call(
        service=service,
        action=action,
        params=params,
        access_key=access_key,
        path=path,
        protocol=protocol,
        user_agent=environ.get("HTTP_USER_AGENT", ""),
    )


def _error(start_response: Callable[..., Any], call: Call, code: str, status: int) -> list[bytes]:
    message = f"injected by the rehearsal: {code}"
    if call.protocol == "rest":
        return _respond(start_response, status, json.dumps({"message": message}).encode(), "")
    if call.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return _respond(start_response, status, body, "application/x-amz-json-1.1")
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>rehearsal</RequestId></ErrorResponse>"
    ).encode()
    return _respond(start_response, status, body, "text/xml")


def _respond(
    start_response: Callable[..., Any], status: int, body: bytes, content_type: str
) -> list[bytes]:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", content_type or "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


class RecordingMotoServer(ThreadedMotoServer):
    """moto's threaded server with `traffic` in front of its application."""

    def __init__(self, traffic: AwsTraffic) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.traffic = traffic

    def _server_entry(self) -> None:
        app = self.traffic.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
