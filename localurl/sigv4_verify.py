"""SigV4 verification of an incoming request, as a Function URL with AuthType AWS_IAM does it.

The canonical request is recomputed with botocore's own `SigV4Auth` (its path normalisation,
query encoding, header canonicalisation and key derivation), so the reference is the signer
that every AWS SDK for Python uses, not a second hand-written implementation.

Canonical forms, where clients disagree:
- Path: the raw path as received, dot segments and repeated slashes removed, then URI-encoded
  once more (non-S3 services "double-encode"). botocore and requests-aws4auth both do this.
- Query: each name and value is percent-decoded and re-encoded with the RFC 3986 unreserved
  set, then sorted by (name, value), as the SigV4 specification says. A `+` is a literal plus
  (RFC 3986), not a space: requests-aws4auth signs `+` as a space, so encode spaces as `%20`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import unquote_to_bytes, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials as BotocoreCredentials

ALGORITHM: Final = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE: Final = re.compile(r"\d{8}T\d{6}Z")
_ACCESS_KEY_RE: Final = re.compile(r"[A-Z0-9]{16,128}")
_SIGNATURE_RE: Final = re.compile(r"[0-9a-f]{64}")
# RFC 7230 token characters, lower case only: SignedHeaders must be canonical.
_HEADER_NAME_RE: Final = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
# Query parameters that mean "presigned URL": a second, competing signature we do not check.
_PRESIGN_PARAMS: Final = frozenset(
    {"x-amz-algorithm", "x-amz-credential", "x-amz-signature", "x-amz-signedheaders"}
)
# Only the path and query of this URL matter; the signed Host value comes from the headers.
_PLACEHOLDER_ORIGIN: Final = "http://function-url.invalid"

MSG_FORBIDDEN: Final = "Forbidden"
MSG_SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
# Error messages, not secrets.
MSG_INVALID_TOKEN: Final = "The security token included in the request is invalid."  # noqa: S105
MSG_EXPIRED_TOKEN: Final = "The security token included in the request is expired"  # noqa: S105


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What the verifier needs to know about an access key: its secret and whose it is."""

    access_key: str
    secret_key: str = field(repr=False)
    # Temporary (ASIA...) credentials carry a session token the request must present and sign.
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None
    account_id: str
    # The caller as AWS reports it: a user ARN, or arn:aws:sts::ACCT:assumed-role/NAME/SESSION.
    user_arn: str
    # AIDA... for a user, AROA...:SESSION for a role session (Function URL events: userId).
    user_id: str
    # The identity whose policies apply: the user ARN, or the role ARN behind a role session.
    principal_arn: str


@dataclass(frozen=True, kw_only=True)
class VerifiedCaller:
    """An authenticated caller; field names match the event's requestContext.authorizer.iam."""

    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str
    principal_arn: str


class AuthFailure(Exception):
    """Authentication failed: the caller answers 403 with {"Message": message}.

    `code` is AWS's error type, for logs and tests; neither it nor the message carries secrets.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


LookupSecret = Callable[[str], Credentials | None]


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    expected_region: str,
    lookup_secret: LookupSecret,
    now: datetime,
    expected_service: str = "lambda",
    expected_host: str | None = None,
) -> VerifiedCaller:
    """Authenticate one request; return the caller or raise AuthFailure.

    `headers` are as received: original case, repeats kept, in order. `now` must be aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if _presign_params(raw_query):
        # A Function URL answers presigned requests too; this stand-in does not support them.
        raise AuthFailure("IncompleteSignature", "Presigned requests are not supported here.")
    auth = _parse_authorization(_single(headers, "authorization", required=False))
    amz_date = _single(headers, "x-amz-date", required=False)
    if amz_date is None:
        raise AuthFailure(
            "IncompleteSignature",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    signed_at = _parse_amz_date(amz_date)
    _check_scope(auth, amz_date, expected_region, expected_service)
    _check_clock_skew(signed_at, now.astimezone(UTC))
    _check_host(auth, headers, expected_host)
    credentials = lookup_secret(auth.access_key)
    if credentials is None or credentials.access_key != auth.access_key:
        raise AuthFailure("UnrecognizedClientException", MSG_INVALID_TOKEN)
    _check_session_token(credentials, auth, headers)
    if credentials.expiration is not None and credentials.expiration <= now:
        raise AuthFailure("ExpiredTokenException", MSG_EXPIRED_TOKEN)
    _check_signed_headers_present(auth, headers)
    _check_content_sha256(headers, body)
    expected = _reference_signature(
        credentials=credentials,
        auth=auth,
        amz_date=amz_date,
        method=method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        body=body,
    )
    if not hmac.compare_digest(expected, auth.signature):
        raise AuthFailure("InvalidSignatureException", MSG_SIGNATURE_MISMATCH)
    return VerifiedCaller(
        access_key=credentials.access_key,
        account_id=credentials.account_id,
        caller_id=credentials.user_id,
        user_arn=credentials.user_arn,
        user_id=credentials.user_id,
        principal_arn=credentials.principal_arn,
    )


def _values(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _single(headers: Sequence[tuple[str, str]], name: str, *, required: bool) -> str | None:
    values = _values(headers, name)
    if len(values) > 1:
        # Two Authorization (or date, token, host) headers: which one counts is ambiguous.
        raise AuthFailure("IncompleteSignature", f"Duplicate '{name}' header.")
    if not values and required:
        raise AuthFailure("IncompleteSignature", f"Missing '{name}' header.")
    return values[0] if values else None


def _presign_params(raw_query: str) -> bool:
    names = (pair.partition("=")[0] for pair in raw_query.split("&") if pair)
    return any(_decode(name).lower() in _PRESIGN_PARAMS for name in names)


def _parse_authorization(value: str | None) -> _Authorization:
    if value is None or not value.strip():
        # What a Function URL with AuthType AWS_IAM answers to an unsigned request.
        raise AuthFailure("MissingAuthenticationToken", MSG_FORBIDDEN)
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthFailure("IncompleteSignature", f"Unsupported authorization type: {algorithm!r}.")
    parts: dict[str, str] = {}
    for component in rest.split(","):
        key, sep, val = component.strip().partition("=")
        if not sep or key in parts or key not in {"Credential", "SignedHeaders", "Signature"}:
            raise AuthFailure("IncompleteSignature", "Malformed Authorization header.")
        parts[key] = val
    if len(parts) != 3:
        raise AuthFailure(
            "IncompleteSignature",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
        )
    scope = parts["Credential"].split("/")
    signed = tuple(parts["SignedHeaders"].split(";"))
    if (
        len(scope) != 5
        or not _ACCESS_KEY_RE.fullmatch(scope[0])
        or not _SIGNATURE_RE.fullmatch(parts["Signature"])
        or not all(_HEADER_NAME_RE.fullmatch(name) for name in signed)
        or list(signed) != sorted(set(signed))
    ):
        raise AuthFailure("IncompleteSignature", "Malformed Authorization header.")
    return _Authorization(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        terminator=scope[4],
        signed_headers=signed,
        signature=parts["Signature"],
    )


def _parse_amz_date(value: str) -> datetime:
    if not _AMZ_DATE_RE.fullmatch(value):
        raise AuthFailure(
            "IncompleteSignature", "X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'."
        )
    try:
        return datetime.strptime(value, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise AuthFailure("IncompleteSignature", "X-Amz-Date is not a valid date.") from None


def _check_scope(auth: _Authorization, amz_date: str, region: str, service: str) -> None:
    if auth.terminator != "aws4_request":
        raise AuthFailure(
            "InvalidSignatureException",
            "Credential should be scoped with a valid terminator: 'aws4_request'.",
        )
    if auth.service != service:
        raise AuthFailure(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if auth.region != region:
        raise AuthFailure(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{auth.region}'.",
        )
    if auth.date != amz_date[:8]:
        raise AuthFailure(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )


def _check_clock_skew(signed_at: datetime, now: datetime) -> None:
    stamp = signed_at.strftime(_AMZ_DATE_FORMAT)
    if signed_at < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE_FORMAT)
        raise AuthFailure(
            "InvalidSignatureException",
            f"Signature expired: {stamp} is now earlier than {earliest} "
            f"({now.strftime(_AMZ_DATE_FORMAT)} - 5 min.)",
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(_AMZ_DATE_FORMAT)
        raise AuthFailure(
            "InvalidSignatureException",
            f"Signature not yet current: {stamp} is still later than {latest} "
            f"({now.strftime(_AMZ_DATE_FORMAT)} + 5 min.)",
        )


def _check_host(
    auth: _Authorization, headers: Sequence[tuple[str, str]], expected_host: str | None
) -> None:
    # Host pins the request to this endpoint; X-Amz-Date pins it in time.
    for name in ("host", "x-amz-date"):
        if name not in auth.signed_headers:
            raise AuthFailure(
                "InvalidSignatureException",
                f"'{name.title()}' must be a 'SignedHeader' in the AWS Authorization.",
            )
    host = _single(headers, "host", required=True)
    if expected_host is not None and host != expected_host:
        raise AuthFailure("InvalidSignatureException", MSG_SIGNATURE_MISMATCH)


def _check_signed_headers_present(auth: _Authorization, headers: Sequence[tuple[str, str]]) -> None:
    received = {name.lower() for name, _ in headers}
    for name in auth.signed_headers:
        if name not in received:
            raise AuthFailure(
                "InvalidSignatureException", f"Signed header '{name}' is missing from the request."
            )


def _check_session_token(
    credentials: Credentials, auth: _Authorization, headers: Sequence[tuple[str, str]]
) -> None:
    token = _single(headers, "x-amz-security-token", required=False)
    if credentials.session_token is None:
        if token is not None:
            # A token with long-term keys: AWS refuses it rather than ignoring it.
            raise AuthFailure("UnrecognizedClientException", MSG_INVALID_TOKEN)
        return
    if token is None or not hmac.compare_digest(
        token.encode("utf-8", "surrogateescape"),
        credentials.session_token.encode("utf-8", "surrogateescape"),
    ):
        raise AuthFailure("UnrecognizedClientException", MSG_INVALID_TOKEN)
    if "x-amz-security-token" not in auth.signed_headers:
        # Unsigned, the token could be lifted onto a request signed with another key's secret.
        raise AuthFailure(
            "InvalidSignatureException",
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        )


def _check_content_sha256(headers: Sequence[tuple[str, str]], body: bytes) -> None:
    declared = _single(headers, "x-amz-content-sha256", required=False)
    # UNSIGNED-PAYLOAD is refused too: an inference request body is the whole point of the call,
    # and only S3-style streaming uploads have a reason to leave it unsigned.
    if declared is not None and not hmac.compare_digest(
        declared.encode("utf-8", "surrogateescape"), hashlib.sha256(body).hexdigest().encode()
    ):
        raise AuthFailure(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )


def _decode(component: str) -> str:
    try:
        return unquote_to_bytes(component).decode("utf-8")
    except UnicodeDecodeError:
        raise AuthFailure("InvalidSignatureException", "Query string is not valid UTF-8.") from None


def _query_params(raw_query: str) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs; botocore re-encodes and sorts them (RFC 3986 unreserved)."""
    pairs = []
    for pair in raw_query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        pairs.append((_decode(name), _decode(value)))
    return pairs


class _ClientHeaderSet(SigV4Auth):
    """botocore's signer with the header set fixed to exactly the client's SignedHeaders.

    Left alone, botocore picks its own set: every header present minus a blacklist
    (user-agent, expect, ...), which is not what the client declared and signed.
    """

    def __init__(
        self, credentials: BotocoreCredentials, service: str, region: str, signed: HTTPHeaders
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def _reference_signature(
    *,
    credentials: Credentials,
    auth: _Authorization,
    amz_date: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> str:
    url = _PLACEHOLDER_ORIGIN + raw_path
    parsed = urlsplit(url)
    if not raw_path.startswith("/") or parsed.path != raw_path or parsed.query or parsed.fragment:
        # A path urlsplit would cut short ('#', '?'): what is verified must be what is served.
        raise AuthFailure("InvalidSignatureException", MSG_SIGNATURE_MISMATCH)
    signed = HTTPHeaders()
    for name in auth.signed_headers:
        for value in _values(headers, name):
            signed[name] = value  # HTTPHeaders appends: repeated headers keep their order.
    # Headers left empty on purpose: botocore then hashes the body itself (http:// URLs always
    # get a signed payload); any x-amz-content-sha256 header was already checked against it.
    # A list of pairs, not the annotated Mapping: botocore's canonical query handles pairs (and
    # only pairs keep repeated names), re-encoding and sorting them.
    params = cast(Mapping[str, Any], _query_params(raw_query))
    request = AWSRequest(method=method.upper(), url=url, data=body, params=params)
    request.context["timestamp"] = amz_date
    signer = _ClientHeaderSet(
        BotocoreCredentials(credentials.access_key, credentials.secret_key),
        auth.service,
        auth.region,
        signed,
    )
    canonical_request = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical_request)
    signature: str = signer.signature(string_to_sign, request)
    return signature
