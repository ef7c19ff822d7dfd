"""The stand-in's execution environments and its result mapping, with small functions of our own.

Every environment is the real runtime interface client (awslambdaric) against the local Runtime
API, so what these throwaway handlers see and how their failures are reported is what the
image's runtime does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localurl.response_mapping import map_invocation
from localurl.runtime import (
    INVALID_RESPONSE,
    FunctionRuntime,
    FunctionRuntimeConfig,
    Invocation,
)
from tests.aws_spec import INVOKE_PAYLOAD_BYTES, RUNTIME_API_RESPONSE_BYTES

ALIAS_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn:Dev"
TIMEOUT_SECONDS = 1.5
CANARY = "LOCALURL_TEST_CALLER_ONLY"

FUNCTION_CODE = textwrap.dedent(
    """
    import os, sys, time

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
            return sys.path
        if kind == "big":
            return {"statusCode": 200, "body": "x" * event["size"]}
        if kind == "environ":
            return dict(os.environ)
        if kind == "lambda_context":
            return {
                "type": type(context).__module__ + "." + type(context).__qualname__,
                "main": sys.modules["__main__"].__spec__.name,
                "aws_request_id": context.aws_request_id,
                "invoked_function_arn": context.invoked_function_arn,
                "remaining": context.get_remaining_time_in_millis(),
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
            }
        if kind == "unserializable":
            return {"statusCode": 200, "body": object()}
        if kind == "bytes":
            return b"not json"
        if kind == "exit":
            os._exit(3)
        if kind == "raw_size":
            # A JSON string of exactly `size` bytes once serialized.
            return "x" * (event["size"] - 2)
        return event.get("value")
    """
)


def make_config(code: Path, log_path: Path, **overrides: object) -> FunctionRuntimeConfig:
    settings: dict[str, object] = {
        "code_dir": code,
        "handler": "fn.handler",
        "environment": {"GREETING": "hello"},
        "timeout_seconds": TIMEOUT_SECONDS,
        "memory_mb": 256,
        "function_name": "fn",
        "function_arn": ALIAS_ARN,
        "function_version": "7",
        "execution_env": "AWS_Lambda_python3.12",
        "region": "us-east-1",
        "log_path": log_path,
        "concurrency": 2,
    }
    settings.update(overrides)
    return FunctionRuntimeConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionRuntime]:
    # Set in this process only: an environment that sees it leaked the caller's variables.
    monkeypatch.setenv(CANARY, "leaked")
    code = tmp_path / "code"
    code.mkdir()
    (code / "fn.py").write_text(FUNCTION_CODE)
    runtime = FunctionRuntime(make_config(code, tmp_path / "fn.log"))
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def runtime_for(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], FunctionRuntime]]:
    """A runtime for `handler` over a task root holding `files` (name -> source)."""
    made: list[FunctionRuntime] = []

    def make(handler: str, files: dict[str, str]) -> FunctionRuntime:
        code = tmp_path / f"code{len(made)}"
        code.mkdir()
        for name, source in files.items():
            (code / name).write_text(source)
        runtime = FunctionRuntime(make_config(code, tmp_path / "fn.log", handler=handler))
        made.append(runtime)
        return runtime

    try:
        yield make
    finally:
        for runtime in made:
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


def test_handler_gets_the_runtime_clients_lambda_context(runtime: FunctionRuntime) -> None:
    """GIVEN an environment run by awslambdaric WHEN invoked THEN the handler's context is the
    client's LambdaContext, built from the Runtime API's headers and Lambda's variables."""
    seen = runtime.invoke({"kind": "lambda_context"}, request_id="req-ctx").result
    assert seen["type"] == "awslambdaric.lambda_context.LambdaContext"
    assert seen["main"] == "awslambdaric.__main__"
    assert seen["aws_request_id"] == "req-ctx"
    assert seen["invoked_function_arn"] == ALIAS_ARN
    # Equal only within the millisecond the deadline was set (the URL test sees it strictly below).
    assert 0 < seen["remaining"] <= TIMEOUT_SECONDS * 1000
    # awslambdaric reads the memory size from the environment: a string, as on AWS.
    assert seen["memory_limit_in_mb"] == "256"
    assert (seen["function_name"], seen["function_version"]) == ("fn", "7")
    assert seen["log_group_name"] == "/aws/lambda/fn"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[7\][0-9a-f]{32}", seen["log_stream_name"])
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", seen["trace_id"]
    )


def test_environment_is_lambdas_and_nothing_of_the_callers(runtime: FunctionRuntime) -> None:
    """GIVEN a variable set in the calling process WHEN the function lists its environment
    THEN it sees exactly Lambda's variables, the base image's and its own, and not the caller's."""
    assert os.environ[CANARY] == "leaked"
    env = runtime.invoke({"kind": "environ"}, request_id="req-env").result
    config = runtime.config
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    expected = {
        "LAMBDA_TASK_ROOT": str(config.code_dir),
        "_HANDLER": "fn.handler",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "7",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "GREETING": "hello",
        "TZ": ":UTC",
    }
    assert {name: env.get(name) for name in expected} == expected
    assert CANARY not in env
    assert set(env) == {
        *expected,
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "_X_AMZN_TRACE_ID",  # set by the runtime client per invocation
        "PATH",
        "LANG",
        "LAMBDA_RUNTIME_DIR",
    }


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
    """GIVEN a handler that raises WHEN invoked THEN the runtime's error document (type, message,
    stack trace) reaches the stand-in, the URL answers 502, and the environment is kept."""
    pid = runtime.invoke({"kind": "pid"}, request_id="r0").result["pid"]
    outcome = runtime.invoke({"kind": "raise"}, request_id="r")
    assert outcome.error == "ValueError"
    assert outcome.error_document is not None
    assert outcome.error_document["errorMessage"] == "boom"
    assert outcome.error_document["requestId"] == "r"
    (frame,) = outcome.error_document["stackTrace"]
    assert "fn.py" in frame
    assert 'raise ValueError("boom")' in frame
    response = map_invocation(outcome)
    assert (response.status, response.body) == (502, b"Internal Server Error")
    assert "[ERROR] ValueError: boom" in runtime.config.log_path.read_text()
    assert runtime.invoke({"kind": "pid"}, request_id="r2").result["pid"] == pid


def test_unserializable_return_value_is_a_marshal_error(runtime: FunctionRuntime) -> None:
    outcome = runtime.invoke({"kind": "unserializable"}, request_id="r")
    assert outcome.error == "Runtime.MarshalError"
    assert outcome.error_document is not None
    assert "Unable to marshal response" in outcome.error_document["errorMessage"]
    assert map_invocation(outcome).status == 502
    # The control: a serializable value from the same environment is answered.
    assert map_invocation(runtime.invoke({"value": [1]}, request_id="r2")).status == 200


def test_non_json_return_value_maps_to_502(runtime: FunctionRuntime) -> None:
    # bytes pass the runtime client unencoded: the Function URL cannot read them as JSON.
    outcome = runtime.invoke({"kind": "bytes"}, request_id="r")
    assert outcome.error == INVALID_RESPONSE
    assert map_invocation(outcome).status == 502


def test_runtime_exit_is_an_exit_error_and_replaces_the_environment(
    runtime: FunctionRuntime,
) -> None:
    pid = runtime.invoke({"kind": "pid"}, request_id="r0").result["pid"]
    outcome = runtime.invoke({"kind": "exit"}, request_id="r1")
    assert outcome.error == "Runtime.ExitError"
    assert outcome.error_document is not None
    assert "exit status 3" in outcome.error_document["errorMessage"]
    assert map_invocation(outcome).status == 502
    assert runtime.invoke({"kind": "pid"}, request_id="r2").result["pid"] != pid


def test_response_over_the_runtime_api_limit_fails_like_lambda(runtime: FunctionRuntime) -> None:
    """GIVEN return values serializing to exactly the Runtime API's limit and one byte more
    THEN the first reaches the stand-in whole, the second fails as Function.ResponseSizeTooLarge
    (502) and its environment is replaced (the runtime client exits on the 413)."""
    fits = runtime.invoke({"kind": "raw_size", "size": RUNTIME_API_RESPONSE_BYTES}, request_id="r0")
    assert fits.error is None
    assert len(fits.result) == RUNTIME_API_RESPONSE_BYTES - 2
    pid = runtime.invoke({"kind": "pid"}, request_id="r1").result["pid"]
    over = runtime.invoke(
        {"kind": "raw_size", "size": RUNTIME_API_RESPONSE_BYTES + 1}, request_id="r2"
    )
    assert over.error == "Function.ResponseSizeTooLarge"
    assert map_invocation(over).status == 502
    assert runtime.invoke({"kind": "pid"}, request_id="r3").result["pid"] != pid


@pytest.mark.parametrize(
    ("handler", "files", "error_type", "message"),
    [
        ("missing.handler", {}, "Runtime.ImportModuleError", "No module named 'missing'"),
        (
            "fn.handler",
            {"fn.py": "import not_installed_anywhere\ndef handler(e, c): return 1\n"},
            "Runtime.ImportModuleError",
            "No module named 'not_installed_anywhere'",
        ),
        ("fn.nope", {"fn.py": "def handler(e, c): return 1\n"}, "Runtime.HandlerNotFound", "nope"),
        (
            "fn.handler",
            {"fn.py": "def handler(e, c) return 1\n"},
            "Runtime.UserCodeSyntaxError",
            "",
        ),
        ("handler", {"fn.py": ""}, "Runtime.MalformedHandlerName", "Bad handler"),
    ],
    ids=["module-missing", "import-inside-module", "function-missing", "syntax", "no-module-part"],
)
def test_cmd_that_cannot_be_loaded_is_an_init_error(
    runtime_for: Callable[[str, dict[str, str]], FunctionRuntime],
    handler: str,
    files: dict[str, str],
    error_type: str,
    message: str,
) -> None:
    """GIVEN a CMD the runtime client cannot resolve WHEN invoked THEN init fails with the
    client's error type (posted to /runtime/init/error) and the URL answers 502; the same task
    root with a loadable CMD (the control) answers."""
    outcome = runtime_for(handler, files).invoke({"value": 1}, request_id="r")
    assert outcome.init_error is not None
    assert outcome.init_error.startswith(f"{error_type}: ")
    assert message in outcome.init_error
    assert map_invocation(outcome).status == 502
    control = runtime_for("ok.handler", {**files, "ok.py": "def handler(e, c): return 1\n"})
    assert control.invoke({}, request_id="r").result == 1


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
    assert outcome.init_error == "RuntimeError: init broke"
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
    outcome = runtime.invoke({"kind": "big", "size": INVOKE_PAYLOAD_BYTES + 1}, request_id="r")
    assert map_invocation(outcome).status == 413
    under = runtime.invoke({"kind": "big", "size": INVOKE_PAYLOAD_BYTES - 1024}, request_id="r")
    assert map_invocation(under).status == 200
