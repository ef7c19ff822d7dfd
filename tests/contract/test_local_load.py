"""The local Function URL under concurrent signed clients: no errors, no crossed answers.

Its own LocalSystem and deployment, created and closed within the module (moto's `mock_aws`,
used by other modules, resets the in-process backends the deployment lives in).
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from ml_handler.config import DEFAULT_MAX_ROWS
from ml_handler.logs import RequestLogger
from ml_handler.model import load_model
from ml_handler.service import InferenceService
from requests_aws4auth import AWS4Auth

from localurl.deploy import DeployedStack, LocalSystem
from localurl.synth import SynthesizedStack

CLIENTS = 8
REQUESTS_PER_CLIENT = 25
MAX_ROWS_PER_REQUEST = 12
# The whole load must finish in this time; on 2 cores it takes a few seconds.
DEADLINE_SECONDS = 45.0
REQUEST_TIMEOUT = 20.0


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str = field(repr=False)


@dataclass
class Outcome:
    status: int | None = None
    body: bytes = b""
    request_id: str = ""
    error: str | None = None


@pytest.fixture(scope="module")
def deployed(system: LocalSystem, stand_in_assembly: SynthesizedStack) -> DeployedStack:
    return system.deploy(stand_in_assembly)


@pytest.fixture(scope="module")
def keys(system: LocalSystem, deployed: DeployedStack) -> Keys:
    answer = system.moto.client("sts").assume_role(
        RoleArn=deployed.role_arn, RoleSessionName="local-load-contract"
    )
    credentials = answer["Credentials"]
    return Keys(
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )


@pytest.fixture(scope="module")
def reference(deployed: DeployedStack, bundled_model_path: Path) -> InferenceService:
    """The handler in-process, with the model and row limit the deployed function has."""
    return InferenceService(
        model=load_model(bundled_model_path),
        max_rows=int(deployed.spec.environment.get("MAX_ROWS", DEFAULT_MAX_ROWS)),
        logger=RequestLogger(io.StringIO()),
    )


def make_batch(rng: random.Random, samples: list[dict[str, float]]) -> bytes:
    """1..MAX_ROWS_PER_REQUEST rows, each a sample with its measurements scaled a little, so
    that (almost) every request has predictions of its own and a crossed answer shows."""
    rows = []
    for _ in range(rng.randint(1, MAX_ROWS_PER_REQUEST)):
        base = rng.choice(samples)
        rows.append({name: jitter(rng, name, value) for name, value in base.items()})
    return json.dumps(rows).encode()


def jitter(rng: random.Random, name: str, value: float) -> float:
    return value if name.startswith("color_") else round(value * rng.uniform(0.8, 1.2), 4)


def expected_body(service: InferenceService, body: bytes) -> bytes:
    event = {
        "version": "2.0",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST"}, "requestId": "reference"},
        "body": body.decode(),
        "isBase64Encoded": False,
    }
    response = service.handle(event, None)
    assert response["statusCode"] == 200, response["body"]
    return str(response["body"]).encode()


def client(
    url: str, keys: Keys, region: str, bodies: list[bytes], outcomes: list[Outcome], start: object
) -> None:
    """One caller: its own keep-alive session and signer, its requests one after another."""
    auth = AWS4Auth(
        keys.access_key, keys.secret_key, region, "lambda", session_token=keys.session_token
    )
    assert isinstance(start, threading.Barrier)
    with requests.Session() as session:
        start.wait(timeout=REQUEST_TIMEOUT)
        for body, outcome in zip(bodies, outcomes, strict=True):
            try:
                response = session.post(
                    url,
                    data=body,
                    headers={"content-type": "application/json"},
                    auth=auth,
                    timeout=REQUEST_TIMEOUT,
                )
                outcome.status = response.status_code
                outcome.body = response.content
                outcome.request_id = response.headers.get("x-amzn-requestid", "")
            except requests.RequestException as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"


def test_concurrent_signed_clients_all_get_their_own_predictions(
    system: LocalSystem,
    deployed: DeployedStack,
    keys: Keys,
    reference: InferenceService,
    samples: list[dict[str, float]],
) -> None:
    """GIVEN 8 clients, each with its own keep-alive session, sending 25 signed requests of
    random batches at once WHEN all are answered (within a deadline) THEN zero errors, every
    body is exactly the in-process handler's answer to that request, request ids are unique,
    and the function logged each request exactly once."""
    rng = random.Random(20240611)
    bodies = [
        [make_batch(rng, samples) for _ in range(REQUESTS_PER_CLIENT)] for _ in range(CLIENTS)
    ]
    expected = [[expected_body(reference, body) for body in mine] for mine in bodies]
    distinct = {body for mine in expected for body in mine}
    assert len(distinct) > 0.9 * CLIENTS * REQUESTS_PER_CLIENT  # a mix-up would show
    outcomes = [[Outcome() for _ in mine] for mine in bodies]
    start = threading.Barrier(CLIENTS)
    threads = [
        threading.Thread(
            target=client,
            args=(deployed.endpoint_url, keys, system.region, bodies[i], outcomes[i], start),
            name=f"load-client-{i}",
            daemon=True,
        )
        for i in range(CLIENTS)
    ]

    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, DEADLINE_SECONDS - (time.monotonic() - started)))
    elapsed = time.monotonic() - started

    assert not [t.name for t in threads if t.is_alive()], f"clients still running at {elapsed:.1f}s"
    flat = [
        (outcome, body)
        for mine, theirs in zip(outcomes, expected, strict=True)
        for outcome, body in zip(mine, theirs, strict=True)
    ]
    assert len(flat) == CLIENTS * REQUESTS_PER_CLIENT
    errors = [o.error or f"{o.status}: {o.body[:200]!r}" for o, _ in flat if o.status != 200]
    assert errors == []
    wrong = [i for i, (outcome, body) in enumerate(flat) if outcome.body != body]
    assert wrong == []
    request_ids = [outcome.request_id for outcome, _ in flat]
    assert len(set(request_ids)) == len(request_ids)
    assert all(request_ids)

    logged: dict[str, int] = {}
    for line in deployed.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == "request":
            rid = str(record.get("request_id"))
            logged[rid] = logged.get(rid, 0) + 1
    assert [rid for rid in request_ids if logged.get(rid) != 1] == []
