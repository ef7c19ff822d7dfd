"""The stand-in's execution environments and its result mapping, with small functions of our own."""

from __future__ import annotations

import base64
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localurl.response_mapping import MAX_PAYLOAD_BYTES, map_invocation
from localurl.runtime import FunctionRuntime, FunctionRuntimeConfig, Invocation

FUNCTION_CODE = textwrap.dedent(
    """
    import os, time

    INIT_PID = os.getpid()

    def handler(event, context):
        kind = event.get("kind")
        if kind == "echo_env":
            return {"statusCode": 200, "body": os.environ.get("GREETING", "")}
        if kind == "sleep":
            time.sleep(event["seconds"])
            return {"statusCode": 200, "body": "woke"}
        if kind == "raise":
            raise ValueError("boom")
        if kind == "pid":
            return {"pid": os.getpid(), "init_pid": INIT_PID}
        if kind == "context":
            return {
                "request_id": context.aws_request_id,
                "remaining": context.get_remaining_time_in_millis(),
            }
        if kind == "sys_path":
            import sys
            return sys.path
        if kind == "big":
            return {"statusCode": 200, "body": "x" * event["size"]}
        return event.get("value")
    """
)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[FunctionRuntime]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "fn.py").write_text(FUNCTION_CODE)
    runtime = FunctionRuntime(
        FunctionRuntimeConfig(
            code_dir=code,
            handler="fn.handler",
            environment={"GREETING": "hello"},
            timeout_seconds=1.5,
            memory_mb=256,
            function_name="fn",
            function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn:Dev",
            region="us-east-1",
            log_path=tmp_path / "fn.log",
            concurrency=2,
        )
    )
    try:
        yield runtime
    finally:
        runtime.close()


def test_environment_from_config_reaches_the_function(runtime: FunctionRuntime) -> None:
    result = runtime.invoke({"kind": "echo_env"}, request_id="r1")
    assert result.result == {"statusCode": 200, "body": "hello"}


def test_environment_is_reused_between_invocations(runtime: FunctionRuntime) -> None:
    first = runtime.invoke({"kind": "pid"}, request_id="r1").result
    second = runtime.invoke({"kind": "pid"}, request_id="r2").result
    assert first["pid"] == second["pid"] == first["init_pid"]


def test_context_carries_request_id_and_remaining_time(runtime: FunctionRuntime) -> None:
    result = runtime.invoke({"kind": "context"}, request_id="req-42").result
    assert result["request_id"] == "req-42"
    assert 0 < result["remaining"] <= 1500


def test_function_sees_only_its_own_code_folder(
    runtime: FunctionRuntime, project_root: Path
) -> None:
    path = runtime.invoke({"kind": "sys_path"}, request_id="r").result
    assert str(runtime.config.code_dir) in path
    assert not any(Path(p or ".").resolve() == project_root for p in path)
    assert not any(Path(p or ".").resolve() == project_root / "localurl" for p in path)


def test_timeout_returns_502_without_hanging_and_recovers(runtime: FunctionRuntime) -> None:
    """GIVEN a function that outlives its timeout WHEN invoked THEN the answer comes at about the
    timeout, maps to 502, and the next invocation gets a fresh environment."""
    pid_before = runtime.invoke({"kind": "pid"}, request_id="a").result["pid"]
    started = time.monotonic()
    outcome = runtime.invoke({"kind": "sleep", "seconds": 30}, request_id="b")
    elapsed = time.monotonic() - started
    assert outcome.timed_out
    assert elapsed < 10
    assert map_invocation(outcome).status == 502
    after = runtime.invoke({"kind": "pid"}, request_id="c").result
    assert after["pid"] != pid_before
    assert runtime.invoke({"kind": "echo_env"}, request_id="d").result["body"] == "hello"


def test_exception_maps_to_502_internal_server_error(runtime: FunctionRuntime) -> None:
    outcome = runtime.invoke({"kind": "raise"}, request_id="r")
    assert outcome.error == "ValueError"
    response = map_invocation(outcome)
    assert (response.status, response.body) == (502, b"Internal Server Error")
    assert "ValueError: boom" in runtime.config.log_path.read_text()


def test_init_failure_maps_to_502(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "fn.py").write_text("raise RuntimeError('init broke')\ndef handler(e, c): return 1\n")
    runtime = FunctionRuntime(
        FunctionRuntimeConfig(
            code_dir=code,
            handler="fn.handler",
            environment={},
            timeout_seconds=2,
            memory_mb=128,
            function_name="fn",
            function_arn="arn",
            region="us-east-1",
            log_path=tmp_path / "fn.log",
        )
    )
    try:
        outcome = runtime.invoke({}, request_id="r")
    finally:
        runtime.close()
    assert outcome.init_error is not None
    assert map_invocation(outcome).status == 502


@pytest.mark.parametrize(
    ("returned", "status", "headers", "body"),
    [
        (
            {"statusCode": 201, "headers": {"X-A": "1"}, "body": "made"},
            201,
            [("x-a", "1"), ("content-type", "application/json")],
            b"made",
        ),
        (
            {
                "statusCode": 200,
                "body": base64.b64encode(b"\x00\xff").decode(),
                "isBase64Encoded": True,
                "headers": {"content-type": "application/octet-stream"},
            },
            200,
            [("content-type", "application/octet-stream")],
            b"\x00\xff",
        ),
        (
            {"statusCode": 200, "cookies": ["a=1", "b=2"], "body": ""},
            200,
            [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("content-type", "application/json")],
            b"",
        ),
        (
            {"message": "no status code"},
            200,
            [("content-type", "application/json")],
            json.dumps({"message": "no status code"}).encode(),
        ),
        ([1, 2], 200, [("content-type", "application/json")], b"[1, 2]"),
        ("text", 200, [("content-type", "application/json")], b'"text"'),
    ],
)
def test_result_maps_as_function_url_does(
    returned: object, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    response = map_invocation(Invocation(result=returned))
    assert (response.status, response.headers, response.body) == (status, headers, body)


def test_malformed_structured_result_maps_to_502() -> None:
    assert map_invocation(Invocation(result={"statusCode": "abc"})).status == 502
    bad_base64 = {"statusCode": 200, "body": "%%%", "isBase64Encoded": True}
    assert map_invocation(Invocation(result=bad_base64)).status == 502


def test_response_over_6_mb_maps_to_413(runtime: FunctionRuntime) -> None:
    outcome = runtime.invoke({"kind": "big", "size": MAX_PAYLOAD_BYTES + 1}, request_id="r")
    assert map_invocation(outcome).status == 413
    under = runtime.invoke({"kind": "big", "size": MAX_PAYLOAD_BYTES - 1024}, request_id="r")
    assert map_invocation(under).status == 200
