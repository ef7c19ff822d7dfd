"""Typed stack configuration, built once in app.py from CDK context and passed down."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

HANDLER_DIR = Path(__file__).resolve().parent.parent / "handler"
ORIGINAL_FUNCTION_NAME = "ML-XGBoost"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")


class Architecture(str, Enum):
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
        if not _NAME.match(self.stack_name):
            raise ConfigError(f"stackName {self.stack_name!r} is not a valid stack name")
        if self.function_name is not None and not re.match(
            r"^[A-Za-z0-9_-]{1,64}$", self.function_name
        ):
            raise ConfigError(f"functionName {self.function_name!r} is not a valid Lambda name")
        if not 128 <= self.memory_size <= 10240:
            raise ConfigError(f"memorySize must be 128..10240 MB, got {self.memory_size}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ConfigError(f"timeout must be 1..900 s, got {self.timeout_seconds}")
        if self.max_rows < 1:
            raise ConfigError(f"maxRows must be positive, got {self.max_rows}")
        for arn in self.invoker_principal_arns:
            if not _PRINCIPAL_ARN.match(arn):
                raise ConfigError(f"invokerPrincipals: {arn!r} is not an IAM role or user ARN")

    @classmethod
    def from_context(cls, get: Callable[[str], object]) -> StackConfig:
        """Build from CDK context (`-c key=value` or cdk.json); unset keys keep their defaults."""
        values: dict[str, object] = {}
        if (name := get("stackName")) is not None:
            values["stack_name"] = str(name)
        function_name = get("functionName")
        if function_name is not None and str(function_name) != "":
            values["function_name"] = str(function_name)
        if (alias := get("aliasName")) is not None:
            values["alias_name"] = str(alias)
        if (arch := get("architecture")) is not None:
            try:
                values["architecture"] = Architecture(str(arch))
            except ValueError:
                raise ConfigError(f"architecture must be x86_64 or arm64, got {arch!r}") from None
        for key, attr in (
            ("memorySize", "memory_size"),
            ("timeoutSeconds", "timeout_seconds"),
            ("logRetentionDays", "log_retention_days"),
            ("maxRows", "max_rows"),
        ):
            if (raw := get(key)) is not None:
                try:
                    values[attr] = int(str(raw))
                except ValueError:
                    raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
        if (principals := get("invokerPrincipals")) is not None:
            items = principals if isinstance(principals, list) else str(principals).split(",")
            values["invoker_principal_arns"] = tuple(
                str(p).strip() for p in items if str(p).strip()
            )
        if (tags := get("tags")) is not None:
            if isinstance(tags, dict):
                values["tags"] = {str(k): str(v) for k, v in tags.items()}
            else:
                pairs = [p.split("=", 1) for p in str(tags).split(",") if p]
                values["tags"] = {k: v for k, v in pairs}
        return cls(**values)  # type: ignore[arg-type]
