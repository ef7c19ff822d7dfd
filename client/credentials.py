"""Temporary credentials for the invoker role, from STS AssumeRole, refreshed before they expire.

One `AssumeRoleCredentials` serves any number of calls: it assumes the role on first use and
again whenever fewer than `refresh_margin_seconds` of validity remain, so a long-running caller
never signs with credentials that expire while the request is in flight.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import boto3
import botocore.exceptions as bx

from .aws_errors import error_code, error_message, translate_aws_error
from .errors import AuthError, ConfigurationError, InvalidRoleArnError
from .redaction import REDACTED, mask_access_key, withhold_sdk_debug_logs

logger = logging.getLogger(__name__)

MIN_DURATION_SECONDS: Final = 900
MAX_DURATION_SECONDS: Final = 43_200
DEFAULT_DURATION_SECONDS: Final = 3_600
DEFAULT_REFRESH_MARGIN_SECONDS: Final = 300.0
DEFAULT_SESSION_NAME_PREFIX: Final = "ml-invoke"
# IAM role ARN: partition, 12-digit account, optional path, name of IAM's allowed characters.
ROLE_ARN_RE: Final = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII
)
SESSION_NAME_RE: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def validate_role_arn(role_arn: str) -> str:
    """`role_arn`, or InvalidRoleArnError saying what a role ARN looks like."""
    if not ROLE_ARN_RE.fullmatch(role_arn):
        raise InvalidRoleArnError(
            f"not an IAM role ARN: {role_arn!r} "
            "(expected arn:aws:iam::<12-digit account>:role/<name>)"
        )
    return role_arn


def validate_session_name(session_name: str) -> str:
    if not SESSION_NAME_RE.fullmatch(session_name):
        raise ConfigurationError(
            f"invalid role session name {session_name!r}: 2-64 characters of "
            "letters, digits and +=,.@_-"
        )
    return session_name


def validate_duration_seconds(duration_seconds: int) -> int:
    if not MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS:
        raise ConfigurationError(
            f"session duration must be {MIN_DURATION_SECONDS}-{MAX_DURATION_SECONDS} seconds, "
            f"got {duration_seconds}"
        )
    return duration_seconds


@dataclass(frozen=True, kw_only=True)
class TemporaryCredentials:
    """One set of role credentials. Its repr and str never show the secret key or token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    # arn:aws:sts::<account>:assumed-role/<role name>/<session name>
    assumed_role_arn: str

    def __repr__(self) -> str:
        return (
            f"TemporaryCredentials(access_key_id={mask_access_key(self.access_key_id)!r}, "
            f"secret_access_key={REDACTED!r}, session_token={REDACTED!r}, "
            f"expiration={self.expiration.isoformat()!r}, "
            f"assumed_role_arn={self.assumed_role_arn!r})"
        )

    __str__ = __repr__

    def seconds_left(self, now: datetime) -> float:
        return (self.expiration - now).total_seconds()


class CredentialsProvider(Protocol):
    """What the inference client needs: valid credentials, each time it signs a request."""

    def get(self) -> TemporaryCredentials: ...


class AssumeRoleCredentials:
    """Assumes `role_arn` with STS and keeps the result fresh; safe to share between threads.

    STS is reached through `sts_client` if given; otherwise through a client made from
    `boto3_session` (default: the standard credential chain) for `region` and, for local
    stand-ins, `sts_endpoint_url`. `clock` returns an aware datetime (tests move it forward).
    """

    def __init__(
        self,
        role_arn: str,
        *,
        sts_client: Any = None,  # a boto3 client: untyped here
        boto3_session: boto3.Session | None = None,
        region: str | None = None,
        sts_endpoint_url: str | None = None,
        session_name: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self.role_arn = validate_role_arn(role_arn)
        self.duration_seconds = validate_duration_seconds(duration_seconds)
        if not 0 <= refresh_margin_seconds < self.duration_seconds:
            # A margin as long as the session would assume the role again on every call.
            raise ConfigurationError(
                f"refresh margin must be between 0 and the session duration "
                f"({self.duration_seconds} s), got {refresh_margin_seconds}"
            )
        self.refresh_margin = timedelta(seconds=refresh_margin_seconds)
        self._clock = clock
        self.session_name = validate_session_name(
            session_name or f"{DEFAULT_SESSION_NAME_PREFIX}-{int(clock().timestamp())}"
        )
        self._sts_client = sts_client
        self._boto3_session = boto3_session
        self._region = region
        self._sts_endpoint_url = sts_endpoint_url
        self._lock = threading.Lock()
        self._current: TemporaryCredentials | None = None

    def __repr__(self) -> str:
        return (
            f"AssumeRoleCredentials(role_arn={self.role_arn!r}, "
            f"session_name={self.session_name!r}, duration_seconds={self.duration_seconds})"
        )

    def get(self) -> TemporaryCredentials:
        """Current credentials; assumes the role first if none are held or fewer than
        `refresh_margin_seconds` of their validity remain."""
        with self._lock:
            current = self._current
            if current is None or current.expiration - self._clock() < self.refresh_margin:
                current = self._current = self._assume_role()
            return current

    def refresh(self) -> TemporaryCredentials:
        """Assume the role now, whatever the state of the current credentials."""
        with self._lock:
            self._current = self._assume_role()
            return self._current

    def _client(self) -> Any:
        if self._sts_client is None:
            session = self._boto3_session or boto3.Session()
            self._sts_client = session.client(
                "sts", region_name=self._region, endpoint_url=self._sts_endpoint_url
            )
        return self._sts_client

    def _assume_role(self) -> TemporaryCredentials:
        action = f"assuming {self.role_arn}"
        try:
            with withhold_sdk_debug_logs():
                response = self._client().assume_role(
                    RoleArn=self.role_arn,
                    RoleSessionName=self.session_name,
                    DurationSeconds=self.duration_seconds,
                )
        except bx.ClientError as exc:
            if error_code(exc) == "ValidationError" and "rolearn" in error_message(exc).lower():
                raise InvalidRoleArnError(f"{action}: {error_message(exc)}") from None
            raise _translated(exc, action) from None
        except (bx.BotoCoreError, ValueError) as exc:
            # ValueError: botocore refuses a malformed endpoint_url that way.
            raise _translated(exc, action) from None
        credentials = _parse_credentials(response)
        logger.info(
            "assumed %s as %s until %s",
            self.role_arn,
            credentials.assumed_role_arn,
            credentials.expiration.isoformat(),
        )
        return credentials


def _translated(exc: Exception, action: str) -> Exception:
    translated = translate_aws_error(exc, action=action)
    if translated is not None:
        return translated
    return ConfigurationError(f"{action}: {' '.join(str(exc).split())}")


def _parse_credentials(response: dict[str, Any]) -> TemporaryCredentials:
    try:
        raw = response["Credentials"]
        expiration = raw["Expiration"]
        if not isinstance(expiration, datetime):
            expiration = datetime.fromisoformat(str(expiration))
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        return TemporaryCredentials(
            access_key_id=str(raw["AccessKeyId"]),
            secret_access_key=str(raw["SecretAccessKey"]),
            session_token=str(raw["SessionToken"]),
            expiration=expiration.astimezone(UTC),
            assumed_role_arn=str(response.get("AssumedRoleUser", {}).get("Arn", "")),
        )
    except (KeyError, TypeError, ValueError):
        # Never echo the response: it may hold a secret even when malformed.
        raise AuthError("STS answered AssumeRole without usable credentials") from None
