"""SigV4 verification of the local Function URL, against the two signers our clients use.

Requests are signed for real (requests-aws4auth, botocore's SigV4Auth), turned into what the
server receives (method, raw path, raw query, header list, body) and verified.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import given
from hypothesis import strategies as st
from requests_aws4auth import AWS4Auth

from localurl.sigv4_verify import (
    AuthFailure,
    Credentials,
    VerifiedCaller,
    verify_sigv4,
)
from tests.aws_spec import (
    MSG_EXPIRED_TOKEN,
    MSG_FORBIDDEN,
    MSG_INVALID_TOKEN,
    MSG_SIGNATURE_MISMATCH,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
HOST = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
BASE = f"https://{HOST}"
JSON = {"Content-Type": "application/json"}
BODY = b'{"records": [{"alcohol": 9.4}]}'

USER = Credentials(
    access_key="AKIAEXAMPLEUSERKEY01",
    secret_key="user/Secret+Key/0123456789abcdefghijklmn",
    account_id=ACCOUNT,
    user_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
    user_id="AIDAEXAMPLEALICE0001",
    principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
)
SESSION = Credentials(
    access_key="ASIAEXAMPLESESSION01",
    secret_key="session/Secret+Key/0123456789abcdefghijk",
    session_token="FwoGZXIvYXdzEXAMPLE//session+token==",
    expiration=datetime(2099, 1, 1, tzinfo=UTC),
    account_id=ACCOUNT,
    user_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Invoker/ci-run",
    user_id="AROAEXAMPLEINVOKER01:ci-run",
    principal_arn=f"arn:aws:iam::{ACCOUNT}:role/Invoker",
)
EXPIRED = dataclasses.replace(
    SESSION,
    access_key="ASIAEXAMPLEEXPIRED01",
    session_token="expired-session-token",
    expiration=datetime(2020, 1, 1, tzinfo=UTC),
)
KNOWN = {c.access_key: c for c in (USER, SESSION, EXPIRED)}
SECRETS = [c.secret_key for c in KNOWN.values()] + [
    c.session_token for c in KNOWN.values() if c.session_token
]


@dataclasses.dataclass(frozen=True)
class Wire:
    """A request as the server receives it."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers if k.lower() == name)

    def with_header(self, name: str, value: str | None) -> Wire:
        """Replace (or, with None, drop) every header called `name`; add it if absent."""
        kept = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        extra = [] if value is None else [(name, value)]
        return dataclasses.replace(self, headers=kept + extra)


def _wire(method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Wire:
    parts = urlsplit(url)
    # The HTTP client adds Host on the wire; both signers signed the same value.
    return Wire(method, parts.path or "/", parts.query, [*headers, ("Host", parts.netloc)], body)


def aws4auth_signed(
    creds: Credentials = USER,
    *,
    method: str = "POST",
    url: str = f"{BASE}/predict",
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    service: str = "lambda",
    region: str = REGION,
    include: list[str] | None = None,
) -> Wire:
    extra = {} if include is None else {"include_hdrs": include}
    auth = AWS4Auth(
        creds.access_key,
        creds.secret_key,
        region,
        service,
        session_token=creds.session_token,
        **extra,
    )
    prepared = requests.Request(method, url, data=body, headers=headers or JSON).prepare()
    auth(prepared)
    assert prepared.url is not None
    sent = prepared.body if isinstance(prepared.body, bytes) else b""
    return _wire(method, prepared.url, list(prepared.headers.items()), sent)


def botocore_signed(
    creds: Credentials = USER,
    *,
    method: str = "POST",
    url: str = f"{BASE}/predict",
    body: bytes = BODY,
    headers: list[tuple[str, str]] | None = None,
    service: str = "lambda",
    region: str = REGION,
    token: str | None = None,
) -> Wire:
    """`url` must be encoded as botocore's serializers encode it (it is sent as is)."""
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers if headers is not None else list(JSON.items()):
        request.headers[name] = value  # HTTPHeaders appends: repeats are kept
    signer_token = creds.session_token if token is None else token
    botocore_creds = BotocoreCredentials(creds.access_key, creds.secret_key, signer_token or None)
    SigV4Auth(botocore_creds, service, region).add_auth(request)
    return _wire(method, url, list(request.headers.items()), body)


def signed_at(wire: Wire) -> datetime:
    return datetime.strptime(wire.header("x-amz-date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def verify(wire: Wire, *, now: datetime | None = None, **overrides: object) -> VerifiedCaller:
    kwargs: dict[str, object] = {
        "method": wire.method,
        "raw_path": wire.raw_path,
        "raw_query": wire.raw_query,
        "headers": wire.headers,
        "body": wire.body,
        "expected_region": REGION,
        "lookup_secret": KNOWN.get,
        "now": signed_at(wire) if now is None else now,
    }
    kwargs.update(overrides)
    return verify_sigv4(**kwargs)  # type: ignore[arg-type]


def refused(
    wire: Wire, code: str, *, now: datetime | None = None, **overrides: object
) -> AuthFailure:
    """Verification fails with `code`, and nothing secret shows in what the failure carries."""
    with pytest.raises(AuthFailure) as caught:
        verify(wire, now=now, **overrides)
    failure = caught.value
    for secret in SECRETS:
        assert secret not in f"{failure} {failure.message} {failure!r}"
    assert failure.code == code, failure.message
    return failure


SIGNERS = [
    pytest.param(lambda creds, **kw: aws4auth_signed(creds, **kw), id="aws4auth"),
    pytest.param(lambda creds, **kw: botocore_signed(creds, **kw), id="botocore"),
]


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("sign", SIGNERS)
@pytest.mark.parametrize("creds", [USER, SESSION], ids=["long-term", "session"])
def test_verify_accepts_signed_request_from_each_client(sign, creds):
    caller = verify(sign(creds))
    assert caller == VerifiedCaller(
        access_key=creds.access_key,
        account_id=ACCOUNT,
        caller_id=creds.user_id,
        user_arn=creds.user_arn,
        user_id=creds.user_id,
        principal_arn=creds.principal_arn,
    )


@pytest.mark.parametrize(
    "path", ["/", "/a%20b", "/%7Euser", "/~user", "/v1/predict/", "/a/./b/../c", "//x//y"]
)
@pytest.mark.parametrize(
    "query", ["", "b=2&a=1", "a=2&a=1&a=2", "flag&empty=", "q=a%20b%2Fc", "k=%E2%82%AC&k=~"]
)
def test_verify_accepts_botocore_signature_for_encoded_paths_and_queries(path, query):
    url = f"{BASE}{path}" + (f"?{query}" if query else "")
    assert verify(botocore_signed(SESSION, url=url)).access_key == SESSION.access_key


@pytest.mark.parametrize("path", ["/", "/a b", "/%7Euser", "/v1/predict/", "/a/./b/../c"])
@pytest.mark.parametrize("query", ["", "b=2&a=1", "a=2&a=1&a=2", "flag&empty=", "q=a%20b"])
def test_verify_accepts_aws4auth_signature_for_paths_and_queries(path, query):
    url = f"{BASE}{path}" + (f"?{query}" if query else "")
    assert verify(aws4auth_signed(SESSION, url=url)).access_key == SESSION.access_key


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_verify_accepts_other_methods_with_empty_body(method):
    assert verify(botocore_signed(USER, method=method, body=b"")).user_arn == USER.user_arn


def test_verify_accepts_header_set_botocore_itself_would_not_sign():
    # aws4auth with include '*' signs user-agent and content-length; the verifier must use the
    # client's SignedHeaders, not botocore's own choice of headers.
    wire = aws4auth_signed(USER, headers={**JSON, "User-Agent": "ml-client/1"}, include=["*"])
    assert "user-agent" in wire.header("authorization")
    assert verify(wire).access_key == USER.access_key


def test_verify_accepts_repeated_signed_header_in_received_order():
    wire = botocore_signed(USER, headers=[("X-Trace", "first"), ("X-Trace", "second")])
    assert verify(wire).access_key == USER.access_key


def test_verify_accepts_clock_skew_of_exactly_five_minutes_either_way():
    wire = botocore_signed(USER)
    verify(wire, now=signed_at(wire) + timedelta(minutes=5))
    verify(wire, now=signed_at(wire) - timedelta(minutes=5))


def test_verify_accepts_matching_x_amz_content_sha256_signed_by_botocore():
    digest = hashlib.sha256(BODY).hexdigest()
    wire = botocore_signed(USER, headers=[*JSON.items(), ("X-Amz-Content-SHA256", digest)])
    assert verify(wire).access_key == USER.access_key


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_unsigned_request(sign):
    wire = sign(USER).with_header("Authorization", None)
    assert refused(wire, "MissingAuthenticationToken").message == MSG_FORBIDDEN


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_signature_made_with_wrong_secret(sign):
    forged = dataclasses.replace(USER, secret_key="not-the-secret")
    assert refused(sign(forged), "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_credential_scoped_to_wrong_service(sign):
    failure = refused(sign(USER, service="execute-api"), "InvalidSignatureException")
    assert "service" in failure.message


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_credential_scoped_to_wrong_region(sign):
    failure = refused(sign(USER, region="us-west-2"), "InvalidSignatureException")
    assert "region" in failure.message


def test_verify_refuses_tampered_body_signed_by_botocore():
    wire = dataclasses.replace(botocore_signed(USER), body=BODY.replace(b"9.4", b"9.5"))
    assert refused(wire, "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


def test_verify_refuses_tampered_body_signed_by_aws4auth():
    # aws4auth sends x-amz-content-sha256: the declared hash no longer matches the body.
    wire = dataclasses.replace(aws4auth_signed(USER), body=BODY.replace(b"9.4", b"9.5"))
    assert "x-amz-content-sha256" in refused(wire, "InvalidSignatureException").message


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_tampered_path(sign):
    wire = dataclasses.replace(sign(USER), raw_path="/predict/../admin")
    assert refused(wire, "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_tampered_query(sign):
    wire = dataclasses.replace(sign(USER, url=f"{BASE}/predict?limit=1"), raw_query="limit=2")
    assert refused(wire, "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_added_query_parameter(sign):
    wire = dataclasses.replace(sign(USER), raw_query="debug=1")
    assert refused(wire, "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_tampered_method(sign):
    wire = dataclasses.replace(sign(USER), method="PUT")
    assert refused(wire, "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_tampered_signed_header(sign):
    wire = sign(USER).with_header("Content-Type", "text/plain")
    assert refused(wire, "InvalidSignatureException").message == MSG_SIGNATURE_MISMATCH


def test_verify_refuses_reordered_repeated_header():
    wire = botocore_signed(USER, headers=[("X-Trace", "first"), ("X-Trace", "second")])
    swapped = wire.with_header("X-Trace", None)
    swapped = dataclasses.replace(
        swapped, headers=[*swapped.headers, ("X-Trace", "second"), ("X-Trace", "first")]
    )
    refused(swapped, "InvalidSignatureException")


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_session_credentials_without_token_header(sign):
    wire = sign(SESSION).with_header("X-Amz-Security-Token", None)
    assert refused(wire, "UnrecognizedClientException").message == MSG_INVALID_TOKEN


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_session_credentials_with_wrong_token(sign):
    wire = sign(SESSION).with_header("X-Amz-Security-Token", "some-other-session-token")
    assert refused(wire, "UnrecognizedClientException").message == MSG_INVALID_TOKEN


def test_verify_refuses_session_token_not_in_signed_headers():
    # Signed with the session key but no token; the right token added afterwards, unsigned.
    unsigned_token = dataclasses.replace(SESSION, session_token=None)
    wire = botocore_signed(unsigned_token).with_header(
        "X-Amz-Security-Token", SESSION.session_token
    )
    assert "x-amz-security-token" not in wire.header("authorization")
    failure = refused(wire, "InvalidSignatureException")
    assert "X-Amz-Security-Token" in failure.message


def test_verify_refuses_token_header_with_long_term_key():
    wire = botocore_signed(USER, token="a-token-the-key-never-had")
    assert refused(wire, "UnrecognizedClientException").message == MSG_INVALID_TOKEN


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_expired_credentials(sign):
    assert refused(sign(EXPIRED), "ExpiredTokenException").message == MSG_EXPIRED_TOKEN


def test_verify_refuses_unknown_access_key():
    stranger = dataclasses.replace(USER, access_key="AKIAUNKNOWNKEY000001")
    assert refused(botocore_signed(stranger), "UnrecognizedClientException").message == (
        MSG_INVALID_TOKEN
    )


def test_verify_refuses_when_lookup_returns_another_key():
    wire = botocore_signed(USER)
    refused(wire, "UnrecognizedClientException", lookup_secret=lambda _key: SESSION)


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_x_amz_date_more_than_five_minutes_old(sign):
    wire = sign(USER)
    late = signed_at(wire) + timedelta(minutes=5, seconds=1)
    failure = refused(wire, "InvalidSignatureException", now=late)
    assert failure.message.startswith("Signature expired: ")


@pytest.mark.parametrize("sign", SIGNERS)
def test_verify_refuses_x_amz_date_more_than_five_minutes_ahead(sign):
    wire = sign(USER)
    early = signed_at(wire) - timedelta(minutes=5, seconds=1)
    failure = refused(wire, "InvalidSignatureException", now=early)
    assert failure.message.startswith("Signature not yet current: ")


def test_verify_refuses_x_amz_date_other_than_credential_scope_date():
    wire = botocore_signed(USER)
    next_day = signed_at(wire) + timedelta(days=1)
    moved = wire.with_header("X-Amz-Date", next_day.strftime("%Y%m%dT%H%M%SZ"))
    assert "Credential scope" in refused(moved, "InvalidSignatureException", now=next_day).message


def test_verify_refuses_missing_x_amz_date():
    wire = botocore_signed(USER)
    refused(wire.with_header("X-Amz-Date", None), "IncompleteSignature", now=signed_at(wire))


def test_verify_refuses_host_not_in_signed_headers():
    wire = aws4auth_signed(USER, include=["content-type", "x-amz-*"])
    assert "host" not in wire.header("authorization").split("SignedHeaders=")[1].split(",")[0]
    assert "'Host' must be a 'SignedHeader'" in refused(wire, "InvalidSignatureException").message


def test_verify_refuses_x_amz_date_not_in_signed_headers():
    wire = aws4auth_signed(USER, include=["host", "content-type", "x-amz-content-sha256"])
    refused(wire, "InvalidSignatureException")


def test_verify_refuses_signed_header_missing_from_request():
    wire = botocore_signed(USER).with_header("Content-Type", None)
    assert "content-type" in refused(wire, "InvalidSignatureException").message


def test_verify_refuses_host_other_than_expected():
    wire = botocore_signed(USER)
    refused(wire, "InvalidSignatureException", expected_host="127.0.0.1:9999")


def test_verify_refuses_duplicate_host_header():
    wire = botocore_signed(USER)
    doubled = dataclasses.replace(wire, headers=[*wire.headers, ("host", "evil.example")])
    refused(doubled, "IncompleteSignature")


def test_verify_refuses_x_amz_content_sha256_mismatch():
    wire = aws4auth_signed(USER)
    other = hashlib.sha256(b"another body").hexdigest()
    failure = refused(wire.with_header("x-amz-content-sha256", other), "InvalidSignatureException")
    assert "x-amz-content-sha256" in failure.message


def test_verify_refuses_unsigned_payload_marker():
    # botocore signs happily with UNSIGNED-PAYLOAD; the stand-in insists on a body hash.
    wire = botocore_signed(
        USER, headers=[*JSON.items(), ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]
    )
    assert "x-amz-content-sha256" in refused(wire, "InvalidSignatureException").message


def test_verify_refuses_presigned_query_authentication():
    wire = dataclasses.replace(
        botocore_signed(USER), raw_query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
    )
    refused(wire, "IncompleteSignature")


def _mangle(authorization: str, case: str) -> str:
    algorithm, _, rest = authorization.partition(" ")
    credential, signed, signature = (part.strip() for part in rest.split(","))
    return {
        "bare-algorithm": algorithm,
        "basic-scheme": "Basic dXNlcjpwYXNz",
        "sha1-algorithm": f"AWS4-HMAC-SHA1 {rest}",
        "no-signature": f"{algorithm} {credential}, {signed}",
        "no-credential": f"{algorithm} {signed}, {signature}",
        "duplicate-credential": f"{algorithm} {credential}, {credential}, {signed}, {signature}",
        "unknown-component": f"{algorithm} {credential}, {signed}, {signature}, Extra=1",
        "uppercase-signature": f"{algorithm} {credential}, {signed}, {signature.upper()}",
        "short-signature": f"{algorithm} {credential}, {signed}, {signature[:-2]}",
        "four-part-scope": f"{algorithm} {credential.rsplit('/', 1)[0]}, {signed}, {signature}",
        "unsorted-signed-headers": (
            f"{algorithm} {credential}, SignedHeaders=x-amz-date;host;content-type, {signature}"
        ),
        "uppercase-signed-header": (
            f"{algorithm} {credential}, SignedHeaders=content-type;Host;x-amz-date, {signature}"
        ),
        "empty-component": f"{algorithm} {credential}, , {signed}, {signature}",
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "bare-algorithm",
        "basic-scheme",
        "sha1-algorithm",
        "no-signature",
        "no-credential",
        "duplicate-credential",
        "unknown-component",
        "uppercase-signature",
        "short-signature",
        "four-part-scope",
        "unsorted-signed-headers",
        "uppercase-signed-header",
        "empty-component",
    ],
)
def test_verify_refuses_malformed_authorization_header(case):
    wire = botocore_signed(USER)
    mangled = wire.with_header("Authorization", _mangle(wire.header("authorization"), case))
    refused(mangled, "IncompleteSignature")


def test_verify_refuses_duplicate_authorization_header():
    wire = botocore_signed(USER)
    doubled = dataclasses.replace(
        wire, headers=[*wire.headers, ("authorization", wire.header("authorization"))]
    )
    refused(doubled, "IncompleteSignature")


def test_verify_rejects_naive_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(botocore_signed(USER), now=datetime(2026, 1, 1))


def test_credentials_repr_hides_secret_and_token():
    shown = repr(SESSION)
    assert SESSION.secret_key not in shown
    assert SESSION.session_token is not None
    assert SESSION.session_token not in shown


# --- properties ------------------------------------------------------------------------------

_segments = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
_paths = st.lists(_segments, max_size=4).map(
    lambda parts: "/" + "/".join(quote(part, safe="-_.~") for part in parts)
)
_queries = st.lists(st.tuples(_segments, _segments), max_size=5).map(
    lambda pairs: "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
)


def _botocore_url(path: str, query: str) -> str:
    return f"{BASE}{path}" + (f"?{query}" if query else "")


@given(path=_paths, query=_queries, body=st.binary(max_size=512), session=st.booleans())
def test_verify_accepts_any_botocore_signed_path_query_and_body(path, query, body, session):
    """Property: whatever path, query (unsorted, repeated names) and body botocore signs,
    encoded as botocore's serializers encode them, verifies."""
    creds = SESSION if session else USER
    wire = botocore_signed(creds, url=_botocore_url(path, query), body=body)
    assert verify(wire).access_key == creds.access_key


@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_verify_refuses_any_single_byte_body_mutation(body, data):
    """Property: changing any one byte of a signed body makes verification fail."""
    wire = botocore_signed(USER, body=body)
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="xor")
    mutated = bytearray(body)
    mutated[index] ^= flip
    refused(dataclasses.replace(wire, body=bytes(mutated)), "InvalidSignatureException")
