"""Translate boto3/botocore failures into the client's exceptions, with one-line messages."""

from __future__ import annotations

from typing import Final

import botocore.exceptions as bx

from .errors import (
    AuthError,
    ConfigurationError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    InferenceClientError,
    ServerError,
)
from .redaction import redact

ACCESS_DENIED_CODES: Final = frozenset({"AccessDenied", "AccessDeniedException"})
# The caller's own (base) credentials were refused: a different fix than a missing grant.
REJECTED_CALLER_CODES: Final = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
    }
)


def error_code(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: bx.ClientError) -> str:
    message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return redact(" ".join(message.split()))


def translate_aws_error(exc: Exception, *, action: str) -> InferenceClientError | None:
    """The client exception for a failed AWS call (`action` says what was attempted), or None.

    None means "not an AWS SDK failure we know": the caller re-raises the original.
    """
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AuthError(
            f"{action}: no usable AWS credentials to call AWS with (set a profile, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is attached)"
        )
    if isinstance(exc, bx.ProfileNotFound | bx.NoRegionError | bx.ParamValidationError):
        return ConfigurationError(f"{action}: {' '.join(str(exc).split())}")
    if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return EndpointTimeoutError(f"{action}: timed out talking to AWS ({type(exc).__name__})")
    if isinstance(exc, bx.ConnectionError | bx.HTTPClientError):
        return EndpointUnreachableError(f"{action}: cannot reach AWS ({exc})")
    if isinstance(exc, bx.ClientError):
        code = error_code(exc)
        message = error_message(exc)
        if code in ACCESS_DENIED_CODES:
            return AuthError(f"{action}: access denied: {message}", code=code)
        if code in REJECTED_CALLER_CODES:
            return AuthError(
                f"{action}: AWS rejected the credentials used to call it ({code}): {message}",
                code=code,
            )
        if code == "ValidationError":
            return ConfigurationError(f"{action}: {message}")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return ServerError(
            f"{action}: {code or 'error'}: {message}",
            status=status if isinstance(status, int) else None,
            code=code or None,
        )
    if isinstance(exc, bx.BotoCoreError):
        return ServerError(f"{action}: {' '.join(str(exc).split())}")
    return None
