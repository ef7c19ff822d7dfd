"""Baseline for bench/endpoint_bench.py: the stand-in's execution environments before the Runtime
API (until issue 11): a child process running bench/pipe_worker.py, which imports the handler
itself and exchanges length-prefixed JSON frames with the pool over stdin/stdout. Kept only so
the benchmark can measure what awslambdaric and the Runtime API add, side by side in one run.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from localurl.runtime import FunctionRuntimeConfig, InitError, Invocation

WORKER_SCRIPT = Path(__file__).resolve().parent / "pipe_worker.py"


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    frames_out: IO[bytes] = field(init=False)

    def __post_init__(self) -> None:
        assert self.process.stdout is not None
        self.frames_out = self.process.stdout

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        payload = json.dumps(message).encode("ascii")
        self.process.stdin.write(len(payload).to_bytes(8, "big") + payload)
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any] | None:
        header = self._read_exact(8, time.monotonic() + timeout)
        if header is None:
            return None
        body = self._read_exact(int.from_bytes(header, "big"), time.monotonic() + timeout)
        return None if body is None else json.loads(body)

    def _read_exact(self, size: int, deadline: float) -> bytes | None:
        chunks = bytearray()
        fd = self.frames_out.fileno()
        while len(chunks) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, size - len(chunks))
            if not chunk:
                return None
            chunks.extend(chunk)
        return bytes(chunks)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class PipeWorkerRuntime:
    def __init__(self, config: FunctionRuntimeConfig) -> None:
        self._config = config
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._log = config.log_path.open("ab")

    @property
    def config(self) -> FunctionRuntimeConfig:
        return self._config

    def warm_up(self) -> None:
        """Start one environment now, so the first request does not pay the init."""
        self._idle.put(self._start_worker())

    def invoke(self, event: Mapping[str, Any], *, request_id: str) -> Invocation:
        with self._slots:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                try:
                    worker = self._start_worker()
                except InitError as exc:
                    return Invocation(init_error=str(exc))
            try:
                worker.send({"event": event, "request_id": request_id})
                reply = worker.receive(self._config.timeout_seconds)
            except (BrokenPipeError, OSError):
                reply = None
            if reply is None:
                # Past the timeout (or the environment died): Lambda discards it, so do we.
                self._discard(worker)
                return Invocation(timed_out=True)
            self._idle.put(worker)
            if "error" in reply:
                return Invocation(error=str(reply["error"]))
            return Invocation(result=reply["result"])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()
        self._log.close()

    def _start_worker(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise InitError("the runtime is closed")
        config = self._config
        env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(config.code_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(config.code_dir),
            "LOCALURL_FUNCTION_ARN": config.function_arn,
            **{k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
            **config.environment,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER_SCRIPT),
                config.handler,
                str(config.timeout_seconds),
                str(config.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=config.code_dir,
            env=env,
        )
        worker = _Worker(process)
        reply = worker.receive(config.init_timeout_seconds)
        if reply is None or "ready" not in reply:
            worker.kill()
            reason = "init timed out" if reply is None else reply.get("init_error", "init failed")
            raise InitError(f"function init failed: {reason}")
        with self._lock:
            self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill()
