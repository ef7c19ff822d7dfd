"""Typed stack configuration, built once in app.py from CDK context and passed down."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

HANDLER_DIR = Path(__file__).resolve().parent.parent / "handler"
ORIGINAL_FUNCTION_NAME = "ML-XGBoost"
# The retention periods CloudWatch Logs accepts, up to a year (inference logs need no more).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365)

# Used with fullmatch: `$` in match() also accepts a trailing newline ("Dev\n" would pass), and
# re.ASCII keeps \d and \w from accepting non-ASCII digits and letters where AWS does not.
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A purely numeric alias name would be read as a version number.
_ALIAS_NAME = re.compile(r"(?![0-9]+\Z)[A-Za-z0-9_-]{1,128}")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+", re.ASCII)
# Tags may be Unicode letters, digits and spaces; the aws: prefix is reserved in any case.
_TAG_KEY = re.compile(r"(?![Aa][Ww][Ss]:)[\w.:/=+@ -]{1,128}")
_TAG_VALUE = re.compile(r"[\w.:/=+@ -]{0,256}")


class Architecture(StrEnum):
    X86_64 = "x86_64"
    ARM64 = "arm64"


class ConfigError(ValueError):
    """A context value that cannot produce a valid stack."""


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    stack_name: str = "CdkMlLambda"
    # None lets CloudFormation generate the name, so copies of the app never collide.
    function_name: str | None = None
    alias_name: str = "Dev"
    architecture: Architecture = Architecture.X86_64
    memory_size: int = 1024
    timeout_seconds: int = 30
    log_retention_days: int = 30
    max_rows: int = 10_000
    # Empty: the account principal (any identity in this account allowed by its own policies).
    invoker_principal_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    handler_dir: Path = HANDLER_DIR

    def __post_init__(self) -> None:
        if not _STACK_NAME.fullmatch(self.stack_name):
            raise ConfigError(
                f"stackName {self.stack_name!r} is not a valid stack name "
                "(a letter, then up to 127 letters, digits or hyphens)"
            )
        if self.function_name is not None and not _FUNCTION_NAME.fullmatch(self.function_name):
            raise ConfigError(
                f"functionName {self.function_name!r} is not a valid Lambda name "
                "(1-64 letters, digits, hyphens or underscores)"
            )
        if not _ALIAS_NAME.fullmatch(self.alias_name):
            raise ConfigError(
                f"aliasName {self.alias_name!r} is not a valid alias name "
                "(1-128 letters, digits, hyphens or underscores, not only digits)"
            )
        if not 128 <= self.memory_size <= 10240:
            raise ConfigError(f"memorySize must be 128..10240 MB, got {self.memory_size}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ConfigError(f"timeoutSeconds must be 1..900 s, got {self.timeout_seconds}")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ConfigError(
                f"logRetentionDays must be one of {list(LOG_RETENTION_DAYS)}, "
                f"got {self.log_retention_days}"
            )
        if self.max_rows < 1:
            raise ConfigError(f"maxRows must be positive, got {self.max_rows}")
        for arn in self.invoker_principal_arns:
            if not _PRINCIPAL_ARN.fullmatch(arn):
                raise ConfigError(
                    f"invokerPrincipals: {arn!r} is not an IAM role or user ARN "
                    "(arn:aws:iam::123456789012:role/NAME or :user/NAME)"
                )
        for key, value in self.tags.items():
            if not _TAG_KEY.fullmatch(key):
                raise ConfigError(f"tags: {key!r} is not a valid tag key")
            if key == "__proto__":
                # A valid AWS tag key, but jsii refuses it as a map key (found by hypothesis).
                raise ConfigError("tags: '__proto__' cannot be passed through the CDK as a tag key")
            if not _TAG_VALUE.fullmatch(value):
                raise ConfigError(f"tags: the value of {key!r} is not a valid tag value")

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StackConfig:
        """Build from CDK context (`-c key=value` or cdk.json); unset keys keep their defaults.

        `-c` values arrive as strings, cdk.json values as JSON types: both are accepted.
        """
        values: dict[str, Any] = {}
        if (name := get("stackName")) is not None:
            values["stack_name"] = _text("stackName", name)
        function_name = get("functionName")
        if function_name is not None and _text("functionName", function_name) != "":
            values["function_name"] = function_name
        if (alias := get("aliasName")) is not None:
            values["alias_name"] = _text("aliasName", alias)
        if (arch := get("architecture")) is not None:
            # Outside the try: a ConfigError is a ValueError, and a non-string says so itself.
            text = _text("architecture", arch)
            try:
                values["architecture"] = Architecture(text)
            except ValueError:
                raise ConfigError(f"architecture must be x86_64 or arm64, got {arch!r}") from None
        for key, attr in (
            ("memorySize", "memory_size"),
            ("timeoutSeconds", "timeout_seconds"),
            ("logRetentionDays", "log_retention_days"),
            ("maxRows", "max_rows"),
        ):
            if (raw := get(key)) is not None:
                values[attr] = _integer(key, raw)
        if (principals := get("invokerPrincipals")) is not None:
            items = principals if isinstance(principals, list) else str(principals).split(",")
            values["invoker_principal_arns"] = tuple(
                str(p).strip() for p in items if str(p).strip()
            )
        if (tags := get("tags")) is not None:
            values["tags"] = _tags(tags)
        return cls(**values)


def _text(key: str, raw: object) -> str:
    # `-c` values are always strings; in cdk.json, `"aliasName": true` would become alias "True".
    if not isinstance(raw, str):
        raise ConfigError(f"{key} must be a string, got {raw!r}")
    return raw


def _integer(key: str, raw: object) -> int:
    # bool is an int in Python; `-c memorySize=true` is a mistake, not 1 MB.
    if isinstance(raw, bool):
        raise ConfigError(f"{key} must be an integer, got {raw!r}")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None


def _tags(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):
        # An integer is a fair tag value in cdk.json; null or true would arrive as "None" or "True".
        wrong = [k for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, str | int)]
        if wrong:
            raise ConfigError(f"tags: the value of {wrong[0]!r} must be a string or an integer")
        return {str(k): str(v) for k, v in raw.items()}
    tags: dict[str, str] = {}
    for pair in (p.strip() for p in str(raw).split(",")):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"tags must be key=value pairs separated by commas, got {pair!r}")
        tags[key.strip()] = value.strip()
    return tags
