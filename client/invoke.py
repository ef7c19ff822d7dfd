"""The inference client: sign each request, send it, retry what is worth retrying, map answers.

client = InferenceClient.for_role(endpoint_url=url, role_arn=arn)
predictions = client.predict(b'[{"alcohol": 11.4, ...}]')
"""

from __future__ import annotations

import json
import logging
import random as random_module
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

import boto3
import requests

from .credentials import (
    DEFAULT_DURATION_SECONDS,
    DEFAULT_REFRESH_MARGIN_SECONDS,
    AssumeRoleCredentials,
    Clock,
    CredentialsProvider,
    TemporaryCredentials,
    utc_now,
)
from .endpoint import resolve_region, validate_endpoint_url
from .errors import (
    AuthError,
    BadRequestError,
    ConfigurationError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    InferenceClientError,
    ServerError,
)
from .outputs import StackOutputs
from .redaction import redact
from .retry import RetryPolicy
from .signing import LAMBDA_SERVICE, sigv4_auth

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS: Final = 30.0
DEFAULT_CONTENT_TYPE: Final = "application/json"
USER_AGENT: Final = "cdk-ml-lambda-client/0.1"
THROTTLED: Final = 429
FORBIDDEN: Final = 403
_MAX_MESSAGE_CHARS: Final = 500


class InferenceClient:
    """Calls one Function URL. Holds one HTTP session and one credentials provider, so a single
    client serves many calls, reusing connections and refreshing credentials as needed.

    `sleep` and `random` are the backoff's clock and dice; tests replace them.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        credentials: CredentialsProvider,
        region: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
        http_session: requests.Session | None = None,
        service: str = LAMBDA_SERVICE,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        self.endpoint_url = validate_endpoint_url(endpoint_url)
        self.region = region
        self.service = service
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.content_type = content_type
        self._credentials = credentials
        self._owns_http_session = http_session is None
        self._http = http_session or requests.Session()
        self._sleep = sleep
        self._random = random

    @classmethod
    def for_role(
        cls,
        *,
        endpoint_url: str,
        role_arn: str,
        region: str | None = None,
        sts_client: Any = None,  # a boto3 client: untyped here
        boto3_session: boto3.Session | None = None,
        sts_endpoint_url: str | None = None,
        session_name: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        clock: Clock = utc_now,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
        http_session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> InferenceClient:
        """A client that assumes `role_arn` (STS in the same region) and signs with its keys.

        `region` defaults to the one in the URL's host name.
        """
        signing_region = resolve_region(explicit=region, endpoint_url=endpoint_url)
        credentials = AssumeRoleCredentials(
            role_arn,
            sts_client=sts_client,
            boto3_session=boto3_session,
            region=signing_region,
            sts_endpoint_url=sts_endpoint_url,
            session_name=session_name,
            duration_seconds=duration_seconds,
            refresh_margin_seconds=refresh_margin_seconds,
            clock=clock,
        )
        return cls(
            endpoint_url,
            credentials=credentials,
            region=signing_region,
            timeout=timeout,
            retry=retry,
            content_type=content_type,
            http_session=http_session,
            sleep=sleep,
            random=random,
        )

    @classmethod
    def from_outputs(
        cls,
        outputs: StackOutputs,
        *,
        region: str | None = None,
        **options: Any,
    ) -> InferenceClient:
        """`for_role` with the stack's EndpointUrl, fnUrlRoleArn and (as a fallback) Region."""
        signing_region = resolve_region(
            explicit=region, endpoint_url=outputs.endpoint_url, fallback=outputs.region
        )
        return cls.for_role(
            endpoint_url=outputs.endpoint_url,
            role_arn=outputs.role_arn,
            region=signing_region,
            **options,
        )

    def __repr__(self) -> str:
        return (
            f"InferenceClient(endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"credentials={self._credentials!r})"
        )

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http_session:
            self._http.close()

    def predict(self, body: bytes | object) -> object:
        """POST `body` and return the decoded JSON answer (one prediction per row).

        bytes (and str, as UTF-8) are sent exactly as given; anything else is sent as JSON.
        """
        return self._call("POST", encode_body(body))

    def metadata(self) -> dict[str, Any]:
        """GET the model's schema: feature names and types, model hash, versions, row limit."""
        answer = self._call("GET", None)
        if not isinstance(answer, dict):
            raise ServerError(f"metadata answer is not a JSON object but {type(answer).__name__}")
        return answer

    def _call(self, method: str, body: bytes | None) -> object:
        attempts = self.retry.max_attempts
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = self._send_once(method, body)
            except EndpointUnreachableError as exc:
                failure: InferenceClientError = exc
            else:
                if response.status_code < 300:
                    return _decode_json(response)
                failure = _failure_for(response)
                if not _is_retryable(response.status_code):
                    raise failure
                retry_after = _retry_after_seconds(response)
            if attempt == attempts:
                raise failure
            delay = self.retry.delay(attempt, self._random(), retry_after=retry_after)
            logger.warning(
                "%s %s failed (%s); retry %d of %d in %.2f s",
                method,
                self.endpoint_url,
                failure,
                attempt,
                attempts - 1,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _send_once(self, method: str, body: bytes | None) -> requests.Response:
        credentials = self._credentials.get()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = self.content_type
        try:
            response = self._http.request(
                method,
                self.endpoint_url,
                data=body,
                headers=headers,
                auth=sigv4_auth(credentials, self.region, self.service),
                timeout=self.timeout,
                # A redirect would carry a signature for this host to another one.
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            # Not retried: a certificate problem does not go away by itself.
            raise ServerError(
                f"TLS failure talking to {self.endpoint_url}: {_reason(exc)}"
            ) from None
        except requests.exceptions.Timeout:
            raise EndpointTimeoutError(
                f"no answer from {self.endpoint_url} within {self.timeout:g} s"
            ) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise EndpointUnreachableError(
                f"cannot reach {self.endpoint_url}: {_reason(exc)}"
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
        ) as exc:
            raise ConfigurationError(f"cannot send to {self.endpoint_url}: {exc}") from None
        # Read now, so that the connection goes back to the pool whatever the caller does.
        _ = response.content
        logger.debug("%s %s -> HTTP %d", method, self.endpoint_url, response.status_code)
        if response.status_code >= 300:
            _scrub_secrets(response, credentials)
        return response


def encode_body(body: bytes | object) -> bytes:
    """The bytes to send: bytes as given, str as UTF-8, anything else as compact JSON."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"request body cannot be sent as JSON: {exc}") from None


def _is_retryable(status: int) -> bool:
    return status == THROTTLED or status >= 500


def _decode_json(response: requests.Response) -> object:
    try:
        return json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ServerError(
            f"HTTP {response.status_code} answer is not JSON: {_snippet(response)}",
            status=response.status_code,
        ) from None


def _failure_for(response: requests.Response) -> AuthError | BadRequestError | ServerError:
    status = response.status_code
    code, message = _error_details(response)
    if status == FORBIDDEN:
        return AuthError(
            f"HTTP 403 from the endpoint: {message} (is the role granted on this URL, and is the "
            "request signed for service 'lambda' in the URL's region?)",
            status=status,
            code=code,
        )
    if status < 400:
        return ServerError(f"unexpected HTTP {status} (redirects are not followed)", status=status)
    if 400 <= status < 500 and status != THROTTLED:
        return BadRequestError(status, message, code=code)
    label = "throttled" if status == THROTTLED else "server error"
    detail = f"{code}: {message}" if code else message
    return ServerError(f"HTTP {status} {label}: {detail}", status=status, code=code)


def _error_details(response: requests.Response) -> tuple[str | None, str]:
    """(code, message) from {"error": {"code", "message"}} or AWS's {"Message": ...}."""
    try:
        document = json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            code = error.get("code")
            return (str(code) if code is not None else None), _one_line(error["message"])
        for key in ("Message", "message"):
            if isinstance(document.get(key), str):
                return None, _one_line(document[key])
    return None, _snippet(response)


def _snippet(response: requests.Response) -> str:
    text = response.content.decode("utf-8", "replace")
    return _one_line(text) or response.reason or "no details in the answer"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE_CHARS else flat[: _MAX_MESSAGE_CHARS - 3] + "..."


def _scrub_secrets(response: requests.Response, credentials: TemporaryCredentials) -> None:
    """Mask any echo of this request's secrets in an error answer (a server quoting the
    canonical request back, say), so that no message built from it can leak them."""
    authorization = str(response.request.headers.get("Authorization", ""))
    signature = authorization.rpartition("Signature=")[2]
    # The whole header first, so that it goes as one piece rather than leaving its prefix.
    secrets = [authorization, signature, credentials.secret_access_key, credentials.session_token]
    text = response.content.decode("utf-8", "replace")
    cleaned = redact(text, secrets)
    if cleaned != text:
        response._content = cleaned.encode("utf-8")  # requests has no setter


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date: fall back to our own backoff
    return seconds if seconds >= 0 else None


def _reason(exc: BaseException) -> str:
    """The innermost OS-level reason (e.g. 'Connection refused'), not urllib3's nested repr."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        nested = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return type(exc).__name__
