"""How often and how long to wait before trying a failed call again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_ATTEMPTS: Final = 3
DEFAULT_BASE_DELAY_SECONDS: Final = 0.25
DEFAULT_MAX_DELAY_SECONDS: Final = 8.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """`max_attempts` counts every attempt, the first one included (1 = never retry)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay_seconds: float = DEFAULT_BASE_DELAY_SECONDS
    max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("retry delays must not be negative")

    @classmethod
    def with_retries(cls, retries: int) -> RetryPolicy:
        """A policy that makes up to `retries` further attempts after the first."""
        return cls(max_attempts=retries + 1)

    def delay(
        self, retry_number: int, random_fraction: float, *, retry_after: float | None = None
    ) -> float:
        """Seconds to wait before retry number `retry_number` (1 = the first retry).

        Full jitter: uniform in [0, min(cap, base * 2**(n-1))], so that many clients throttled
        together do not come back together. `random_fraction` is in [0, 1). A server's
        Retry-After is honoured as a lower bound, within the cap.
        """
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (retry_number - 1))
        delay = ceiling * random_fraction
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay_seconds))
        return delay
