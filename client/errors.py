"""The client's exceptions: one class per way a call can fail, each mapped to one exit code.

Messages are safe to print: they never contain credentials, tokens or signatures.
"""

from __future__ import annotations


class InferenceClientError(Exception):
    """Base class: something went wrong before, during or after an inference call."""


class ConfigurationError(InferenceClientError):
    """Bad local input: a missing or malformed outputs file, an unknown region, a bad option."""


class AuthError(InferenceClientError):
    """Authentication or authorization failed: the URL answered 403, or STS refused the role.

    `status` is the HTTP status of the Function URL's answer (403), or None for STS failures.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InvalidRoleArnError(AuthError, ValueError):
    """The role ARN is not an IAM role ARN (arn:<partition>:iam::<12 digits>:role/<name>)."""


class BadRequestError(InferenceClientError):
    """The URL refused the request (a 4xx other than 403 and 429): fixing the input fixes it.

    `code` and `message` come from the service's `{"error": {"code", "message"}}` body.
    """

    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(f"HTTP {status}" + (f" {code}" if code else "") + f": {message}")
        self.status = status
        self.code = code
        self.message = message


class ServerError(InferenceClientError):
    """The service failed (5xx, or 429 once retries ran out), or it could not be reached.

    `status` is None when no HTTP answer arrived (connection error, timeout).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class EndpointUnreachableError(ServerError):
    """No HTTP answer: the connection could not be made or broke off."""


class EndpointTimeoutError(EndpointUnreachableError):
    """No HTTP answer within the timeout."""
