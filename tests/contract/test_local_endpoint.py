"""The local Function URL, deployed from the real template, over HTTP on 127.0.0.1.

One deployment of the app per module (plus one with the URL's AuthType changed to NONE), in a
LocalSystem of its own: moto's `mock_aws`, used by other modules, resets the same in-process
backends, so nothing here may outlive the module. Every refusal has an accepted counterpart
that differs only in the one thing under test (in the same test, or in the test beside it), so
that a 403 cannot come from a broken test setup.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import io
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from ml_handler.config import DEFAULT_MAX_ROWS
from ml_handler.logs import RequestLogger
from ml_handler.model import load_model
from ml_handler.service import InferenceService
from requests_aws4auth import AWS4Auth

from localurl.__main__ import serve_instructions
from localurl.deploy import DeployedStack, LocalSystem
from localurl.iam_policy import INVOKE_ACTION, INVOKE_URL_ACTION
from localurl.moto_service import DEFAULT_REGION
from localurl.synth import SynthesizedStack
from localurl.url_auth import IamUrlAuthorizer
from tests.aws_spec import (
    INVOKE_PAYLOAD_BYTES,
    MSG_EXPIRED_TOKEN,
    MSG_FORBIDDEN,
    MSG_INVALID_TOKEN,
    MSG_SIGNATURE_MISMATCH,
)
from tests.contract import docs_text

STACK = "local-endpoint-contract"
STACK_WITHOUT_AUTH = f"{STACK}-none"
REGION = DEFAULT_REGION
JSON = "application/json"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
TIMEOUT = 30
# A secret of the right shape that is nobody's.
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET"


@dataclasses.dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)


# --- fixtures: one LocalSystem, one deployment (and its AuthType NONE twin) per module ---------


@pytest.fixture(scope="module")
def synthesized(stand_in_assembly: SynthesizedStack) -> SynthesizedStack:
    return stand_in_assembly


@pytest.fixture(scope="module")
def deployed(system: LocalSystem, synthesized: SynthesizedStack) -> DeployedStack:
    deployed = system.deploy(synthesized)
    # The region every request here is signed for, as the stack tells its callers.
    assert deployed.outputs["Region"] == system.region == REGION
    return deployed


@pytest.fixture(scope="module")
def deployed_without_auth(system: LocalSystem, synthesized: SynthesizedStack) -> DeployedStack:
    """The same template with the URL's AuthType changed to NONE, under another stack name."""
    template = copy.deepcopy(synthesized.template)
    (url,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Url"]
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    url["Properties"]["AuthType"] = "NONE"
    return system.deploy(
        dataclasses.replace(synthesized, stack_name=STACK_WITHOUT_AUTH, template=template)
    )


@pytest.fixture(scope="module")
def keys(system: LocalSystem, deployed: DeployedStack) -> Keys:
    """The invoker role's temporary keys, as a caller gets them (STS default: valid 1 h)."""
    return assume(system, deployed.role_arn)


@pytest.fixture(scope="module")
def reference(deployed: DeployedStack, bundled_model_path: Path) -> InferenceService:
    """The handler in-process, with the model and row limit the deployed function has."""
    max_rows = int(deployed.spec.environment.get("MAX_ROWS", DEFAULT_MAX_ROWS))
    return InferenceService(
        model=load_model(bundled_model_path),
        max_rows=max_rows,
        logger=RequestLogger(io.StringIO()),
    )


@pytest.fixture(scope="module")
def samples_body(samples_path: Path) -> bytes:
    return samples_path.read_bytes()


@pytest.fixture(scope="module")
def template_statements(system: LocalSystem, deployed: DeployedStack) -> dict[str, dict]:
    """The invoker role's two statements as the template created them, by action."""
    iam = system.moto.client("iam")
    role_name = deployed.role_arn.rsplit("/", 1)[-1]
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    by_action = {statement["Action"]: statement for statement in document["Statement"]}
    assert set(by_action) == {INVOKE_URL_ACTION, INVOKE_ACTION}
    assert {s["Resource"] for s in by_action.values()} == {deployed.function_arn}
    return by_action


# --- helpers ------------------------------------------------------------------------------------


def assume(system: LocalSystem, role_arn: str, *, duration_seconds: int | None = None) -> Keys:
    extra = {} if duration_seconds is None else {"DurationSeconds": duration_seconds}
    answer = system.moto.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="local-endpoint-contract", **extra
    )
    credentials = answer["Credentials"]
    return Keys(
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )


def aws4auth_headers(
    keys: Keys,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    region: str = REGION,
    service: str = "lambda",
) -> dict[str, str]:
    """The headers requests-aws4auth signs (it keeps an x-amz-date already in `headers`)."""
    auth = AWS4Auth(
        keys.access_key, keys.secret_key, region, service, session_token=keys.session_token
    )
    prepared = requests.Request(method, url, data=body, headers=dict(headers)).prepare()
    auth(prepared)
    # requests recomputes Content-Length for whatever body is sent; it is not signed.
    return {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}


def botocore_headers(
    keys: Keys,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    region: str = REGION,
    service: str = "lambda",
) -> dict[str, str]:
    """The headers botocore's SigV4Auth signs (an AWSRequest, as every AWS SDK for Python)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    credentials = BotocoreCredentials(keys.access_key, keys.secret_key, keys.session_token)
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


Signer = Callable[..., dict[str, str]]
SIGNERS: dict[str, Signer] = {"requests-aws4auth": aws4auth_headers, "botocore": botocore_headers}


def send(method: str, url: str, body: bytes, headers: Mapping[str, str]) -> requests.Response:
    return requests.request(method, url, data=body, headers=dict(headers), timeout=TIMEOUT)


def signed_post(
    keys: Keys,
    url: str,
    body: bytes,
    *,
    content_type: str | None = JSON,
    extra_headers: Mapping[str, str] | None = None,
    signer: Signer = aws4auth_headers,
    **signing: str,
) -> requests.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    headers.update(extra_headers or {})
    return send("POST", url, body, signer(keys, "POST", url, body, headers, **signing))


def reference_response(
    service: InferenceService, body: bytes, *, content_type: str | None = JSON
) -> dict[str, Any]:
    """What the handler answers in-process to a Function URL event carrying `body`."""
    text = content_type is not None and content_type.split(";")[0].strip() == JSON
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {} if content_type is None else {"content-type": content_type},
        "requestContext": {"http": {"method": "POST", "path": "/"}, "requestId": "reference"},
        "body": body.decode() if text else base64.b64encode(body).decode(),
        "isBase64Encoded": not text,
    }
    return service.handle(event, None)


def assert_matches_reference(response: requests.Response, expected: Mapping[str, Any]) -> None:
    assert response.status_code == expected["statusCode"], response.text
    assert response.headers["content-type"] == expected["headers"]["content-type"]
    assert response.content == expected["body"].encode()


def assert_predictions(
    response: requests.Response, service: InferenceService, body: bytes, rows: int
) -> None:
    assert response.status_code == 200, response.text
    assert len(response.json()) == rows
    assert_matches_reference(response, reference_response(service, body))


def assert_forbidden(response: requests.Response, message: str | None = None) -> None:
    """A 403 with AWS's body shape: {"Message": "..."} and nothing else."""
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert list(body) == ["Message"]
    assert isinstance(body["Message"], str)
    assert body["Message"]
    if message is not None:
        assert message in body["Message"]


def amz_date(offset: timedelta) -> str:
    return (datetime.now(UTC) + offset).strftime(AMZ_DATE)


def request_log(path: Path) -> list[dict[str, Any]]:
    """The handler's one-line-per-request JSON records from the function's log file."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == "request":
            records.append(record)
    return records


@contextmanager
def authorizer_clock_ahead(
    system: LocalSystem, deployed: DeployedStack, ahead: timedelta
) -> Iterator[None]:
    """The endpoint's IAM authorizer swapped for one whose clock runs `ahead`; then restored."""
    server = system.endpoint(deployed.stack_name)
    original = server.target
    assert original is not None
    assert original.authorizer is not None
    shifted = IamUrlAuthorizer(
        moto=system.moto,
        function_arn=deployed.function_arn,
        account_id=system.account_id,
        clock=lambda: datetime.now(UTC) + ahead,
    )
    server.configure(dataclasses.replace(original, authorizer=shifted))
    try:
        yield
    finally:
        server.configure(original)


def create_role(system: LocalSystem, name: str, statements: list[dict[str, Any]]) -> str:
    """A role in the deployment's account that the operator may assume, with one inline policy."""
    iam = system.moto.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{system.account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="url-invoke",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    return str(arn)


# --- accepted: both signers -----------------------------------------------------------------


@pytest.mark.parametrize("signer", list(SIGNERS.values()), ids=list(SIGNERS))
def test_request_is_accepted_when_signed(
    deployed: DeployedStack,
    keys: Keys,
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
    signer: Signer,
) -> None:
    """GIVEN the invoker role's keys WHEN a client library signs a POST of the samples
    THEN 200, and the body is exactly what the handler answers in-process."""
    response = signed_post(keys, deployed.endpoint_url, samples_body, signer=signer)
    assert_predictions(response, reference, samples_body, rows=len(samples))


# --- refused: authentication -----------------------------------------------------------------


def test_request_is_refused_when_unsigned(deployed: DeployedStack, samples_body: bytes) -> None:
    response = send("POST", deployed.endpoint_url, samples_body, {"content-type": JSON})
    assert_forbidden(response, MSG_FORBIDDEN)


BAD_SIGNING: dict[str, tuple[Callable[[Keys], Keys], dict[str, str], str]] = {
    # case: (keys as the client has them, signing options, what the refusal says)
    "wrong-secret": (
        lambda k: dataclasses.replace(k, secret_key=WRONG_SECRET),
        {},
        MSG_SIGNATURE_MISMATCH,
    ),
    "wrong-service": (lambda k: k, {"service": "execute-api"}, "correct service: 'lambda'"),
    "wrong-region": (lambda k: k, {"region": "eu-west-1"}, "not 'eu-west-1'"),
    "missing-session-token": (
        lambda k: dataclasses.replace(k, session_token=None),
        {},
        MSG_INVALID_TOKEN,
    ),
    "wrong-session-token": (
        lambda k: dataclasses.replace(k, session_token=(k.session_token or "")[:-8] + "A" * 8),
        {},
        MSG_INVALID_TOKEN,
    ),
}


@pytest.mark.parametrize("case", list(BAD_SIGNING))
def test_request_is_refused_when_signing_is_wrong(
    deployed: DeployedStack, keys: Keys, samples_body: bytes, case: str
) -> None:
    """GIVEN the invoker role's keys, one thing about the signing spoiled WHEN it is sent
    THEN 403 {"Message": ...} naming the reason."""
    spoil, options, message = BAD_SIGNING[case]
    spoiled = spoil(keys)
    assert spoiled != keys or options
    response = signed_post(spoiled, deployed.endpoint_url, samples_body, **options)
    assert_forbidden(response, message)


TAMPERING = ("body", "path", "query")


@pytest.mark.parametrize("signer_name", list(SIGNERS))
@pytest.mark.parametrize("tampered", TAMPERING)
def test_request_is_refused_when_tampered_after_signing(
    deployed: DeployedStack,
    keys: Keys,
    samples_body: bytes,
    samples: list[dict[str, float]],
    signer_name: str,
    tampered: str,
) -> None:
    """GIVEN a request signed for one body, path and query WHEN one of them is changed in flight
    THEN 403; and the same request unchanged is accepted (the control)."""
    signer = SIGNERS[signer_name]
    base = deployed.endpoint_url.rstrip("/")
    url = f"{base}/predict?model=a"
    other_samples = [dict(samples[0], alcohol=samples[0]["alcohol"] + 1.0), samples[1]]
    sent_body = json.dumps(other_samples).encode() if tampered == "body" else samples_body
    sent_url = {
        "body": url,
        "path": f"{base}/admin?model=a",
        "query": f"{base}/predict?model=b",
    }[tampered]
    headers = signer(keys, "POST", url, samples_body, {"content-type": JSON})

    control = send("POST", url, samples_body, headers)
    refused = send("POST", sent_url, sent_body, headers)

    assert control.status_code == 200, control.text
    assert_forbidden(refused)
    if signer_name == "botocore" or tampered != "body":
        assert_forbidden(refused, MSG_SIGNATURE_MISMATCH)
    else:
        # requests-aws4auth also sends x-amz-content-sha256, checked against the body first.
        assert_forbidden(refused, "x-amz-content-sha256")


def test_request_is_refused_when_credentials_expired(
    system: LocalSystem, deployed: DeployedStack, samples_body: bytes
) -> None:
    """GIVEN role keys valid for 1 h, and (control) keys valid for 3 h
    WHEN both sign a request dated 2 h from now, received by an endpoint whose clock is 2 h ahead
    THEN the expired keys get 403 "expired"; the control is accepted."""
    expiring = assume(system, deployed.role_arn)
    lasting = assume(system, deployed.role_arn, duration_seconds=3 * 3600)
    later = {"x-amz-date": amz_date(timedelta(hours=2))}
    with authorizer_clock_ahead(system, deployed, timedelta(hours=2)):
        refused = signed_post(expiring, deployed.endpoint_url, samples_body, extra_headers=later)
        control = signed_post(lasting, deployed.endpoint_url, samples_body, extra_headers=later)
    assert control.status_code == 200, control.text
    assert_forbidden(refused, MSG_EXPIRED_TOKEN)


@pytest.mark.parametrize(
    ("minutes", "message"),
    [(-10, "Signature expired"), (10, "Signature not yet current")],
    ids=["10-min-past", "10-min-ahead"],
)
def test_request_is_refused_when_signed_outside_clock_skew(
    deployed: DeployedStack, keys: Keys, samples_body: bytes, minutes: int, message: str
) -> None:
    dated = {"x-amz-date": amz_date(timedelta(minutes=minutes))}
    response = signed_post(keys, deployed.endpoint_url, samples_body, extra_headers=dated)
    assert response.request.headers["x-amz-date"] == dated["x-amz-date"]
    assert_forbidden(response, message)


@pytest.mark.parametrize("minutes", [-4, 4], ids=["4-min-past", "4-min-ahead"])
def test_request_is_accepted_when_signed_within_clock_skew(
    deployed: DeployedStack, keys: Keys, samples_body: bytes, minutes: int
) -> None:
    """The control for the skew refusals: the same date header, inside the 5 minutes."""
    dated = {"x-amz-date": amz_date(timedelta(minutes=minutes))}
    response = signed_post(keys, deployed.endpoint_url, samples_body, extra_headers=dated)
    assert response.request.headers["x-amz-date"] == dated["x-amz-date"]
    assert response.status_code == 200, response.text


# --- refused: authorization --------------------------------------------------------------------

EXPLICIT_DENY = {"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}
ROLE_CASES: dict[str, tuple[tuple[str, ...], bool]] = {
    # case: (template statements the role gets, plus an explicit Deny?)
    "without-invoke-function-url": ((INVOKE_ACTION,), False),
    "without-invoke-function": ((INVOKE_URL_ACTION,), False),
    "both-grants-and-explicit-deny": ((INVOKE_URL_ACTION, INVOKE_ACTION), True),
}


def _role_statements(
    template_statements: Mapping[str, dict], actions: tuple[str, ...], deny: bool
) -> list[dict[str, Any]]:
    statements = [copy.deepcopy(template_statements[action]) for action in actions]
    return [*statements, EXPLICIT_DENY] if deny else statements


def test_request_is_accepted_when_role_has_the_template_grants(
    system: LocalSystem,
    deployed: DeployedStack,
    template_statements: Mapping[str, dict],
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
) -> None:
    """The control for the role refusals: a role of our own with both of the template's
    statements, as written there, is allowed; so the refusals below are about what is missing."""
    statements = _role_statements(template_statements, (INVOKE_URL_ACTION, INVOKE_ACTION), False)
    role_arn = create_role(system, f"{STACK}-both-grants", statements)
    response = signed_post(assume(system, role_arn), deployed.endpoint_url, samples_body)
    assert_predictions(response, reference, samples_body, rows=len(samples))


@pytest.mark.parametrize("case", list(ROLE_CASES))
def test_request_is_refused_when_role_lacks_a_grant(
    system: LocalSystem,
    deployed: DeployedStack,
    template_statements: Mapping[str, dict],
    samples_body: bytes,
    case: str,
) -> None:
    """GIVEN a correctly signing role missing one of the two grants, or with an explicit Deny
    WHEN it calls the URL THEN 403 {"Message": "Forbidden"}."""
    actions, deny = ROLE_CASES[case]
    role_arn = create_role(
        system, f"{STACK}-{case}", _role_statements(template_statements, actions, deny)
    )
    response = signed_post(assume(system, role_arn), deployed.endpoint_url, samples_body)
    assert_forbidden(response, MSG_FORBIDDEN)


# --- the endpoint follows the template -------------------------------------------------------


def test_unsigned_request_is_accepted_when_template_url_auth_type_is_none(
    deployed: DeployedStack,
    deployed_without_auth: DeployedStack,
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN the template with AuthType NONE on the URL, deployed beside the AWS_IAM one
    WHEN the same unsigned POST goes to both THEN NONE answers 200, AWS_IAM 403."""
    assert deployed_without_auth.spec.url_auth_type == "NONE"
    assert deployed.spec.url_auth_type == "AWS_IAM"
    assert deployed_without_auth.endpoint_url != deployed.endpoint_url
    headers = {"content-type": JSON}
    open_answer = send("POST", deployed_without_auth.endpoint_url, samples_body, headers)
    iam_answer = send("POST", deployed.endpoint_url, samples_body, headers)
    assert_predictions(open_answer, reference, samples_body, rows=len(samples))
    assert_forbidden(iam_answer, MSG_FORBIDDEN)


# --- what reaches the handler, and what it logs -------------------------------------------------


def test_handler_logs_the_request_id_when_request_has_query_cookies_and_headers(
    deployed: DeployedStack,
    keys: Keys,
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN a signed POST with a repeated query parameter, cookies and a custom header
    WHEN it is answered THEN the predictions are right, the handler logged exactly one line with
    the response's x-amzn-requestid, and no credential material reached the log file."""
    url = deployed.endpoint_url.rstrip("/") + "/?a=1&a=2"
    response = signed_post(
        keys,
        url,
        samples_body,
        extra_headers={"cookie": "session=s1; theme=dark", "x-custom-header": "custom value"},
    )
    assert_predictions(response, reference, samples_body, rows=len(samples))

    request_id = response.headers["x-amzn-requestid"]
    logged = [r for r in request_log(deployed.log_path) if r.get("request_id") == request_id]
    assert len(logged) == 1
    assert logged[0]["method"] == "POST"
    assert logged[0]["status"] == 200
    assert logged[0]["rows"] == len(samples)

    authorization = response.request.headers["Authorization"]
    signature = authorization.rsplit("Signature=", 1)[1]
    assert len(signature) == 64
    assert keys.session_token is not None
    log_text = deployed.log_path.read_text(errors="replace")
    for secret in (authorization, signature, keys.session_token, keys.secret_key):
        assert secret not in log_text


def test_predictions_are_unchanged_when_content_type_is_missing(
    deployed: DeployedStack,
    keys: Keys,
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN a signed POST without content-type (the handler gets the body base64-encoded)
    THEN the same predictions as for application/json."""
    response = signed_post(keys, deployed.endpoint_url, samples_body, content_type=None)
    assert "content-type" not in {k.lower() for k in response.request.headers}
    assert_predictions(response, reference, samples_body, rows=len(samples))


def test_handler_415_is_passed_through_when_content_type_is_octet_stream(
    deployed: DeployedStack, keys: Keys, reference: InferenceService, samples_body: bytes
) -> None:
    content_type = "application/octet-stream"
    response = signed_post(keys, deployed.endpoint_url, samples_body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert_matches_reference(
        response, reference_response(reference, samples_body, content_type=content_type)
    )


def test_handler_400_is_passed_through_when_json_is_malformed(
    deployed: DeployedStack, keys: Keys, reference: InferenceService
) -> None:
    body = b'[{"fixed acidity": 6.6, "volatile acidity": '
    response = signed_post(keys, deployed.endpoint_url, body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert_matches_reference(response, reference_response(reference, body))


def _padded(body: bytes, size: int) -> bytes:
    """`body` (a JSON array) grown to exactly `size` bytes with insignificant whitespace."""
    assert body.startswith(b"[")
    return b"[" + b" " * (size - len(body)) + body[1:]


def test_request_is_refused_with_413_when_body_exceeds_6_mb(
    deployed: DeployedStack,
    keys: Keys,
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN signed POSTs of the samples padded to 5 MiB (control) and past 6 MB
    THEN the first is answered by the handler, the second is 413 from the endpoint, in AWS's
    body shape, and never reaches the handler (no log line with its request id)."""
    within = _padded(samples_body, 5 * 1024 * 1024)
    beyond = _padded(samples_body, INVOKE_PAYLOAD_BYTES + 4096)
    assert len(beyond) > 6 * 1024 * 1024  # past Lambda's 6 MiB (6291456-byte) payload limit

    control = signed_post(keys, deployed.endpoint_url, within)
    refused = signed_post(keys, deployed.endpoint_url, beyond)

    assert_predictions(control, reference, within, rows=len(samples))
    assert refused.status_code == 413
    assert refused.headers["content-type"] == JSON
    assert list(refused.json()) == ["Message"]
    logged = {r.get("request_id") for r in request_log(deployed.log_path)}
    assert control.headers["x-amzn-requestid"] in logged
    assert refused.headers["x-amzn-requestid"] not in logged


def test_payload_limit_applies_to_the_event_when_escaping_grows_the_body(
    deployed: DeployedStack,
    keys: Keys,
    reference: InferenceService,
    samples_body: bytes,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN two signed POSTs of the same size, 64 KiB under 6 MiB: the samples padded with
    whitespace (nothing to escape), and the samples plus a string of escaped quotes (each `\\"`
    is two bytes in the body and four in the event's JSON) THEN the first is answered and the
    second is refused with 413, as Lambda checks its 6 MB limit on the event, not the body."""
    size = INVOKE_PAYLOAD_BYTES - 64 * 1024
    plain = _padded(samples_body, size)
    filler = b',"' + b'\\"' * ((size - len(samples_body) - 3) // 2)
    quoted = (
        samples_body[:-1] + filler + b" " * (size - len(samples_body) - len(filler) - 1) + b'"]'
    )
    assert len(plain) == len(quoted) == size
    assert json.loads(quoted)[-1].startswith('""')

    assert_predictions(
        signed_post(keys, deployed.endpoint_url, plain), reference, plain, rows=len(samples)
    )
    refused = signed_post(keys, deployed.endpoint_url, quoted)
    assert refused.status_code == 413
    assert "6291456 bytes" in refused.json()["Message"]


def test_payload_limit_refuses_a_body_one_byte_over_6_mib(
    deployed: DeployedStack, keys: Keys, samples_body: bytes
) -> None:
    over = _padded(samples_body, 6 * 1024 * 1024 + 1)
    assert len(over) == 6291457
    assert signed_post(keys, deployed.endpoint_url, over).status_code == 413


def test_deployed_function_serves_the_compiled_library_when_deployed(
    deployed: DeployedStack, keys: Keys, samples_body: bytes, reference: InferenceService
) -> None:
    """The stand-in lays out what the multi-stage image holds: the builder stage's model.so and
    no model.ubj, and the environments that answered have that library mapped."""
    assert deployed.task_root is not None
    model_dir = deployed.task_root / "model"
    assert sorted(path.name for path in model_dir.iterdir()) == ["model.so"]
    # The image's compileall step, replayed for the interpreter the environments run.
    handler_dir = deployed.task_root / "ml_handler"
    compiled = {path.name for path in (handler_dir / "__pycache__").glob("*.pyc")}
    tag = sys.implementation.cache_tag
    assert {f"{source.stem}.{tag}.pyc" for source in handler_dir.glob("*.py")} <= compiled

    response = signed_post(keys, deployed.endpoint_url, samples_body)
    assert_matches_reference(response, reference_response(reference, samples_body))

    library = str((model_dir / "model.so").resolve())
    mapped = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == deployed.task_root.resolve():
                mapped.append(library in (proc / "maps").read_text())
        except OSError:
            continue  # a process that exited (or is not ours) while we looked
    assert mapped, "no execution environment runs in the deployed task root"
    assert all(mapped), "an environment answered without the compiled library loaded"


# --- what a newcomer pastes: the commands `serve` prints and the stand-in page's blocks ---------


def _paste(*commands: str, cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Each command run by a shell as pasted, side by side, without this process's AWS_* (a
    command must carry its own credentials)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    running = [
        subprocess.Popen(
            command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for command in commands
    ]
    done = []
    for command, process in zip(commands, running, strict=True):
        stdout, stderr = process.communicate(timeout=120)
        done.append(
            subprocess.CompletedProcess(
                command, process.returncode, stdout.decode(), stderr.decode()
            )
        )
    return done


def _assert_prediction_and_schema(
    predicted: subprocess.CompletedProcess[str],
    schema: subprocess.CompletedProcess[str],
    expected: Mapping[str, Any],
    samples_body: bytes,
) -> None:
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout) == json.loads(expected["body"])
    assert schema.returncode == 0, schema.stderr
    features = [feature["name"] for feature in json.loads(schema.stdout)["features"]]
    assert sorted(features) == sorted(json.loads(samples_body)[0])


def test_serve_prints_commands_that_run_when_pasted_as_printed(
    system: LocalSystem,
    deployed: DeployedStack,
    samples_body: bytes,
    reference: InferenceService,
    tmp_path: Path,
) -> None:
    printed = serve_instructions(
        endpoint_url=deployed.endpoint_url,
        auth_type=deployed.spec.url_auth_type,
        role_arn=deployed.role_arn,
        region=system.region,
        sts_endpoint_url=system.moto.endpoint_url,
    )
    commands = [line.strip() for line in printed.splitlines() if line.startswith("  ")]

    assert len(commands) == 2, printed
    # From any folder: nothing relative to the checkout.
    predicted, schema = _paste(*commands, cwd=tmp_path)
    _assert_prediction_and_schema(
        predicted, schema, reference_response(reference, samples_body), samples_body
    )
    assert "ASIA" not in printed + predicted.stdout + predicted.stderr


def test_stand_in_page_commands_run_with_the_values_serve_prints(
    system: LocalSystem,
    deployed: DeployedStack,
    samples_body: bytes,
    reference: InferenceService,
) -> None:
    """docs/stand-in.md, "Try it by hand": the first block starts `serve` (this module's
    deployment stands for it: the same synth and deploy); the second runs here, with the values
    `serve` prints in place of the page's placeholders and this interpreter for the demo env's."""
    page = docs_text.ROOT / "docs" / "stand-in.md"
    start, paste = [b for b in docs_text.blocks(page) if b.language in docs_text.SHELL_LANGUAGES]
    assert start.commands() == ["./dev exec -e demo -- python -m localurl serve"]
    values = {
        "FUNCTION_URL": deployed.endpoint_url,
        "ROLE_ARN": deployed.role_arn,
        "STS_URL": system.moto.endpoint_url,
        ".tox/demo/bin/python": shlex.quote(sys.executable),
    }
    commands = paste.commands()
    for placeholder, value in values.items():
        assert all(placeholder in command for command in commands), placeholder
        commands = [command.replace(placeholder, value) for command in commands]

    predicted, schema = _paste(*commands, cwd=docs_text.ROOT)
    _assert_prediction_and_schema(
        predicted, schema, reference_response(reference, samples_body), samples_body
    )
