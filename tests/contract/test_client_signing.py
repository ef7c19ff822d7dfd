"""The signature on the wire: STS's temporary keys, and a SigV4 that botocore agrees with.

Each request is captured by a real HTTP server on 127.0.0.1 as it arrived, then the signature is
recomputed independently with botocore's SigV4 signer from what was received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from moto import mock_aws

from client.invoke import InferenceClient
from tests.contract.test_client_support import (
    REGION,
    RecordedRequest,
    Reply,
    ScriptedServer,
    create_role,
    parse_authorization,
)

BODY = b'[{"alcohol": 11.4, "pH": 3.34}, {"alcohol": 9.2, "pH": null}]'
# A JSON object: a valid answer to both predict (any JSON) and metadata (an object).
SCHEMA_REPLY = Reply.json(200, {"features": [{"name": "alcohol"}, {"name": "pH"}]})


@dataclass(frozen=True)
class Signed:
    """One invocation: STS's answer to the client's AssumeRole and the request as received."""

    sts_credentials: dict[str, Any]
    request: RecordedRequest
    host: str


def _assume_role_answers(sts: Any) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    sts.meta.events.register(
        "after-call.sts.AssumeRole", lambda parsed, **_: answers.append(parsed)
    )
    return answers


@pytest.fixture
def invoke() -> Iterator[Any]:
    """invoke(suffix, method) -> Signed: assume a moto role, send one signed request."""
    with mock_aws(), ScriptedServer(SCHEMA_REPLY) as server:
        sts = boto3.client("sts", region_name=REGION)
        role_arn = create_role(boto3.client("iam", region_name=REGION))
        answers = _assume_role_answers(sts)

        def call(suffix: str = "", method: str = "POST") -> Signed:
            client = InferenceClient.for_role(
                endpoint_url=server.url + suffix, role_arn=role_arn, region=REGION, sts_client=sts
            )
            with client:
                if method == "GET":
                    client.metadata()
                else:
                    client.predict(BODY)
            assert len(answers) == 1, "one client, one AssumeRole"
            return Signed(
                answers.pop()["Credentials"], server.requests[-1], f"127.0.0.1:{server.port}"
            )

        yield call


def reference_signature(
    signed: Signed,
    *,
    body: bytes | None = None,
    target: str | None = None,
    region: str = REGION,
    service: str = "lambda",
) -> str:
    """SigV4 of the received request per botocore, over exactly the headers it says it signed.

    Overrides (body, target = path?query, region, service) model a request that differs from the
    one received, to show that each of them is covered by the signature.
    """
    request = signed.request
    authorization = parse_authorization(request.header("Authorization") or "")
    names = authorization["SignedHeaders"].split(";")
    headers = HTTPHeaders()
    for name in names:
        value = request.header(name)
        assert value is not None, f"signed header {name} was not sent"
        headers[name] = value
    aws_request = AWSRequest(
        method=request.method,
        url=f"http://{signed.host}{target if target is not None else request.target}",
        data=request.body if body is None else body,
    )
    # No headers on the AWSRequest itself: botocore then hashes the body on its own instead of
    # trusting the X-Amz-Content-Sha256 the client sent.
    aws_request.context["timestamp"] = request.header("X-Amz-Date")

    class ClientHeaderSet(SigV4Auth):
        def headers_to_sign(self, _: AWSRequest) -> HTTPHeaders:
            return headers

    credentials = signed.sts_credentials
    signer = ClientHeaderSet(
        Credentials(credentials["AccessKeyId"], credentials["SecretAccessKey"]), service, region
    )
    canonical = signer.canonical_request(aws_request)
    return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))


def test_request_is_signed_with_the_temporary_keys_sts_returned(invoke: Any) -> None:
    """GIVEN a role assumed through (moto's) STS
    WHEN the client invokes the URL
    THEN the request carries STS's session token and is signed with STS's access key."""
    signed = invoke()

    authorization = parse_authorization(signed.request.header("Authorization") or "")
    access_key, date, region, service, terminator = authorization["Credential"].split("/")
    assert access_key == signed.sts_credentials["AccessKeyId"]
    assert access_key.startswith("ASIA")
    assert signed.request.header("X-Amz-Security-Token") == signed.sts_credentials["SessionToken"]
    assert (date, region, service, terminator) == (
        (signed.request.header("X-Amz-Date") or "")[:8],
        REGION,
        "lambda",
        "aws4_request",
    )


def test_signature_matches_botocore_recomputation(invoke: Any) -> None:
    signed = invoke()

    sent = parse_authorization(signed.request.header("Authorization") or "")["Signature"]

    assert sent == reference_signature(signed)


def test_signed_headers_cover_host_date_body_hash_token_and_content_type(invoke: Any) -> None:
    signed = invoke()

    names = parse_authorization(signed.request.header("Authorization") or "")["SignedHeaders"]

    assert set(names.split(";")) >= {
        "content-type",
        "host",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-security-token",
    }
    assert signed.request.header("X-Amz-Content-Sha256") == hashlib.sha256(BODY).hexdigest()


def test_body_and_content_type_arrive_exactly_as_given(invoke: Any) -> None:
    """Bytes are not re-encoded and no charset is appended after signing."""
    signed = invoke()

    assert signed.request.body == BODY
    assert signed.request.header("Content-Type") == "application/json"


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({}, False),
        ({"body": BODY.replace(b"11.4", b"11.5")}, True),
        ({"body": BODY + b" "}, True),
        ({"target": "/other"}, True),
        ({"target": "/?rows=2"}, True),
        ({"region": "us-east-1"}, True),
        ({"service": "execute-api"}, True),
    ],
)
def test_signature_covers_body_path_query_region_and_service(
    invoke: Any, change: dict[str, Any], differs: bool
) -> None:
    """The first row is the control: the unchanged request reproduces the sent signature."""
    signed = invoke()
    sent = parse_authorization(signed.request.header("Authorization") or "")["Signature"]

    assert (reference_signature(signed, **change) != sent) is differs


@pytest.mark.parametrize("suffix", ["predict", "a/b/c", "?b=2&a=1", "x?q=a%20b&empty="])
def test_signature_verifies_for_urls_with_path_and_query(invoke: Any, suffix: str) -> None:
    signed = invoke(suffix)

    assert signed.request.target == "/" + suffix
    sent = parse_authorization(signed.request.header("Authorization") or "")["Signature"]
    assert sent == reference_signature(signed)


def test_metadata_get_is_signed_over_an_empty_body(invoke: Any) -> None:
    signed = invoke(method="GET")

    assert signed.request.method == "GET"
    assert signed.request.body == b""
    assert signed.request.header("X-Amz-Content-Sha256") == hashlib.sha256(b"").hexdigest()
    sent = parse_authorization(signed.request.header("Authorization") or "")["Signature"]
    assert sent == reference_signature(signed)
