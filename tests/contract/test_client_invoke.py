"""HTTP behaviour of InferenceClient against real servers on 127.0.0.1: answers, errors, retries,
timeouts. Credentials are fixed here; STS and signing have their own test files."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.errors import (
    AuthError,
    BadRequestError,
    ConfigurationError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    ServerError,
)
from client.invoke import InferenceClient
from client.retry import RetryPolicy
from tests.contract.test_client_support import (
    REGION,
    RecordingSleep,
    Reply,
    ScriptedServer,
    StaticCredentials,
    refused_url,
)

PREDICTIONS = [6.573914, 4.869721]
OK = Reply.json(200, PREDICTIONS)


def make_client(
    url: str,
    *,
    max_attempts: int = 3,
    timeout: float = 5.0,
    sleep: RecordingSleep | None = None,
    credentials: StaticCredentials | None = None,
    random: float = 0.5,
    **options: Any,
) -> InferenceClient:
    return InferenceClient(
        url,
        credentials=credentials or StaticCredentials(),
        region=REGION,
        timeout=timeout,
        retry=RetryPolicy(max_attempts=max_attempts, base_delay_seconds=0.25, max_delay_seconds=2),
        sleep=sleep or RecordingSleep(),
        random=lambda: random,
        **options,
    )


def test_predict_returns_decoded_json_answer() -> None:
    with ScriptedServer(OK) as server:
        assert make_client(server.url).predict(b"[]") == PREDICTIONS


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (b'[{"a": 1}]\n', b'[{"a": 1}]\n'),
        (bytearray(b"[[1,2]]"), b"[[1,2]]"),
        ('[{"caf\u00e9": 1}]', '[{"caf\u00e9": 1}]'.encode()),
        ([{"alcohol": 11.4, "pH": None}], b'[{"alcohol":11.4,"pH":null}]'),
    ],
)
def test_predict_sends_body_bytes_unchanged(body: Any, sent: bytes) -> None:
    """bytes as given, str as UTF-8, objects as compact JSON; Content-Type as configured."""
    with ScriptedServer(OK) as server:
        make_client(server.url).predict(body)

    (request,) = server.requests
    assert request.method == "POST"
    assert request.body == sent
    assert request.header("Content-Type") == "application/json"


def test_content_type_is_configurable() -> None:
    with ScriptedServer(OK) as server:
        make_client(server.url, content_type="text/csv").predict(b"1,2\n")

    assert server.requests[0].header("Content-Type") == "text/csv"


def test_predict_refuses_non_json_serialisable_body() -> None:
    with ScriptedServer(OK) as server, pytest.raises(ConfigurationError, match="JSON"):
        make_client(server.url).predict([float("nan")])

    assert server.requests == []


def test_metadata_sends_get_and_returns_the_object() -> None:
    schema = {"features": [{"name": "alcohol", "type": "float"}], "max_rows": 10000}
    with ScriptedServer(Reply.json(200, schema)) as server:
        assert make_client(server.url).metadata() == schema

    (request,) = server.requests
    assert (request.method, request.body) == ("GET", b"")
    assert request.header("Content-Type") is None


def test_metadata_rejects_an_answer_that_is_not_an_object() -> None:
    with ScriptedServer(OK) as server, pytest.raises(ServerError, match="not a JSON object"):
        make_client(server.url).metadata()


def test_answer_that_is_not_json_raises_server_error() -> None:
    with (
        ScriptedServer(Reply(200, b"<html>oops</html>")) as server,
        pytest.raises(ServerError, match="not JSON") as raised,
    ):
        make_client(server.url).predict(b"[]")

    assert raised.value.status == 200


def test_503_twice_then_200_succeeds_after_three_requests() -> None:
    """GIVEN a server that answers 503, 503, then 200
    WHEN the client predicts with 3 attempts allowed
    THEN it succeeds with exactly 3 requests, backing off with full jitter in between."""
    sleep = RecordingSleep()
    unavailable = Reply.json(503, {"Message": "Service Unavailable"})
    with ScriptedServer(unavailable, unavailable, OK) as server:
        result = make_client(server.url, sleep=sleep, random=0.5).predict(b"[]")

    assert result == PREDICTIONS
    assert len(server.requests) == 3
    # random 0.5 of the exponential ceilings 0.25 s and 0.5 s.
    assert sleep.delays == [0.125, 0.25]


def test_each_attempt_is_signed_with_current_credentials() -> None:
    credentials = StaticCredentials()
    unavailable = Reply.json(503, {"Message": "Service Unavailable"})
    with ScriptedServer(unavailable, OK) as server:
        make_client(server.url, credentials=credentials).predict(b"[]")

    assert credentials.calls == 2
    assert all(r.header("Authorization") for r in server.requests)


def test_429_is_retried() -> None:
    throttled = Reply.json(429, {"Message": "Rate Exceeded."})
    with ScriptedServer(throttled, OK) as server:
        assert make_client(server.url).predict(b"[]") == PREDICTIONS

    assert len(server.requests) == 2


def test_retry_after_is_a_lower_bound_on_the_backoff() -> None:
    sleep = RecordingSleep()
    throttled = Reply.json(429, {"Message": "Rate Exceeded."}, headers=(("Retry-After", "1"),))
    with ScriptedServer(throttled, OK) as server:
        make_client(server.url, sleep=sleep, random=0.0).predict(b"[]")

    assert sleep.delays == [1.0]


@pytest.mark.parametrize("max_attempts", [1, 2, 4])
def test_persistent_500_raises_server_error_after_exactly_max_attempts(max_attempts: int) -> None:
    sleep = RecordingSleep()
    failing = Reply.error(500, "internal_error", "boom (request id 42)")
    with ScriptedServer(failing) as server, pytest.raises(ServerError) as raised:
        make_client(server.url, max_attempts=max_attempts, sleep=sleep).predict(b"[]")

    assert len(server.requests) == max_attempts
    assert len(sleep.delays) == max_attempts - 1
    assert raised.value.status == 500
    assert "boom (request id 42)" in str(raised.value)


def test_persistent_429_raises_server_error_once_retries_run_out() -> None:
    with (
        ScriptedServer(Reply.json(429, {"Message": "Rate Exceeded."})) as server,
        pytest.raises(ServerError, match="throttled") as raised,
    ):
        make_client(server.url, max_attempts=2).predict(b"[]")

    assert raised.value.status == 429
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "missing_feature", "row 0: missing feature 'alcohol'"),
        (404, "not_found", "no such path"),
        (405, "method_not_allowed", "use GET or POST"),
        (413, "too_many_rows", "10001 rows; at most 10000"),
        (415, "unsupported_media_type", "send application/json"),
    ],
)
def test_client_errors_are_not_retried_and_carry_the_server_message(
    status: int, code: str, message: str
) -> None:
    sleep = RecordingSleep()
    with (
        ScriptedServer(Reply.error(status, code, message)) as server,
        pytest.raises(BadRequestError) as raised,
    ):
        make_client(server.url, sleep=sleep).predict(b"[]")

    assert len(server.requests) == 1
    assert sleep.delays == []
    assert (raised.value.status, raised.value.code, raised.value.message) == (status, code, message)
    assert message in str(raised.value)


def test_403_raises_auth_error_and_is_not_retried() -> None:
    with (
        ScriptedServer(Reply.json(403, {"Message": "Forbidden"})) as server,
        pytest.raises(AuthError) as raised,
    ):
        make_client(server.url).predict(b"[]")

    assert len(server.requests) == 1
    assert raised.value.status == 403
    assert "Forbidden" in str(raised.value)


def test_error_without_json_body_still_gives_a_one_line_message() -> None:
    with (
        ScriptedServer(Reply(400, b"bad\n request\n", headers=())) as server,
        pytest.raises(BadRequestError) as raised,
    ):
        make_client(server.url).predict(b"[]")

    assert raised.value.message == "bad request"


def test_slow_server_raises_timeout_within_the_timeout() -> None:
    """GIVEN a server that takes 3 s to answer
    WHEN the client's timeout is 0.3 s with 2 attempts
    THEN both attempts time out and the client gives up long before the server answers."""
    started = time.monotonic()
    with ScriptedServer(Reply.json(200, PREDICTIONS, delay_seconds=3)) as server:
        with pytest.raises(EndpointTimeoutError, match=r"within 0\.3 s"):
            make_client(server.url, timeout=0.3, max_attempts=2).predict(b"[]")
        elapsed = time.monotonic() - started

    assert len(server.requests) == 2
    assert elapsed < 2.0


def test_refused_connection_is_retried_then_raises_unreachable() -> None:
    sleep = RecordingSleep()
    with pytest.raises(EndpointUnreachableError, match="Connection refused") as raised:
        make_client(refused_url(), max_attempts=3, sleep=sleep).predict(b"[]")

    assert len(sleep.delays) == 2
    assert raised.value.status is None
    assert "\n" not in str(raised.value)


def test_redirect_is_not_followed() -> None:
    """A redirect would carry this host's signature and token to another host."""
    with ScriptedServer(OK) as elsewhere:
        moved = Reply(302, b"", headers=(("Location", elsewhere.url),))
        with ScriptedServer(moved) as server, pytest.raises(ServerError, match="302"):
            make_client(server.url).predict(b"[]")

    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "http://10.0.0.1/",
        "ftp://127.0.0.1/",
        "https:///no-host",
        "https://user:pw@abc.lambda-url.eu-west-1.on.aws/",
    ],
)
def test_unsafe_or_malformed_endpoint_urls_are_refused(url: str) -> None:
    """Plain http would expose the token and signature: only loopback may use it."""
    with pytest.raises(ConfigurationError):
        make_client(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost:9/", "http://[::1]:9/"])
def test_plain_http_is_allowed_for_loopback(url: str) -> None:
    assert make_client(url).endpoint_url == url


@given(
    retry_number=st.integers(min_value=1, max_value=30),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    base=st.floats(min_value=0, max_value=5),
    cap=st.floats(min_value=0, max_value=60),
)
def test_backoff_is_full_jitter_below_the_capped_exponential(
    retry_number: int, fraction: float, base: float, cap: float
) -> None:
    policy = RetryPolicy(base_delay_seconds=base, max_delay_seconds=cap)

    delay = policy.delay(retry_number, fraction)

    ceiling = min(cap, base * 2 ** (retry_number - 1))
    assert 0 <= delay <= ceiling
    assert delay == pytest.approx(ceiling * fraction)


def test_retry_policy_from_retries_counts_the_first_attempt() -> None:
    assert RetryPolicy.with_retries(0).max_attempts == 1
    assert RetryPolicy.with_retries(2).max_attempts == 3
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
