"""No secret material in logs, stdout, stderr, reprs or error messages.

Every logger (root, botocore, boto3, urllib3, the client's own) is captured at DEBUG while the
client assumes a role and makes signed calls, succeeding and failing; then the captured text is
searched for the secret key, the session token, the signatures and the Authorization header.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from client.cli import main
from client.errors import AuthError, ServerError
from client.exit_codes import ExitCode
from client.invoke import InferenceClient
from client.retry import RetryPolicy
from tests.contract.test_client_support import (
    REGION,
    RecordedRequest,
    Reply,
    ScriptedServer,
    create_role,
    moto_assumed_role,
    parse_authorization,
)

LOGGERS = ("", "botocore", "boto3", "urllib3", "requests_aws4auth", "client", "moto")
HEX_64 = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass
class Secrets:
    """What must never be seen: one role session's secrets and the signatures made with them."""

    secret_key: str
    session_token: str
    authorizations: list[str]

    @property
    def signatures(self) -> list[str]:
        return [parse_authorization(a)["Signature"] for a in self.authorizations]

    def assert_absent_from(self, text: str, *, where: str) -> None:
        assert self.secret_key not in text, f"secret access key in {where}"
        assert self.session_token not in text, f"session token in {where}"
        for authorization, signature in zip(self.authorizations, self.signatures, strict=True):
            assert authorization not in text, f"Authorization header in {where}"
            assert signature not in text, f"signature in {where}"
        assert "Signature=" not in text.replace("Signature=[REDACTED]", ""), where
        assert "AWS4-HMAC-SHA256 Credential=" not in text, f"Authorization header in {where}"
        # Any other 64-hex string would be some signature or signing input: botocore's own
        # signature on the AssumeRole call, a canonical request's hashes.
        assert not HEX_64.search(text), f"64-hex string (signature?) in {where}"


def secrets_of(requests: list[RecordedRequest]) -> Secrets:
    authorizations = [r.header("Authorization") or "" for r in requests]
    access_key = parse_authorization(authorizations[0])["Credential"].split("/")[0]
    session = moto_assumed_role(access_key)
    return Secrets(session.secret_access_key, session.session_token, authorizations)


def captured_text(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    records = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    return "\n".join([caplog.text, records, captured.out, captured.err])


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def role_arn() -> Iterator[str]:
    with mock_aws():
        yield create_role(boto3.client("iam", region_name=REGION))


def outputs_file(tmp_path: Path, url: str, role_arn: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps({"ml": {"fnUrlRoleArn": role_arn, "EndpointUrl": url, "Region": REGION}})
    )
    return path


def echoing(status: int) -> Any:
    """A (badly behaved) server whose error message quotes the request's secrets back, the way
    some AWS signature-mismatch errors quote the canonical request."""

    def reply(request: RecordedRequest) -> Reply:
        message = (
            f"The Canonical String for this request should have been "
            f"'x-amz-security-token:{request.header('X-Amz-Security-Token')}' "
            f"Authorization: {request.header('Authorization')}"
        )
        return Reply.json(status, {"Message": message})

    return reply


def test_log_capture_sees_botocore_secrets_when_not_withheld(
    role_arn: str, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control for the tests below: the capture is wide enough to see a leak. Called
    directly (not through the client), botocore logs the AssumeRole answer's secrets at DEBUG.
    It also shows that the client's withholding does not silence botocore for other callers."""
    sts = boto3.client("sts", region_name=REGION)

    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="direct")["Credentials"]

    text = captured_text(debug_logs, capsys)
    assert credentials["SecretAccessKey"] in text
    assert credentials["SessionToken"] in text


def test_signed_invocation_leaves_no_secret_in_logs_or_output(
    tmp_path: Path,
    role_arn: str,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'[{"alcohol": 11.4}]')
    with ScriptedServer(Reply.json(200, [6.5])) as server:
        code = main(
            [
                *("--outputs-file", str(outputs_file(tmp_path, server.url, role_arn))),
                *("--body", str(body), "--verbose"),
            ]
        )

    text = captured_text(debug_logs, capsys)
    assert code == ExitCode.OK
    assert any(r.name.startswith("botocore") for r in debug_logs.records), "capture is live"
    assert any(r.name.startswith("urllib3") for r in debug_logs.records), "capture is live"
    secrets_of(server.requests).assert_absent_from(text, where="logs/stdout/stderr")


@pytest.mark.parametrize(
    ("status", "exit_code"), [(403, ExitCode.AUTH_FAILURE), (500, ExitCode.SERVER_FAILURE)]
)
def test_failing_invocation_leaves_no_secret_in_logs_or_output(
    tmp_path: Path,
    role_arn: str,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    status: int,
    exit_code: ExitCode,
) -> None:
    """GIVEN a server whose error answers quote the token and Authorization header back
    WHEN the CLI's call fails (403 at once; 500 after a retry, which is logged)
    THEN stderr and the logs show the error with those values masked."""
    with ScriptedServer(echoing(status)) as server:
        code = main(
            [
                *("--outputs-file", str(outputs_file(tmp_path, server.url, role_arn))),
                *("--metadata", "--retries", "1", "--verbose"),
            ]
        )

    text = captured_text(debug_logs, capsys)
    assert code == exit_code
    assert "[REDACTED]" in text, "the server's message is still shown, masked"
    secrets_of(server.requests).assert_absent_from(text, where="logs/stdout/stderr")


def test_exceptions_and_reprs_carry_no_secret(role_arn: str) -> None:
    sts = boto3.client("sts", region_name=REGION)
    with ScriptedServer(echoing(403), echoing(503)) as server:
        client = InferenceClient.for_role(
            endpoint_url=server.url,
            role_arn=role_arn,
            region=REGION,
            sts_client=sts,
            retry=RetryPolicy(max_attempts=1),
        )
        with pytest.raises(AuthError) as forbidden:
            client.predict(b"[]")
        with pytest.raises(ServerError) as unavailable:
            client.predict(b"[]")
        client.close()

    secrets = secrets_of(server.requests)
    for text in (
        str(forbidden.value),
        repr(forbidden.value),
        str(unavailable.value),
        repr(client),
        repr(client._credentials),
        repr(client._credentials.get()),
    ):
        secrets.assert_absent_from(text, where=text[:60])
