"""A non-default configuration observed through the signed URL: the row limit, the alias, the
memory and the timeout each change what the deployed system does, not only the template.

Same code on every pull request (local stand-in) and every night (--target aws). The values come
from E2E_CONFIGURED_CONTEXT (tests/e2e/configuration.py, which the template snapshot covers too),
set with `-c key=value` like any deployment; the default deployment's answers are checked
alongside, so a value that is hard-wired somewhere fails one side or the other.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from ml_handler.model import load_model
from ml_handler.service import InferenceService

from client.errors import BadRequestError, ServerError
from tests.e2e.clients import invoker_client
from tests.e2e.configuration import E2E_CONFIGURED_CONTEXT
from tests.e2e.targets import Deployment

MAX_ROWS = int(E2E_CONFIGURED_CONTEXT["maxRows"])
TIMEOUT_SECONDS = int(E2E_CONFIGURED_CONTEXT["timeoutSeconds"])
ALIAS = E2E_CONFIGURED_CONTEXT["aliasName"]
MEMORY_MB = int(E2E_CONFIGURED_CONTEXT["memorySize"])
# The defaults, as the README documents them (not read from infra/config.py: that is under test).
DEFAULT_TIMEOUT_SECONDS = 30
DEFAULT_ALIAS = "Dev"
DEFAULT_MEMORY_MB = 1024


def _batch(samples: list[dict[str, float]], rows: int) -> bytes:
    return json.dumps([samples[i % len(samples)] for i in range(rows)]).encode()


def _invoked_arn_parts(arn: str) -> dict[str, str]:
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    parts = arn.split(":")
    assert parts[:3] == ["arn", "aws", "lambda"], arn
    assert parts[5] == "function", arn
    return {
        "region": parts[3],
        "name": parts[6],
        "qualifier": parts[7] if len(parts) > 7 else "",
    }


@pytest.fixture(scope="module")
def configured_metadata(configured_deployment: Deployment) -> dict[str, Any]:
    with invoker_client(configured_deployment) as client:
        return client.metadata()


@pytest.fixture(scope="module")
def default_metadata(deployment: Deployment) -> dict[str, Any]:
    with invoker_client(deployment) as client:
        return client.metadata()


def test_batch_over_configured_row_limit_gets_handlers_413(
    configured_deployment: Deployment, samples: list[dict[str, float]]
) -> None:
    """GIVEN maxRows 5 WHEN 6 rows are POSTed THEN the handler refuses them: 413 too_many_rows."""
    with invoker_client(configured_deployment) as client, pytest.raises(BadRequestError) as err:
        client.predict(_batch(samples, MAX_ROWS + 1))

    assert err.value.status == 413
    assert err.value.code == "too_many_rows"
    assert f"limit is {MAX_ROWS}" in str(err.value)


def test_batch_at_configured_row_limit_is_answered(
    configured_deployment: Deployment, samples: list[dict[str, float]], bundled_model_path: Path
) -> None:
    body = _batch(samples, MAX_ROWS)
    reference = InferenceService(model=load_model(bundled_model_path), max_rows=MAX_ROWS)
    event = {
        "requestContext": {"http": {"method": "POST"}},
        "headers": {"content-type": "application/json"},
        "body": body.decode(),
    }
    expected = json.loads(reference.handle(event, None)["body"])

    with invoker_client(configured_deployment) as client:
        predictions = client.predict(body)

    assert predictions == expected
    assert len(predictions) == MAX_ROWS


def test_get_reports_configured_row_limit(
    configured_metadata: dict[str, Any], default_metadata: dict[str, Any]
) -> None:
    assert configured_metadata["max_rows"] == MAX_ROWS
    assert default_metadata["max_rows"] == 10_000


def test_url_targets_configured_alias(
    configured_deployment: Deployment,
    configured_metadata: dict[str, Any],
    default_metadata: dict[str, Any],
    deployment: Deployment,
) -> None:
    """GIVEN aliasName Canary THEN the stack says so AND the function, invoked through the URL,
    was invoked as FUNCTION:Canary (the ARN Lambda hands the function), not as another alias,
    a version or $LATEST; the default deployment's URL goes through Dev."""
    assert configured_deployment.outputs["AliasName"] == ALIAS
    invoked = _invoked_arn_parts(configured_metadata["function"]["invoked_function_arn"])
    assert invoked == {
        "region": configured_deployment.region,
        "name": configured_deployment.outputs["FunctionName"],
        "qualifier": ALIAS,
    }

    assert deployment.outputs["AliasName"] == DEFAULT_ALIAS
    default_invoked = _invoked_arn_parts(default_metadata["function"]["invoked_function_arn"])
    assert default_invoked["name"] == deployment.outputs["FunctionName"]
    assert default_invoked["qualifier"] == DEFAULT_ALIAS


def test_function_is_told_configured_memory(
    configured_metadata: dict[str, Any], default_metadata: dict[str, Any]
) -> None:
    assert configured_metadata["function"]["memory_limit_in_mb"] == MEMORY_MB
    assert default_metadata["function"]["memory_limit_in_mb"] == DEFAULT_MEMORY_MB


def test_function_is_told_configured_timeout(
    configured_metadata: dict[str, Any], default_metadata: dict[str, Any]
) -> None:
    """The time left when the handler starts is the timeout minus what came before it."""
    configured_left = configured_metadata["function"]["remaining_time_in_millis"]
    default_left = default_metadata["function"]["remaining_time_in_millis"]

    assert TIMEOUT_SECONDS * 1000 * 0.5 < configured_left <= TIMEOUT_SECONDS * 1000
    assert TIMEOUT_SECONDS * 1000 < default_left <= DEFAULT_TIMEOUT_SECONDS * 1000


def _probe(deployment: Deployment, seconds: float) -> tuple[float, Any]:
    """Ask the probe to run `seconds`; (elapsed seconds, its answer or the client's error)."""
    started = time.monotonic()
    with invoker_client(deployment) as client:
        try:
            answer: Any = client.predict({"seconds": seconds})
        except ServerError as exc:
            answer = exc
    return time.monotonic() - started, answer


def test_invocation_within_configured_timeout_is_answered(
    timeout_probe_deployment: Deployment,
) -> None:
    """The control: the probe answers when it finishes in time, so its 502 below is the timeout's,
    and it was told the configured time too."""
    _, answer = _probe(timeout_probe_deployment, 0.5)

    assert not isinstance(answer, Exception), answer
    assert answer["slept_seconds"] == 0.5
    told = answer["remaining_time_in_millis"]
    assert TIMEOUT_SECONDS * 1000 * 0.5 < told <= TIMEOUT_SECONDS * 1000


def test_invocation_past_configured_timeout_gets_502_at_that_time(
    timeout_probe_deployment: Deployment,
) -> None:
    """GIVEN timeoutSeconds 3 WHEN the function would run 40 s THEN the URL answers 502 after about
    3 s: not after the default's 30 s, and not with the 40 s answer."""
    elapsed, answer = _probe(timeout_probe_deployment, 40)

    assert isinstance(answer, ServerError), answer
    assert answer.status == 502
    assert TIMEOUT_SECONDS * 0.9 <= elapsed < TIMEOUT_SECONDS + 5, elapsed
