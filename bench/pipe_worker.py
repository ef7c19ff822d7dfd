"""Baseline worker (bench/pipe_runtime.py): a Lambda-like execution environment in a process.

Started with the function's environment and its code folder on sys.path; imports the CMD's
handler once (init), then answers events read from stdin, one length-prefixed JSON frame each.
The handler's own stdout goes to stderr (the "log group"), keeping stdout for frames.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, BinaryIO


class LambdaContext:
    def __init__(
        self, *, request_id: str, deadline: float, function_name: str, memory: int
    ) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = os.environ.get("LOCALURL_FUNCTION_ARN", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    payload = stream.read(int.from_bytes(header, "big"))
    return json.loads(payload)


def _write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    # stdlib json (ASCII-escaped) carries lone surrogates from undecodable bodies intact.
    payload = json.dumps(message).encode("ascii")
    stream.write(len(payload).to_bytes(8, "big") + payload)
    stream.flush()


def main() -> None:
    # Running by path put this folder first on sys.path; the function must not see it.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    frames_in = sys.stdin.buffer
    module_name, _, function_name = sys.argv[1].rpartition(".")
    timeout = float(sys.argv[2])
    memory = int(sys.argv[3])
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # noqa: BLE001 - an init failure is reported, like Lambda's
        traceback.print_exc()
        _write_frame(frames_out, {"init_error": f"{type(exc).__name__}: {exc}"})
        return
    _write_frame(frames_out, {"ready": True})
    while (frame := _read_frame(frames_in)) is not None:
        context = LambdaContext(
            request_id=frame["request_id"],
            deadline=time.monotonic() + timeout,
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            memory=memory,
        )
        try:
            result = handler(frame["event"], context)
            _write_frame(frames_out, {"result": result})
        except Exception as exc:  # noqa: BLE001 - the runtime reports any handler exception
            traceback.print_exc()
            _write_frame(frames_out, {"error": type(exc).__name__})


if __name__ == "__main__":
    main()
