"""AWS_IAM auth for the local Function URL: SigV4 authentication, then IAM authorization,
both against the identities and policies that the deployed template created in moto."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from .iam_policy import PolicyDocument, is_url_invoke_allowed
from .lambda_event import IamCaller
from .moto_identity import lookup_access_key
from .moto_service import MotoAws
from .server import AccessDenied, SignedRequest
from .sigv4_verify import AuthFailure, VerifiedCaller, verify_sigv4

log = logging.getLogger(__name__)


class IamUrlAuthorizer:
    def __init__(
        self,
        *,
        moto: MotoAws,
        function_arn: str,
        account_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy_cache_seconds: float = 2.0,
    ) -> None:
        self._moto = moto
        self._function_arn = function_arn
        self._account_id = account_id
        self._clock = clock
        self._iam = moto.client("iam")
        self._lambda = moto.client("lambda")
        # IAM is eventually consistent on AWS too (changes take seconds to apply): reading the
        # policies through the IAM API at most every couple of seconds keeps each signed request
        # from paying four API round trips, without pretending to be more current than AWS.
        self._policy_cache_seconds = policy_cache_seconds
        self._cache: dict[str, tuple[float, list[PolicyDocument], PolicyDocument | None]] = {}
        self._cache_lock = threading.Lock()

    def __call__(self, request: SignedRequest) -> IamCaller:
        try:
            caller = verify_sigv4(
                method=request.method,
                raw_path=request.raw_path,
                raw_query=request.raw_query,
                headers=request.headers,
                body=request.body,
                expected_region=self._moto.region,
                lookup_secret=lambda key: lookup_access_key(key, account_id=self._account_id),
                now=self._clock(),
            )
        except AuthFailure as failure:
            log.info("authentication refused: %s", failure.code)
            raise AccessDenied(failure.message) from None
        identity_policies, resource_policy = self._policies(caller.principal_arn)
        allowed, reason = is_url_invoke_allowed(
            identity_policies=identity_policies,
            resource_policy=resource_policy,
            function_arn=self._function_arn,
            auth_type="AWS_IAM",
            principal_arn=caller.principal_arn,
            account_id=caller.account_id,
            caller_arn=caller.user_arn,
        )
        if not allowed:
            log.info("authorization refused for %s: %s", caller.principal_arn, reason)
            raise AccessDenied("Forbidden")
        return _iam_caller(caller)

    def _policies(self, principal_arn: str) -> tuple[list[PolicyDocument], PolicyDocument | None]:
        # One refresh at a time: concurrent requests wait for it instead of all re-reading.
        with self._cache_lock:
            now = time.monotonic()
            cached = self._cache.get(principal_arn)
            if cached is not None and now - cached[0] < self._policy_cache_seconds:
                return cached[1], cached[2]
            identity, resource = self._identity_policies(principal_arn), self._resource_policy()
            self._cache[principal_arn] = (now, identity, resource)
            return identity, resource

    def _identity_policies(self, principal_arn: str) -> list[PolicyDocument]:
        # The policies as the template created them in moto, read through the IAM API.
        resource = principal_arn.split(":", 5)[5]  # role/path/name or user/path/name
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        if kind == "role":
            inline_names = self._iam.list_role_policies(RoleName=name)["PolicyNames"]
            inline = [
                self._iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for p in inline_names
            ]
            attached = self._iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        elif kind == "user":
            inline_names = self._iam.list_user_policies(UserName=name)["PolicyNames"]
            inline = [
                self._iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
                for p in inline_names
            ]
            attached = self._iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
        else:
            return []
        return [*map(_document, inline), *(self._managed(p["PolicyArn"]) for p in attached)]

    def _managed(self, policy_arn: str) -> PolicyDocument:
        version = self._iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
        document = self._iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)
        return _document(document["PolicyVersion"]["Document"])

    def _resource_policy(self) -> PolicyDocument | None:
        try:
            policy = self._lambda.get_policy(FunctionName=self._function_arn)["Policy"]
        except self._lambda.exceptions.ResourceNotFoundException:
            return None
        return _document(policy)


def _document(raw: Any) -> PolicyDocument:
    if isinstance(raw, str):
        return json.loads(unquote(raw)) if raw.startswith("%") else json.loads(raw)
    return raw


def _iam_caller(caller: VerifiedCaller) -> IamCaller:
    return IamCaller(
        access_key=caller.access_key,
        account_id=caller.account_id,
        caller_id=caller.caller_id,
        user_arn=caller.user_arn,
        user_id=caller.user_id,
    )
