"""AssumeRole credentials against moto's STS: what reaches STS, refresh, and the failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.core import enable_iam_authentication

from client.credentials import AssumeRoleCredentials, TemporaryCredentials
from client.errors import (
    AuthError,
    ConfigurationError,
    EndpointUnreachableError,
    InvalidRoleArnError,
)
from tests.contract.test_client_support import ACCOUNT_ID, REGION, create_role, refused_url


class MovableClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def iam(aws: None) -> Any:
    return boto3.client("iam", region_name=REGION)


@pytest.fixture
def role_arn(iam: Any) -> str:
    return create_role(iam)


@pytest.fixture
def sts(aws: None) -> Any:
    return boto3.client("sts", region_name=REGION)


def count_assume_role_calls(sts_client: Any) -> list[dict[str, Any]]:
    """STS's parsed AssumeRole answers, appended as they arrive."""
    answers: list[dict[str, Any]] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        answers.append(parsed)

    sts_client.meta.events.register("after-call.sts.AssumeRole", record)
    return answers


def test_assume_role_sends_session_name_and_duration_to_sts(role_arn: str, sts: Any) -> None:
    """GIVEN a session name and duration
    WHEN the provider assumes the role
    THEN STS issues a session of that name and lifetime, usable as that role."""
    before = datetime.now(UTC)
    provider = AssumeRoleCredentials(
        role_arn, sts_client=sts, session_name="contract-session", duration_seconds=1800
    )

    credentials = provider.get()

    assert credentials.assumed_role_arn == (
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/invoker/contract-session"
    )
    lifetime = (credentials.expiration - before).total_seconds()
    assert 1800 - 5 <= lifetime <= 1800 + 5
    caller = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    ).get_caller_identity()
    assert caller["Arn"] == credentials.assumed_role_arn


def test_assume_role_default_session_name_is_valid_and_recognisable(
    role_arn: str, sts: Any
) -> None:
    credentials = AssumeRoleCredentials(role_arn, sts_client=sts).get()

    session_name = credentials.assumed_role_arn.rsplit("/", 1)[1]
    assert session_name.startswith("ml-invoke-")


def test_credentials_are_reused_while_fresh(role_arn: str, sts: Any) -> None:
    answers = count_assume_role_calls(sts)
    clock = MovableClock()
    provider = AssumeRoleCredentials(role_arn, sts_client=sts, clock=clock)

    first = provider.get()
    clock.now += timedelta(minutes=30)
    second = provider.get()

    assert second is first
    assert len(answers) == 1


@pytest.mark.parametrize(
    ("margin_seconds", "seconds_left", "refreshed"),
    [
        (300, 301, False),
        (300, 300, False),
        (300, 299, True),
        (600, 601, False),
        (600, 599, True),
        (300, -10, True),  # already expired
    ],
)
def test_credentials_refresh_when_less_than_margin_remains(
    role_arn: str, sts: Any, margin_seconds: int, seconds_left: int, refreshed: bool
) -> None:
    """GIVEN credentials held by the provider
    WHEN the clock reaches `seconds_left` before their expiration
    THEN the provider assumes the role again if and only if fewer than the margin remain."""
    answers = count_assume_role_calls(sts)
    clock = MovableClock()
    provider = AssumeRoleCredentials(
        role_arn, sts_client=sts, clock=clock, refresh_margin_seconds=margin_seconds
    )
    first = provider.get()

    clock.now = first.expiration - timedelta(seconds=seconds_left)
    second = provider.get()

    assert (second.access_key_id != first.access_key_id) is refreshed
    assert len(answers) == (2 if refreshed else 1)


def test_refresh_forces_new_credentials(role_arn: str, sts: Any) -> None:
    provider = AssumeRoleCredentials(role_arn, sts_client=sts)
    first = provider.get()

    renewed = provider.refresh()

    assert renewed.access_key_id != first.access_key_id
    assert provider.get() is renewed


@pytest.mark.parametrize(
    "bad_arn",
    [
        "",
        "invoker",
        "arn:aws:iam::12345:role/invoker",
        f"arn:aws:iam::{ACCOUNT_ID}:user/alice",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/invoker/session",
        f"arn:aws:iam::{ACCOUNT_ID}:role/",
        f"arn:aws:iam::{ACCOUNT_ID}:role/has space",
        f" arn:aws:iam::{ACCOUNT_ID}:role/invoker",
    ],
)
def test_malformed_role_arn_is_refused_before_calling_sts(bad_arn: str) -> None:
    """No STS client is even needed: the ARN is checked first, with a message saying why."""
    with pytest.raises(InvalidRoleArnError) as raised:
        AssumeRoleCredentials(bad_arn, sts_client=object())

    assert isinstance(raised.value, AuthError)
    assert "not an IAM role ARN" in str(raised.value)
    assert repr(bad_arn) in str(raised.value)


@pytest.mark.parametrize(
    "good_arn",
    [
        f"arn:aws:iam::{ACCOUNT_ID}:role/invoker",
        f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/ml/Invoker+Role=1,a.b@c_d-e",
        f"arn:aws-cn:iam::{ACCOUNT_ID}:role/invoker",
        f"arn:aws-us-gov:iam::{ACCOUNT_ID}:role/invoker",
    ],
)
def test_well_formed_role_arns_are_accepted(good_arn: str) -> None:
    assert AssumeRoleCredentials(good_arn, sts_client=object()).role_arn == good_arn


@pytest.fixture
def iam_enforced_callers(iam: Any, role_arn: str) -> Iterator[dict[str, Any]]:
    """Two IAM users with keys, and moto enforcing IAM: `allowed` may assume the invoker role
    (identity policy and trust policy), `ungranted` has no policy at all."""
    clients: dict[str, Any] = {}
    for name in ("allowed", "ungranted"):
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        clients[name] = boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
    iam.put_user_policy(
        UserName="allowed",
        PolicyName="assume-invoker",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
                ],
            }
        ),
    )
    iam.update_assume_role_policy(
        RoleName="invoker",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/allowed"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    with enable_iam_authentication():
        yield clients


def test_granted_caller_assumes_role_when_iam_is_enforced(
    iam_enforced_callers: dict[str, Any], role_arn: str
) -> None:
    """The control for the two denials below: the same setup does let the granted user in."""
    provider = AssumeRoleCredentials(role_arn, sts_client=iam_enforced_callers["allowed"])

    assert provider.get().assumed_role_arn.startswith(f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/")


def test_access_denied_by_sts_raises_auth_error(
    iam_enforced_callers: dict[str, Any], role_arn: str
) -> None:
    provider = AssumeRoleCredentials(role_arn, sts_client=iam_enforced_callers["ungranted"])

    with pytest.raises(AuthError) as raised:
        provider.get()

    message = str(raised.value)
    assert raised.value.code == "AccessDenied"
    assert role_arn in message
    assert "access denied" in message
    assert "\n" not in message


def test_unknown_role_raises_auth_error(iam_enforced_callers: dict[str, Any]) -> None:
    """A role that does not exist: AWS answers AccessDenied, and so does moto's IAM."""
    unknown = f"arn:aws:iam::{ACCOUNT_ID}:role/no-such-role"
    provider = AssumeRoleCredentials(unknown, sts_client=iam_enforced_callers["allowed"])

    with pytest.raises(AuthError) as raised:
        provider.get()

    assert raised.value.code == "AccessDenied"
    assert unknown in str(raised.value)


def test_rejected_caller_credentials_raise_auth_error(iam: Any, role_arn: str) -> None:
    iam.create_user(UserName="typo")
    key = iam.create_access_key(UserName="typo")["AccessKey"]
    wrong_secret = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key="not-the-secret",
    )

    with enable_iam_authentication(), pytest.raises(AuthError) as raised:
        AssumeRoleCredentials(role_arn, sts_client=wrong_secret).get()

    assert raised.value.code == "SignatureDoesNotMatch"
    assert "rejected the credentials" in str(raised.value)


def test_missing_caller_credentials_raise_auth_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """No credentials anywhere in the default chain: a clear message, no network needed."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    provider = AssumeRoleCredentials(
        f"arn:aws:iam::{ACCOUNT_ID}:role/invoker", boto3_session=boto3.Session(), region=REGION
    )

    with pytest.raises(AuthError, match="no usable AWS credentials"):
        provider.get()


def test_unreachable_sts_raises_endpoint_unreachable(role_arn: str) -> None:
    sts = boto3.Session().client(
        "sts",
        region_name=REGION,
        endpoint_url=refused_url(),
        aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="example",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
    )

    with pytest.raises(EndpointUnreachableError, match="cannot reach AWS"):
        AssumeRoleCredentials(role_arn, sts_client=sts).get()


def test_sts_endpoint_url_is_used_when_given(role_arn: str) -> None:
    """--sts-endpoint-url reaches the STS client the provider makes for itself."""
    provider = AssumeRoleCredentials(
        role_arn,
        boto3_session=boto3.Session(
            aws_access_key_id="AKIAEXAMPLEEXAMPLE00", aws_secret_access_key="x"
        ),
        region=REGION,
        sts_endpoint_url=refused_url(),
    )

    with pytest.raises(EndpointUnreachableError):
        provider.get()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration_seconds": 899}, "session duration"),
        ({"duration_seconds": 43_201}, "session duration"),
        ({"session_name": "x"}, "session name"),
        ({"session_name": "has space"}, "session name"),
        ({"session_name": "n" * 65}, "session name"),
        ({"duration_seconds": 900, "refresh_margin_seconds": 900}, "refresh margin"),
        ({"refresh_margin_seconds": -1}, "refresh margin"),
    ],
)
def test_invalid_session_options_are_refused_up_front(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AssumeRoleCredentials(
            f"arn:aws:iam::{ACCOUNT_ID}:role/invoker", sts_client=object(), **options
        )


def test_credentials_repr_and_str_hide_secret_and_token() -> None:
    credentials = TemporaryCredentials(
        access_key_id="ASIAABCDEFGHIJKLMNOP",
        secret_access_key="secret/abcdefghijklmnopqrstuvwxyz0123456789",
        session_token="token-abcdefghijklmnopqrstuvwxyz0123456789",
        expiration=datetime(2030, 1, 1, tzinfo=UTC),
        assumed_role_arn=f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/invoker/s",
    )

    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert credentials.secret_access_key not in text
        assert credentials.session_token not in text
        assert credentials.access_key_id not in text
        assert "ASIA...MNOP" in text
        assert "[REDACTED]" in text
