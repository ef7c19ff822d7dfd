"""One structured JSON line per request. Only the fields named here are ever logged:
never the body, headers, query string or anything else from the event."""

from __future__ import annotations

import sys

import orjson

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from typing import TextIO


class RequestLogger:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def request(
        self,
        *,
        request_id: str,
        method: str,
        rows: int,
        status: int,
        duration_ms: float,
        error_code: str | None,
        failure: BaseException | None = None,
    ) -> None:
        record: dict[str, object] = {
            "level": "ERROR" if status >= 500 else "INFO",
            "message": "request",
            "request_id": request_id,
            "method": method,
            "rows": rows,
            "status": status,
            "duration_ms": round(duration_ms, 3),
        }
        if error_code is not None:
            record["error_code"] = error_code
        if failure is not None:
            # On the request's own line, so a 500 is still one line: the traceback holds code
            # locations and exception text, not the event. Imported on this path only: it
            # pulls in linecache, textwrap and contextlib, a cold start's worth of them.
            import traceback

            record["traceback"] = "".join(traceback.format_exception(failure))
        self._write(record)

    def _write(self, record: dict[str, object]) -> None:
        stream = self._stream or sys.stdout
        stream.write(orjson.dumps(record).decode() + "\n")
        stream.flush()
