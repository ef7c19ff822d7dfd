"""The local Function URL: an HTTP server on 127.0.0.1 that authenticates, authorizes, builds the
payload 2.0 event, invokes the function's code and maps the result, as AWS does."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from .lambda_event import IamCaller, UrlIdentity, build_event, exceeds_payload_limit
from .response_mapping import (
    MAX_PAYLOAD_BYTES,
    HttpResponse,
    aws_error,
    map_invocation,
    payload_too_large,
)
from .runtime import FunctionRuntime

log = logging.getLogger(__name__)


class AccessDenied(Exception):
    """Authentication or authorization failed: a 403 with AWS's body shape."""

    def __init__(self, message: str = "Forbidden") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, kw_only=True)
class SignedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes


# Returns the verified caller, or raises AccessDenied. None: AuthType NONE, no check.
Authorizer = Callable[[SignedRequest], IamCaller]


@dataclass(frozen=True, kw_only=True)
class UrlTarget:
    identity: UrlIdentity
    authorizer: Authorizer | None
    runtime: FunctionRuntime


class FunctionUrlServer(ThreadingHTTPServer):
    daemon_threads = True
    # Bounded listen backlog, generous enough for the load test's concurrent clients.
    request_queue_size = 64

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _RequestHandler)
        self.target: UrlTarget | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def configure(self, target: UrlTarget) -> None:
        self.target = target

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="function-url", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _RequestHandler(BaseHTTPRequestHandler):
    server: FunctionUrlServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm and delayed ACKs each
    # keep-alive response would wait ~40 ms for the peer's ACK.
    disable_nagle_algorithm = True
    methods: ClassVar[tuple[str, ...]] = (
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "HEAD",
        "OPTIONS",
    )

    def log_message(self, format: str, *args: object) -> None:
        # The default writes request lines to stderr; keep the access log at debug, no headers.
        log.debug("%s %s", self.address_string(), format % args)

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_") and name[3:] in self.methods:
            return self._handle
        raise AttributeError(name)

    def _handle(self) -> None:
        response = self._respond()
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.send_header("x-amzn-requestid", self._request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _respond(self) -> HttpResponse:
        self._request_id = str(uuid.uuid4())
        target = self.server.target
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            # The event is never smaller than the body: refuse before reading it.
            # Drain nothing: the connection is closed after this answer.
            self.close_connection = True
            return payload_too_large("Request")
        body = self.rfile.read(length) if length else b""
        if target is None:
            return aws_error(503, "Service Unavailable")
        raw_path, _, raw_query = self.path.partition("?")
        request = SignedRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
        )
        caller: IamCaller | None = None
        if target.authorizer is not None:
            try:
                caller = target.authorizer(request)
            except AccessDenied as denied:
                return aws_error(403, denied.message)
        event = build_event(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=request.headers,
            body=body,
            source_ip=self.client_address[0],
            url=target.identity,
            caller=caller,
            request_id=self._request_id,
        )
        if exceeds_payload_limit(event):
            # Lambda checks its 6 MB limit on the event, after the URL has built it.
            return payload_too_large("Request")
        return map_invocation(target.runtime.invoke(event, request_id=self._request_id))
