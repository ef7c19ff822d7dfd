"""SigV4 request signing for a Lambda Function URL with AuthType AWS_IAM."""

from __future__ import annotations

from typing import Final

from requests_aws4auth import AWS4Auth

from .credentials import TemporaryCredentials

LAMBDA_SERVICE: Final = "lambda"
# Content-Type is signed so that what the function is told about the body cannot be swapped;
# x-amz-* covers X-Amz-Date, X-Amz-Content-Sha256 (the body hash) and X-Amz-Security-Token.
SIGNED_HEADERS: Final = frozenset({"host", "content-type", "x-amz-*"})


def sigv4_auth(
    credentials: TemporaryCredentials, region: str, service: str = LAMBDA_SERVICE
) -> AWS4Auth:
    """A requests auth hook that signs one request with `credentials` for `region`/`service`.

    Make one per request: it stamps X-Amz-Date when called, and credentials may have been
    refreshed since the last request.
    """
    return AWS4Auth(
        credentials.access_key_id,
        credentials.secret_access_key,
        region,
        service,
        session_token=credentials.session_token,
        # Passed explicitly: AWS4Auth's default set is a class attribute it mutates in place.
        include_hdrs=set(SIGNED_HEADERS),
    )
