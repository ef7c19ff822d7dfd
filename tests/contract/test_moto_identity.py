"""Access keys issued by moto resolve to the secret, token and identity moto handed out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from localurl.moto_identity import lookup_access_key

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Never let a developer's real profile or keys reach boto3, even under the mock.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _assume(role_name: str = "Invoker", session: str = "ci-run") -> dict:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName=role_name, Path="/app/", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]
    sts = boto3.client("sts", region_name=REGION)
    response = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=session)
    return {"role": role, **response}


@pytest.mark.usefixtures("aws")
def test_lookup_returns_assumed_role_secret_token_and_identity():
    assumed = _assume()
    issued = assumed["Credentials"]
    found = lookup_access_key(issued["AccessKeyId"])
    assert found is not None
    assert found.access_key == issued["AccessKeyId"]
    assert found.secret_key == issued["SecretAccessKey"]
    assert found.session_token == issued["SessionToken"]
    assert found.expiration == issued["Expiration"].astimezone(UTC)
    assert found.account_id == ACCOUNT
    assert found.user_arn == assumed["AssumedRoleUser"]["Arn"]
    assert found.user_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/Invoker/ci-run"
    assert found.user_id == assumed["AssumedRoleUser"]["AssumedRoleId"]
    # Policies are looked up on the role, path included, not on the session.
    assert (
        found.principal_arn == assumed["role"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/app/Invoker"
    )


@pytest.mark.usefixtures("aws")
def test_lookup_identity_matches_sts_get_caller_identity():
    issued = _assume()["Credentials"]
    as_session = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["SessionToken"],
    )
    identity = as_session.get_caller_identity()
    found = lookup_access_key(issued["AccessKeyId"])
    assert found is not None
    assert (found.account_id, found.user_arn, found.user_id) == (
        identity["Account"],
        identity["Arn"],
        identity["UserId"],
    )


@pytest.mark.usefixtures("aws")
def test_lookup_tells_two_sessions_apart():
    first = _assume("First", "one")["Credentials"]
    second = _assume("Second", "two")["Credentials"]
    found_first, found_second = (lookup_access_key(c["AccessKeyId"]) for c in (first, second))
    assert found_first is not None
    assert found_second is not None
    assert found_first.secret_key == first["SecretAccessKey"]
    assert found_second.secret_key == second["SecretAccessKey"]
    assert found_first.principal_arn.endswith(":role/app/First")
    assert found_second.principal_arn.endswith(":role/app/Second")


@pytest.mark.usefixtures("aws")
def test_lookup_returns_iam_user_access_key_without_token():
    iam = boto3.client("iam", region_name=REGION)
    user = iam.create_user(UserName="alice")["User"]
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    found = lookup_access_key(key["AccessKeyId"])
    assert found is not None
    assert found.secret_key == key["SecretAccessKey"]
    assert found.session_token is None
    assert found.expiration is None
    assert found.account_id == ACCOUNT
    assert found.user_arn == found.principal_arn == user["Arn"]
    assert found.user_id == user["UserId"]


@pytest.mark.usefixtures("aws")
def test_lookup_returns_none_for_inactive_user_key():
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="bob")
    key_id = iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
    assert lookup_access_key(key_id) is not None
    iam.update_access_key(UserName="bob", AccessKeyId=key_id, Status="Inactive")
    assert lookup_access_key(key_id) is None


@pytest.mark.usefixtures("aws")
def test_lookup_returns_none_for_unknown_key():
    _assume()
    assert lookup_access_key("ASIAUNKNOWNKEY000001") is None
    assert lookup_access_key("AKIAUNKNOWNKEY000001") is None


@pytest.mark.usefixtures("aws")
def test_lookup_restricted_to_other_account_returns_none():
    issued = _assume()["Credentials"]
    assert lookup_access_key(issued["AccessKeyId"], account_id="210987654321") is None
    assert lookup_access_key(issued["AccessKeyId"], account_id=ACCOUNT) is not None


@pytest.mark.usefixtures("aws")
def test_lookup_expiration_is_timezone_aware_and_in_the_future():
    issued = _assume()["Credentials"]
    found = lookup_access_key(issued["AccessKeyId"])
    assert found is not None
    assert found.expiration is not None
    assert found.expiration.tzinfo is not None
    assert found.expiration > datetime.now(UTC)


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        server.stop()


def test_lookup_finds_session_issued_by_threaded_moto_server(moto_server):
    def client(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=moto_server,
            aws_access_key_id="AKIAOPERATOR00000000",
            aws_secret_access_key="operator-secret",
        )

    # The server shares this process's backends, which other tests may be using: no global
    # reset, a unique name, and the role removed afterwards.
    name = f"Invoker-{uuid.uuid4().hex[:12]}"
    iam = client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    try:
        issued = client("sts").assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="srv")
    finally:
        iam.delete_role(RoleName=name)
    found = lookup_access_key(issued["Credentials"]["AccessKeyId"])
    assert found is not None
    assert found.secret_key == issued["Credentials"]["SecretAccessKey"]
    assert found.session_token == issued["Credentials"]["SessionToken"]
    assert found.user_arn == issued["AssumedRoleUser"]["Arn"]
    assert found.principal_arn == role["Role"]["Arn"]
