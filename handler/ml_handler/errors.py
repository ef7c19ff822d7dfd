"""The handler's exceptions: RequestError, the one that turns into a 4xx response, and
ModelLoadError, which fails init."""

from __future__ import annotations


class RequestError(Exception):
    """A client error: carries the HTTP status and the public error body fields."""

    def __init__(
        self,
        *,
        status: int,
        code: str,
        message: str,
        row: int | None = None,
        feature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.row = row
        self.feature = feature
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.row is not None:
            error["row"] = self.row
        if self.feature is not None:
            error["feature"] = self.feature
        return {"error": error}


class ModelLoadError(RuntimeError):
    """The model cannot serve requests (missing, unreadable, refused by the compiler, or a
    library this handler cannot use); the message names the file and says why."""
