"""AWS_IAM auth for the local Function URL: SigV4 authentication, then IAM authorization."""

from __future__ import annotations

from .lambda_event import IamCaller
from .moto_service import MotoAws
from .server import AccessDenied, SignedRequest


class IamUrlAuthorizer:
    def __init__(self, *, moto: MotoAws, function_arn: str, account_id: str) -> None:
        self._moto = moto
        self._function_arn = function_arn
        self._account_id = account_id

    def __call__(self, request: SignedRequest) -> IamCaller:
        raise AccessDenied("Forbidden")
