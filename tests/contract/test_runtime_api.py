"""The local Runtime API, spoken to over HTTP on 127.0.0.1 as a runtime client would: paths,
headers and status codes as AWS documents them. Each refusal has its accepted twin."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from localurl.runtime_api import (
    InvocationRequest,
    RuntimeApi,
    RuntimeFailure,
    RuntimeResponse,
)
from tests.aws_spec import RUNTIME_API_RESPONSE_BYTES

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn:Dev"
NEXT = "/2018-06-01/runtime/invocation/next"


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    runtime_api = RuntimeApi()
    runtime_api.start()
    try:
        yield runtime_api
    finally:
        runtime_api.close()


def request(request_id: str = "req-1", payload: bytes = b'{"a": 1}') -> InvocationRequest:
    return InvocationRequest(
        request_id=request_id,
        payload=payload,
        deadline_epoch_ms=int(time.time() * 1000) + 3000,
        invoked_function_arn=ARN,
        trace_id="Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
    )


def call(
    api: RuntimeApi,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(api.address, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post(api: RuntimeApi, path: str, document: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    status, _, body = call(api, "POST", path, json.dumps(document).encode(), headers)
    return status, json.loads(body)


def test_next_hands_out_the_event_with_the_documented_headers(api: RuntimeApi) -> None:
    pending = api.submit(request("req-7", b'{"kind": "x"}'))
    status, headers, body = call(api, "GET", NEXT)
    assert status == 200
    assert body == b'{"kind": "x"}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-7"
    assert headers["Lambda-Runtime-Deadline-Ms"] == str(pending.request.deadline_epoch_ms)
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]",
        headers["Lambda-Runtime-Trace-Id"],
    )
    assert headers["Content-Type"] == "application/json"
    assert api.initialized


def test_next_long_polls_until_an_invocation_arrives(api: RuntimeApi) -> None:
    answers: list[tuple[int, dict[str, str], bytes]] = []
    poller = threading.Thread(target=lambda: answers.append(call(api, "GET", NEXT)))
    poller.start()
    poller.join(timeout=0.5)
    assert poller.is_alive(), "next answered before there was an invocation"
    api.submit(request("late"))
    poller.join(timeout=10)
    assert answers[0][1]["Lambda-Runtime-Aws-Request-Id"] == "late"


def test_response_is_accepted_once_for_the_handed_out_request_id(api: RuntimeApi) -> None:
    pending = api.submit(request("req-1"))
    call(api, "GET", NEXT)
    response = "/2018-06-01/runtime/invocation/{}/response"

    unknown = post(api, response.format("someone-else"), {"x": 1})
    accepted = post(api, response.format("req-1"), {"x": 1})
    again = post(api, response.format("req-1"), {"x": 2})

    assert unknown == (400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
    assert accepted == (202, {"status": "OK"})
    assert again[0] == 403
    assert again[1]["errorType"] == "InvalidStateTransition"
    assert pending.wait(1)
    assert pending.outcome == RuntimeResponse(payload=b'{"x": 1}', content_type="application/json")


def test_response_for_an_event_not_yet_handed_out_is_refused(api: RuntimeApi) -> None:
    api.submit(request("queued"))
    status, document = post(api, "/2018-06-01/runtime/invocation/queued/response", {})
    assert (status, document["errorType"]) == (400, "InvalidRequestID")


def test_error_is_reported_with_its_type_from_header_or_body(api: RuntimeApi) -> None:
    first = api.submit(request("r1"))
    second = api.submit(request("r2"))
    error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["  File x"]}
    call(api, "GET", NEXT)
    assert post(api, "/2018-06-01/runtime/invocation/r1/error", error) == (202, {"status": "OK"})
    call(api, "GET", NEXT)
    status, _ = post(
        api,
        "/2018-06-01/runtime/invocation/r2/error",
        error,
        **{"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"},
    )
    assert status == 202
    assert first.wait(1)
    assert second.wait(1)
    assert first.outcome == RuntimeFailure(error_type="ValueError", document=error)
    assert second.outcome == RuntimeFailure(error_type="Runtime.Custom", document=error)


def test_response_over_the_limit_is_refused_with_413(api: RuntimeApi) -> None:
    """GIVEN two invocations WHEN the runtime posts exactly the Runtime API's limit, then one
    byte more THEN 202, then 413 RequestEntityTooLarge and the invocation fails as Lambda
    reports it."""
    at_limit = api.submit(request("fits"))
    over = api.submit(request("too-big"))
    call(api, "GET", NEXT)
    status, _, _ = call(
        api,
        "POST",
        "/2018-06-01/runtime/invocation/fits/response",
        b"x" * RUNTIME_API_RESPONSE_BYTES,
    )
    assert status == 202
    assert not api.refused_runtime
    call(api, "GET", NEXT)
    status, _, body = call(
        api,
        "POST",
        "/2018-06-01/runtime/invocation/too-big/response",
        b"x" * (RUNTIME_API_RESPONSE_BYTES + 1),
    )
    assert status == 413
    assert json.loads(body) == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    assert api.refused_runtime
    assert isinstance(at_limit.outcome, RuntimeResponse)
    assert len(at_limit.outcome.payload) == RUNTIME_API_RESPONSE_BYTES
    assert isinstance(over.outcome, RuntimeFailure)
    assert over.outcome.error_type == "Function.ResponseSizeTooLarge"


def test_init_error_is_accepted_only_before_the_first_next(api: RuntimeApi) -> None:
    error = {
        "errorMessage": "Unable to import module 'x'",
        "errorType": "Runtime.ImportModuleError",
    }
    accepted = post(api, "/2018-06-01/runtime/init/error", error)
    assert accepted == (202, {"status": "OK"})
    assert api.init_failed
    assert api.init_error == RuntimeFailure(error_type="Runtime.ImportModuleError", document=error)

    initialized = RuntimeApi()
    initialized.start()
    try:
        initialized.submit(request())
        call(initialized, "GET", NEXT)
        status, document = post(initialized, "/2018-06-01/runtime/init/error", error)
    finally:
        initialized.close()
    assert (status, document["errorType"]) == (403, "InvalidStateTransition")
    assert initialized.init_error is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/2018-06-01/runtime/invocation/r/response"), ("POST", "/2018-06-01/runtime/nope")],
)
def test_unknown_paths_are_404(api: RuntimeApi, method: str, path: str) -> None:
    status, _, _ = call(api, method, path, b"{}" if method == "POST" else None)
    assert status == 404
    assert not api.initialized
