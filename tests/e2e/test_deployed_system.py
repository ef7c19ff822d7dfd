"""The deployed system end to end. The same tests run against the local stand-in on every pull
request and against AWS every night (--target aws)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from ml_handler.model import load_model
from ml_handler.service import InferenceService

from client.errors import BadRequestError
from tests.e2e.clients import invoker_client, refused_by_url
from tests.e2e.targets import Deployment

SIX_MB = 6 * 1024 * 1024


def _event(method: str, body: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "requestContext": {"http": {"method": method}, "requestId": "e2e-reference"},
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


@pytest.fixture(scope="module")
def reference_handler(bundled_model_path: Path) -> InferenceService:
    """The handler code run in-process on the same model: what the deployed one must answer."""
    return InferenceService(model=load_model(bundled_model_path), max_rows=10_000)


def _reference(handler: InferenceService, method: str, body: str | None = None) -> Any:
    response = handler.handle(_event(method, body), None)
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def test_signed_post_returns_the_handlers_predictions(
    deployment: Deployment, samples: list[dict[str, float]], reference_handler: InferenceService
) -> None:
    """GIVEN the deployed app WHEN the real client assumes the invoker role and POSTs the samples
    signed THEN it gets the predictions the handler code gives locally for the same model."""
    expected = _reference(reference_handler, "POST", json.dumps(samples))

    with invoker_client(deployment) as client:
        predictions = client.predict(json.dumps(samples).encode())

    assert predictions == expected
    assert len(predictions) == len(samples)


def test_signed_get_returns_the_bundled_models_schema(
    deployment: Deployment, bundled_model_path: Path
) -> None:
    with invoker_client(deployment) as client:
        metadata = client.metadata()

    model = load_model(bundled_model_path)
    assert [f["name"] for f in metadata["features"]] == list(model.feature_names)
    assert metadata["model_sha256"] == hashlib.sha256(bundled_model_path.read_bytes()).hexdigest()
    assert metadata["max_rows"] == 10_000


def test_unsigned_request_is_refused_with_403(
    deployment: Deployment, samples: list[dict[str, float]]
) -> None:
    response = requests.post(
        deployment.endpoint_url,
        data=json.dumps(samples),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 403
    assert "Message" in response.json()


def test_role_without_the_grant_is_refused_with_403(
    deployment: Deployment, samples: list[dict[str, float]]
) -> None:
    """GIVEN a role of the account without the URL grant WHEN it POSTs signed THEN the URL
    answers 403. STS may still refuse the brand-new role now and then (AccessDenied from a
    replica IAM has not reached: AuthError without a status): that is retried until the URL
    itself answers, so the 403 asserted is the URL's, never STS's."""
    role_arn = deployment.create_ungranted_role()

    def post() -> Any:
        with invoker_client(deployment, role_arn=role_arn) as client:
            return client.predict(json.dumps(samples).encode())

    refusal = refused_by_url(post, timeout_seconds=120)

    assert refusal.status == 403


def test_malformed_body_gets_the_handlers_400_through(deployment: Deployment) -> None:
    with invoker_client(deployment) as client, pytest.raises(BadRequestError) as err:
        client.predict(b'[{"alcohol": 9.4,')

    assert err.value.status == 400
    assert err.value.code == "invalid_json"


def _padded_batch(samples: list[dict[str, float]], *, rows: int, size: int) -> bytes:
    body = json.dumps([samples[i % len(samples)] for i in range(rows)]).encode()
    assert len(body) <= size
    # Whitespace is valid JSON: the body grows to `size` bytes without changing the batch.
    return body[:-1] + b" " * (size - len(body)) + b"]"


def test_batch_just_under_the_payload_limit_is_answered(
    deployment: Deployment, samples: list[dict[str, float]], reference_handler: InferenceService
) -> None:
    """A 5.5 MB request (the row limit's 10,000 rows, padded) fits Lambda's 6 MB payload limit."""
    body = _padded_batch(samples, rows=10_000, size=int(5.5 * 1024 * 1024))
    expected = _reference(reference_handler, "POST", json.dumps(samples))

    with invoker_client(deployment) as client:
        predictions = client.predict(body)

    assert len(predictions) == 10_000
    assert predictions[: len(samples)] == expected
    assert predictions[-1] == expected[(10_000 - 1) % len(samples)]


def test_batch_over_the_payload_limit_is_refused_with_413(
    deployment: Deployment, samples: list[dict[str, float]]
) -> None:
    body = _padded_batch(samples, rows=100, size=SIX_MB + 64 * 1024)

    with invoker_client(deployment) as client, pytest.raises(BadRequestError) as err:
        client.predict(body)

    assert err.value.status == 413
