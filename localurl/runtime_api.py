"""The Lambda Runtime API of one execution environment, served on 127.0.0.1.

What the runtime interface client (awslambdaric, as in the Lambda base images) talks to: it
long-polls `GET /2018-06-01/runtime/invocation/next` for an event and posts the outcome to
`.../invocation/{id}/response` or `.../invocation/{id}/error`, or, if the handler cannot be
loaded, to `.../init/error`. Paths, headers, status codes and error bodies follow AWS's
documentation of the API ("Using the Lambda runtime API for custom runtimes") and what the
Runtime Interface Emulator answers where the documentation names no body.

The environment is initialized when the runtime first asks for the next event (Lambda's end of
the init phase); one invocation at a time is handed out, as in Lambda.
"""

from __future__ import annotations

import json
import queue
import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
# The Runtime API's own limit on a response (AWS's error message names this number, which is
# 100 bytes above the 6 MiB invoke payload limit).
MAX_RESPONSE_BYTES = 6_291_556
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"

_INVOCATION_PATH = re.compile(
    rf"^{re.escape(PREFIX)}/invocation/(?P<request_id>[^/]+)/(?P<kind>response|error)$"
)
_INIT_ERROR_PATH = f"{PREFIX}/init/error"
_NEXT_PATH = f"{PREFIX}/invocation/next"
_CHUNK = 64 * 1024
_REMEMBERED_IDS = 256


@dataclass(frozen=True, kw_only=True)
class InvocationRequest:
    request_id: str
    payload: bytes
    deadline_epoch_ms: int
    invoked_function_arn: str
    trace_id: str


@dataclass(frozen=True, kw_only=True)
class RuntimeResponse:
    payload: bytes
    content_type: str


@dataclass(frozen=True, kw_only=True)
class RuntimeFailure:
    """What the runtime (or the API on its behalf) reported instead of a response."""

    error_type: str
    document: dict[str, Any]


Outcome = RuntimeResponse | RuntimeFailure


@dataclass(eq=False)
class PendingInvocation:
    request: InvocationRequest
    _done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def _settle(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._done.set()


class RuntimeApi:
    """One environment's Runtime API. `submit` hands an invocation to the runtime; the
    runtime's answer settles the returned PendingInvocation."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self._server = _ApiServer((host, 0), _ApiHandler)
        self._server.api = self
        self._lock = threading.Lock()
        self._work: queue.Queue[PendingInvocation | None] = queue.Queue()
        self._handed_out: OrderedDict[str, PendingInvocation] = OrderedDict()
        self._initialized = threading.Event()
        self._init_failed = threading.Event()
        self.init_error: RuntimeFailure | None = None
        # Set when the API refused something the runtime sent (e.g. a response over the size
        # limit): awslambdaric then raises and exits, so the environment is not reused.
        self.refused_runtime = False
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """host:port, as AWS_LAMBDA_RUNTIME_API carries it."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def initialized(self) -> bool:
        return self._initialized.is_set()

    @property
    def init_failed(self) -> bool:
        return self._init_failed.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},  # how long close() waits for the loop to notice
            name=f"runtime-api-{self.address}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._work.put(None)  # wakes a long-polling `next`, which passes it on
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_for_init(self, timeout: float) -> bool:
        """True once the runtime asked for its first event or reported an init error."""
        if self._initialized.wait(timeout):
            return True
        return self._init_failed.is_set()

    def submit(self, request: InvocationRequest) -> PendingInvocation:
        pending = PendingInvocation(request)
        self._work.put(pending)
        return pending

    # --- the runtime's side (called by the HTTP handler) --------------------------------------

    def _next(self) -> PendingInvocation | None:
        with self._lock:
            self._initialized.set()
        pending = self._work.get()
        if pending is None:
            self._work.put(None)  # closing: every other waiting `next` must see it too
            return None
        with self._lock:
            self._handed_out[pending.request.request_id] = pending
            while len(self._handed_out) > _REMEMBERED_IDS:
                self._handed_out.popitem(last=False)
        return pending

    def _settle(self, request_id: str, outcome: Outcome) -> tuple[int, dict[str, str]]:
        with self._lock:
            pending = self._handed_out.get(request_id)
            if pending is None:
                return 400, _error("Invalid request ID", "InvalidRequestID")
            if pending.outcome is not None:
                return 403, _invalid_transition("InvocationResponseSent", "InvocationResponse")
            pending._settle(outcome)
        return 202, {"status": "OK"}

    def _post_init_error(self, failure: RuntimeFailure) -> tuple[int, dict[str, str]]:
        with self._lock:
            if self._initialized.is_set() or self.init_error is not None:
                return 403, _invalid_transition("Ready", "InitError")
            self.init_error = failure
            self._init_failed.set()
        return 202, {"status": "OK"}


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    api: RuntimeApi

    def handle_error(self, request: object, client_address: object) -> None:
        # A runtime killed mid-request (timeout, shutdown) drops its connection: expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _ApiHandler(BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # the runtime's requests are not the function's logs

    def do_GET(self) -> None:
        if self.path != _NEXT_PATH:
            self._drain()
            self._send_json(404, _error(f"no such path: GET {self.path}", "NotFound"))
            return
        pending = self.server.api._next()
        if pending is None:
            self.close_connection = True
            self._send_json(500, _error("the execution environment is shutting down", "Shutdown"))
            return
        request = pending.request
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", request.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(request.deadline_epoch_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", request.invoked_function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", request.trace_id)
        self.send_header("Content-Length", str(len(request.payload)))
        self.end_headers()
        self.wfile.write(request.payload)

    def do_POST(self) -> None:
        api = self.server.api
        body, too_large = self._read_body(MAX_RESPONSE_BYTES)
        if self.path == _INIT_ERROR_PATH:
            self._send_json(*api._post_init_error(self._failure(body)))
            return
        match = _INVOCATION_PATH.match(self.path)
        if match is None:
            self._send_json(404, _error(f"no such path: POST {self.path}", "NotFound"))
            return
        request_id = match["request_id"]
        if match["kind"] == "error":
            self._send_json(*api._settle(request_id, self._failure(body)))
            return
        if too_large:
            status, answer = api._settle(request_id, _response_too_large())
            if status == 202:
                api.refused_runtime = True
                status, answer = (
                    413,
                    _error(
                        f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                        "RequestEntityTooLarge",
                    ),
                )
            self._send_json(status, answer)
            return
        content_type = self.headers.get("Content-Type") or "application/json"
        outcome = RuntimeResponse(payload=body, content_type=content_type)
        self._send_json(*api._settle(request_id, outcome))

    def do_PUT(self) -> None:
        self._method_not_allowed()

    def do_DELETE(self) -> None:
        self._method_not_allowed()

    def _method_not_allowed(self) -> None:
        self._drain()
        self._send_json(405, _error(f"{self.command} is not allowed here", "MethodNotAllowed"))

    def _failure(self, body: bytes) -> RuntimeFailure:
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        error_type = (
            self.headers.get(ERROR_TYPE_HEADER) or document.get("errorType") or "Runtime.Unknown"
        )
        return RuntimeFailure(error_type=str(error_type), document=document)

    def _read_body(self, limit: int) -> tuple[bytes, bool]:
        """The body, and whether it exceeded `limit` (then only its first `limit` bytes are kept;
        the rest is read and dropped, so the keep-alive connection stays usable)."""
        kept = bytearray()
        total = 0
        for chunk in self._body_chunks():
            total += len(chunk)
            if len(kept) <= limit:
                kept.extend(chunk[: limit + 1 - len(kept)])
        return bytes(kept[:limit]), total > limit

    def _body_chunks(self):  # type: ignore[no-untyped-def]
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    chunk = self.rfile.read(min(remaining, _CHUNK))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    yield chunk
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _CHUNK))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _drain(self) -> None:
        for _ in self._body_chunks():
            pass

    def _send_json(self, status: int, document: dict[str, str]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _error(message: str, error_type: str) -> dict[str, str]:
    return {"errorMessage": message, "errorType": error_type}


def _invalid_transition(state: str, to: str) -> dict[str, str]:
    return _error(
        f"State transition from {state} to {to} failed for runtime. "
        "Error: State transition is not allowed",
        "InvalidStateTransition",
    )


def _response_too_large() -> RuntimeFailure:
    document = _error(
        f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} "
        "bytes).",
        "Function.ResponseSizeTooLarge",
    )
    return RuntimeFailure(error_type=document["errorType"], document=dict(document))
