"""Keeping secrets out of logs and error messages.

botocore logs, at DEBUG, the signature of every request it signs (`botocore.auth`), the request
with its Authorization header (`botocore.endpoint`) and the raw response body (`botocore.parsers`):
for AssumeRole that body holds the new secret key and session token. Anyone who turns on DEBUG
logging for troubleshooting would then write them to a log. While the client makes an AWS call,
`withhold_sdk_debug_logs` replaces those loggers' records with a placeholder; outside that scope
(and in other threads) the loggers behave as usual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

REDACTED: Final = "[REDACTED]"
# The botocore loggers that write signatures, headers or response bodies.
SENSITIVE_SDK_LOGGERS: Final = (
    "botocore.auth",
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.awsrequest",
    "botocore.httpsession",
)
# Signature values and token headers as they appear in AWS error messages that echo the
# canonical request ("The Canonical String for this request should have been ...").
_AUTHORIZATION_RE: Final = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=[^\s,]*,\s*SignedHeaders=[^\s,]*,\s*Signature=[0-9a-fA-F]*"
)
_SIGNATURE_RE: Final = re.compile(r"(Signature=)[0-9a-fA-F]+")
_TOKEN_HEADER_RE: Final = re.compile(r"(x-amz-security-token\s*[:=]\s*)\S+", re.IGNORECASE)

_withholding: ContextVar[bool] = ContextVar("client_withhold_sdk_debug_logs", default=False)


class _WithholdDuringClientCalls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _withholding.get():
            record.msg = "%s output withheld by the inference client (it may contain credentials)"
            record.args = (record.name,)
        return True


_FILTER: Final = _WithholdDuringClientCalls()


@contextmanager
def withhold_sdk_debug_logs() -> Iterator[None]:
    """Within this block (this thread/context only), botocore's sensitive loggers say nothing."""
    for name in SENSITIVE_SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    token = _withholding.set(True)
    try:
        yield
    finally:
        _withholding.reset(token)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each of `secrets`, any SigV4 Authorization value, Signature= value and token
    header value masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _AUTHORIZATION_RE.sub(REDACTED, text)
    text = _SIGNATURE_RE.sub(rf"\g<1>{REDACTED}", text)
    return _TOKEN_HEADER_RE.sub(rf"\g<1>{REDACTED}", text)


def mask_access_key(access_key_id: str) -> str:
    """Enough of an access key id to tell keys apart in a repr, not enough to use it."""
    return f"{access_key_id[:4]}...{access_key_id[-4:]}" if len(access_key_id) > 8 else REDACTED
