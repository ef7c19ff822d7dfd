"""One structured JSON line per request. Only the fields named here are ever logged:
never the body, headers, query string or anything else from the event."""

from __future__ import annotations

import math
import sys

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
        if error_code is None and failure is None:
            line = _plain_line(record)
            if line is not None:
                self._write_line(line)
                return
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
        # Imported on first use: the line of an answered request is written without it.
        import orjson

        self._write_line(orjson.dumps(record).decode())

    def _write_line(self, line: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def _plain_line(record: dict[str, object]) -> str | None:
    """The record as orjson writes it, byte for byte, when every text in it needs no escape and
    the duration is finite (repr and orjson then agree: they differ only below 1e-4, where a
    value rounded to 3 decimals is 0.0); else None, and orjson writes it. Saves a plain POST's
    cold start importing orjson for its log line."""
    texts = (record["level"], record["request_id"], record["method"])
    duration = record["duration_ms"]
    if not all(map(_needs_no_escape, texts)) or not math.isfinite(duration):  # type: ignore[arg-type]
        return None
    return (
        '{{"level":"{level}","message":"request","request_id":"{request_id}",'
        '"method":"{method}","rows":{rows},"status":{status},"duration_ms":{duration!r}}}'
    ).format(**record, duration=duration)


def _needs_no_escape(text: object) -> bool:
    # Printable ASCII but the quote and the backslash: JSON holds these as they are.
    return (
        type(text) is str
        and text.isascii()
        and text.isprintable()
        and '"' not in text
        and "\\" not in text
    )
