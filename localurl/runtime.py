"""A pool of Lambda execution environments, each run by the real runtime interface client.

An environment is `python -m awslambdaric <CMD>` started in the task root with the environment
variables Lambda sets (and nothing of ours), talking to its own Runtime API on 127.0.0.1
(runtime_api.py): the client resolves the CMD, builds the LambdaContext, serializes the return
value and reports errors exactly as in the image. A child process, unlike a thread, can be
killed when an invocation outlives the function's timeout, so a stuck handler never hangs the
endpoint; the next invocation gets a fresh environment, as in Lambda.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .runtime_api import (
    InvocationRequest,
    RuntimeApi,
    RuntimeFailure,
    RuntimeResponse,
)

# How an environment starts (the handler is appended): the venv's interpreter, without the
# user site directory or bytecode writes (the image's file system is read-only).
DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-s", "-B", "-m", "awslambdaric")
# Between SIGTERM and SIGKILL when the pool is closed (a timed-out environment gets SIGKILL).
SHUTDOWN_GRACE_SECONDS = 2.0


def _awslambdaric_dir() -> str:
    spec = importlib.util.find_spec("awslambdaric")
    if spec is None or spec.origin is None:
        raise RuntimeError("awslambdaric is not installed: pip install -r requirements-dev.txt")
    return str(Path(spec.origin).parent.parent)


def default_base_environment() -> dict[str, str]:
    """What the base image defines before Lambda adds its variables: a PATH that finds this
    interpreter, a UTF-8 locale, UTC, and where the runtime client lives."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_RUNTIME_DIR": _awslambdaric_dir(),
    }


@dataclass(frozen=True, kw_only=True)
class FunctionRuntimeConfig:
    code_dir: Path  # the task root
    handler: str  # "module.function", from the image's CMD
    environment: Mapping[str, str]  # the image's ENV and the function's own variables
    timeout_seconds: float
    memory_mb: int
    function_name: str
    function_arn: str  # the ARN the caller invoked: alias-qualified when the URL has a qualifier
    region: str
    log_path: Path
    concurrency: int = 2
    init_timeout_seconds: float = 60.0
    function_version: str = "$LATEST"
    log_group_name: str | None = None  # None: Lambda's default, /aws/lambda/<function name>
    execution_env: str | None = None  # AWS_EXECUTION_ENV of the image, e.g. AWS_Lambda_python3.12
    command: Sequence[str] = DEFAULT_COMMAND
    base_environment: Mapping[str, str] = field(default_factory=default_base_environment)


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: a result, or one of the failures."""

    result: Any = None
    error: str | None = None  # the errorType the runtime (or Lambda) reported
    timed_out: bool = False
    init_error: str | None = None  # "errorType: errorMessage" of the failed init
    error_document: Mapping[str, Any] | None = None


class InitError(RuntimeError):
    pass


# A response Lambda cannot hand to the Function URL: not JSON. Our label, not an AWS error type.
INVALID_RESPONSE = "InvalidResponsePayload"


def lambda_environment(
    config: FunctionRuntimeConfig, *, runtime_api: str, log_stream_name: str
) -> dict[str, str]:
    """The variables the function sees: the base image's, the image's ENV and the function's
    own, then Lambda's reserved ones on top (a function cannot override those)."""
    reserved = {
        "LAMBDA_TASK_ROOT": str(config.code_dir),
        "_HANDLER": config.handler,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group_name or f"/aws/lambda/{config.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
    }
    if config.execution_env:
        reserved["AWS_EXECUTION_ENV"] = config.execution_env
    return {**config.base_environment, **config.environment, **reserved}


def _log_stream_name(version: str) -> str:
    # Lambda's shape: 2026/12/02/[$LATEST]0123456789abcdef0123456789abcdef
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


def _trace_id() -> str:
    # X-Ray's header format; not sampled, as without active tracing.
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


class _Environment:
    """One execution environment: its Runtime API and the runtime client process."""

    def __init__(self, config: FunctionRuntimeConfig, log: IO[bytes]) -> None:
        self._config = config
        self._log = log
        self.api = RuntimeApi()
        self.api.start()
        self.log_stream_name = _log_stream_name(config.function_version)
        try:
            self.process = subprocess.Popen(
                [*config.command, config.handler],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=config.code_dir,
                env=lambda_environment(
                    config, runtime_api=self.api.address, log_stream_name=self.log_stream_name
                ),
            )
        except OSError:
            self.api.close()
            raise

    @property
    def reusable(self) -> bool:
        return self.process.poll() is None and not self.api.refused_runtime

    def wait_for_init(self) -> None:
        deadline = time.monotonic() + self._config.init_timeout_seconds
        while not self.api.wait_for_init(0.05):
            if self.process.poll() is not None:
                break
            if time.monotonic() > deadline:
                self.kill()
                raise InitError("function init failed: init timed out")
        failure = self.api.init_error
        if failure is not None or not self.api.initialized:
            self.kill()
            if failure is None:
                reason = f"Runtime.ExitError: Runtime exited with error: {self._exit_status()}"
            else:
                message = failure.document.get("errorMessage", "")
                reason = f"{failure.error_type}: {message}"
            raise InitError(reason)

    def invoke(self, payload: bytes, *, request_id: str) -> Invocation:
        timeout = self._config.timeout_seconds
        started = time.monotonic()
        pending = self.api.submit(
            InvocationRequest(
                request_id=request_id,
                payload=payload,
                # Whole milliseconds from now: the handler never sees more than the timeout.
                deadline_epoch_ms=int(time.time() * 1000) + int(timeout * 1000),
                invoked_function_arn=self._config.function_arn,
                trace_id=_trace_id(),
            )
        )
        while not pending.wait(min(0.05, max(0.0, started + timeout - time.monotonic()))):
            if self.process.poll() is not None and not pending.wait(0.05):
                return self._exited(request_id)
            if time.monotonic() - started >= timeout:
                self._platform_log(request_id, f"Task timed out after {timeout:.2f} seconds")
                return Invocation(timed_out=True)
        outcome = pending.outcome
        if isinstance(outcome, RuntimeFailure):
            return Invocation(error=outcome.error_type, error_document=outcome.document)
        assert isinstance(outcome, RuntimeResponse)
        try:
            return Invocation(result=json.loads(outcome.payload))
        except ValueError:
            document = {"errorType": INVALID_RESPONSE, "errorMessage": "the response is not JSON"}
            return Invocation(error=INVALID_RESPONSE, error_document=document)

    def _exited(self, request_id: str) -> Invocation:
        message = f"RequestId: {request_id} Error: Runtime exited with error: {self._exit_status()}"
        self._platform_log(request_id, message)
        document = {"errorType": "Runtime.ExitError", "errorMessage": message}
        return Invocation(error="Runtime.ExitError", error_document=document)

    def _exit_status(self) -> str:
        code = self.process.poll()
        if code is None:
            return "still running"
        if code < 0:
            return f"signal: {signal.Signals(-code).name}"
        return f"exit status {code}"

    def _platform_log(self, request_id: str, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self._log.write(f"{stamp} {request_id} {message}\n".encode())
        self._log.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.api.close()

    def shut_down(self) -> None:
        """SIGTERM, then SIGKILL after a grace period: a runtime may clean up in between."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
        self.kill()


class FunctionRuntime:
    def __init__(self, config: FunctionRuntimeConfig) -> None:
        self._config = config
        self._idle: queue.LifoQueue[_Environment] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._all: set[_Environment] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._log = config.log_path.open("ab")

    @property
    def config(self) -> FunctionRuntimeConfig:
        return self._config

    def warm_up(self) -> None:
        """Start one environment now, so the first request does not pay the init."""
        self._idle.put(self._start_environment())

    def invoke(self, event: Mapping[str, Any], *, request_id: str) -> Invocation:
        # stdlib json (ASCII-escaped) carries lone surrogates from undecodable bodies intact.
        payload = json.dumps(event).encode("ascii")
        with self._slots:
            environment = self._take_idle()
            if environment is None:
                try:
                    environment = self._start_environment()
                except InitError as exc:
                    return Invocation(init_error=str(exc))
            outcome = environment.invoke(payload, request_id=request_id)
            if outcome.timed_out or not environment.reusable:
                # Past the timeout, or the runtime died: Lambda discards the environment.
                self._discard(environment)
            else:
                self._idle.put(environment)
            return outcome

    def close(self) -> None:
        with self._lock:
            self._closed = True
            environments = list(self._all)
            self._all.clear()
        for environment in environments:
            environment.shut_down()
        self._log.close()

    def _take_idle(self) -> _Environment | None:
        while True:
            try:
                environment = self._idle.get_nowait()
            except queue.Empty:
                return None
            if environment.reusable:
                return environment
            self._discard(environment)

    def _start_environment(self) -> _Environment:
        with self._lock:
            if self._closed:
                raise InitError("the runtime is closed")
        try:
            environment = _Environment(self._config, self._log)
        except OSError as exc:
            raise InitError(f"the runtime could not start: {exc}") from exc
        environment.wait_for_init()
        with self._lock:
            self._all.add(environment)
        return environment

    def _discard(self, environment: _Environment) -> None:
        with self._lock:
            self._all.discard(environment)
        environment.kill()
