"""Clients for the deployed system, made the way a real caller makes them."""

from __future__ import annotations

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
