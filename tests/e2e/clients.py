"""Clients for the deployed system, made the way a real caller makes them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from client.errors import AuthError
from client.invoke import InferenceClient
from client.retry import RetryPolicy
from tests.e2e.targets import Deployment


def invoker_client(deployment: Deployment, *, role_arn: str | None = None) -> InferenceClient:
    return InferenceClient.for_role(
        endpoint_url=deployment.endpoint_url,
        role_arn=role_arn or deployment.role_arn,
        region=deployment.region,
        sts_client=deployment.sts_client(),
        session_name="cdk-ml-lambda-e2e",
        # Fail fast in tests: a retried 5xx would hide a flaky system behind a slow green.
        retry=RetryPolicy(max_attempts=1),
    )


def refused_by_url(
    call: Callable[[], Any],
    *,
    timeout_seconds: float,
    poll_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AuthError:
    """The AuthError of `call` once the URL itself refuses (an HTTP status): STS refusals
    (status None, eventual consistency of a new role) are retried until `timeout_seconds`.
    A call that succeeds is an error: the refusal is what is being proven."""
    deadline = clock() + timeout_seconds
    while True:
        try:
            result = call()
        except AuthError as exc:
            if exc.status is not None or clock() > deadline:
                return exc
        else:
            raise AssertionError(f"expected a refusal, got an answer: {result!r}"[:500])
        sleep(poll_seconds)
