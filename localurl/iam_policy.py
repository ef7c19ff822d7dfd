"""A small IAM policy evaluator: may this caller invoke the function through its URL?

moto has an IAM access-control mode, but it ignores Condition blocks, and the grant a Function
URL needs is all conditions (lambda:FunctionUrlAuthType, lambda:InvokedViaFunctionUrl): with
moto's evaluator a policy missing them would pass. Hence this evaluator.

Matching is three-valued (True, False, None = "cannot tell"), and the unknown always resolves
towards refusal: an Allow statement grants only when it matches for certain, a Deny statement
denies unless it certainly does not match. Unknown are: condition operators not implemented
here, policy variables (`${...}`), malformed statements, an Effect other than Allow/Deny.

Not modelled: permissions boundaries, session policies, SCPs/RCPs, Numeric/Date/IpAddress
conditions (unknown operators, see above), policy variables.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

ContextValue = str | bool | Sequence[str | bool]
PolicyDocument = Mapping[str, Any] | str
Tri = bool | None  # None: cannot tell, e.g. an operator this evaluator does not know

INVOKE_URL_ACTION: Final = "lambda:InvokeFunctionUrl"
INVOKE_ACTION: Final = "lambda:InvokeFunction"


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY_EXPLICIT = "deny_explicit"
    DENY_IMPLICIT = "deny_implicit"


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The caller, as the Principal element of a resource policy sees it."""

    account_id: str
    # The user ARN, or the role ARN behind a role session.
    arn: str
    # arn:aws:sts::ACCT:assumed-role/NAME/SESSION for a role session; resource policies may name it.
    session_arn: str | None = None


@dataclass(frozen=True)
class _Outcome:
    denied: bool
    # Allowed by a statement naming the caller itself (or "*"), or by an identity policy.
    allowed: bool
    # Allowed only through an account principal: a delegation to the account's own IAM policies.
    allowed_via_account: bool


def evaluate(
    *,
    policies: Sequence[PolicyDocument],
    action: str,
    resource: str,
    context: Mapping[str, ContextValue],
    principal: Principal | None = None,
) -> Decision:
    """Explicit Deny wins, then any Allow, else implicit deny.

    Without `principal` the documents are identity policies (Principal elements ignored); with
    it they are resource policies, and a statement counts only if its Principal names the caller.
    """
    outcome = _evaluate(policies, action, resource, context, principal)
    if outcome.denied:
        return Decision.DENY_EXPLICIT
    if outcome.allowed or outcome.allowed_via_account:
        return Decision.ALLOW
    return Decision.DENY_IMPLICIT


def is_url_invoke_allowed(
    *,
    identity_policies: Sequence[PolicyDocument],
    resource_policy: PolicyDocument | None,
    function_arn: str,
    auth_type: str,
    principal_arn: str,
    account_id: str,
    caller_arn: str | None = None,
) -> tuple[bool, str]:
    """Both permissions a Function URL checks: lambda:InvokeFunctionUrl and lambda:InvokeFunction.

    `function_arn` is the qualified ARN the URL targets; `principal_arn` the user or role ARN
    whose policies are `identity_policies`; `caller_arn` the role session ARN, if any.
    Same account: the identity policies OR the function's resource policy may allow. An account
    principal in the resource policy only delegates to the account's IAM policies (as in AWS),
    and across accounts both sides must allow. An explicit Deny anywhere refuses.
    """
    principal = Principal(account_id=account_id, arn=principal_arn, session_arn=caller_arn)
    common: dict[str, ContextValue] = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": account_id,
    }
    checks: list[tuple[str, dict[str, ContextValue]]] = [
        (INVOKE_URL_ACTION, {**common, "lambda:FunctionUrlAuthType": auth_type}),
        (INVOKE_ACTION, {**common, "lambda:InvokedViaFunctionUrl": True}),
    ]
    same_account = _arn_account(function_arn) == account_id
    resource_policies = [] if resource_policy is None else [resource_policy]
    for action, context in checks:
        identity = _evaluate(identity_policies, action, function_arn, context, None)
        granted = _evaluate(resource_policies, action, function_arn, context, principal)
        if identity.denied or granted.denied:
            where = "an identity" if identity.denied else "the resource"
            return False, f"explicit deny of {action} in {where} policy"
        if same_account:
            allowed = identity.allowed or granted.allowed
        else:
            allowed = identity.allowed and (granted.allowed or granted.allowed_via_account)
        if not allowed:
            return False, f"no policy allows {action} on {function_arn}"
    return True, f"allowed: {INVOKE_URL_ACTION} and {INVOKE_ACTION}"


def _evaluate(
    policies: Sequence[PolicyDocument],
    action: str,
    resource: str,
    context: Mapping[str, ContextValue],
    principal: Principal | None,
) -> _Outcome:
    normalized = _normalize_context(context)
    denied = allowed = via_account = False
    for statement in _statements(policies):
        match, account_only = _statement_matches(statement, action, resource, normalized, principal)
        if statement.get("Effect") == "Allow":
            if match is True:
                allowed = allowed or not account_only
                via_account = via_account or account_only
        elif match is not False:
            # Deny, and any other Effect: a statement we cannot read must not grant.
            denied = True
    return _Outcome(denied=denied, allowed=allowed, allowed_via_account=via_account)


def _statements(policies: Sequence[PolicyDocument]) -> Iterable[Mapping[str, Any]]:
    # Malformed parts become a bare {"Effect": "Deny"}: it cannot be matched for certain, so it
    # denies, where skipping it could hide a Deny the author meant.
    malformed: Mapping[str, Any] = {"Effect": "Deny"}
    for policy in policies:
        document = json.loads(policy) if isinstance(policy, str) else policy
        if not isinstance(document, Mapping):
            yield malformed
            continue
        statements = document.get("Statement", [])
        if isinstance(statements, Mapping):
            statements = [statements]
        if not isinstance(statements, list):
            yield malformed
            continue
        for statement in statements:
            yield statement if isinstance(statement, Mapping) else malformed


def _statement_matches(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, list[str]],
    principal: Principal | None,
) -> tuple[Tri, bool]:
    """(does the statement apply, does it apply to the caller only through its account)."""
    account_only = False
    principal_match: Tri = True
    if principal is not None:
        principal_match, account_only = _principal_matches(statement, principal)
    result = _all(
        [
            principal_match,
            _element_matches(statement, "Action", "NotAction", action, _action_matches),
            _element_matches(statement, "Resource", "NotResource", resource, _resource_matches),
            _conditions_match(statement.get("Condition"), context),
        ]
    )
    return result, account_only


def _element_matches(
    statement: Mapping[str, Any],
    key: str,
    not_key: str,
    value: str,
    matches: Callable[[str, str], Tri],
) -> Tri:
    if (key in statement) == (not_key in statement):
        return None  # neither or both: malformed
    patterns = _strings(statement[key] if key in statement else statement[not_key])
    if patterns is None:
        return None
    found = _any(matches(pattern, value) for pattern in patterns)
    return found if key in statement else _not(found)


def _action_matches(pattern: str, action: str) -> Tri:
    return _wildcard(pattern.lower()).fullmatch(action.lower()) is not None


def _resource_matches(pattern: str, resource: str) -> Tri:
    if "${" in pattern:
        return None  # policy variables are not substituted
    return _wildcard(pattern).fullmatch(resource) is not None


def _principal_matches(statement: Mapping[str, Any], principal: Principal) -> tuple[Tri, bool]:
    if "Principal" in statement and "NotPrincipal" not in statement:
        return _names_caller(statement["Principal"], principal)
    if "NotPrincipal" in statement and "Principal" not in statement:
        listed, _ = _names_caller(statement["NotPrincipal"], principal)
        return _not(listed), False
    return None, False


def _names_caller(element: Any, principal: Principal) -> tuple[Tri, bool]:
    """(names the caller, only through its account)."""
    if element == "*":
        return True, False
    if not isinstance(element, Mapping):
        return None, False
    # Service, Federated, CanonicalUser principals never name a SigV4-signing IAM identity.
    names = _strings(element.get("AWS", []))
    if names is None:
        return None, False
    own = {principal.arn, principal.session_arn}
    if "*" in names or own & set(names):
        return True, False
    account = {principal.account_id, f"arn:aws:iam::{principal.account_id}:root"}
    if account & set(names):
        return True, True
    return False, False


def _conditions_match(block: Any, context: Mapping[str, list[str]]) -> Tri:
    if block is None:
        return True
    if not isinstance(block, Mapping):
        return None
    results: list[Tri] = []
    for operator, keys in block.items():
        if not isinstance(keys, Mapping) or not keys:
            results.append(None)
            continue
        for key, expected in keys.items():
            results.append(_condition(operator, str(key), expected, context))
    return _all(results)


@dataclass(frozen=True)
class _Operator:
    matches: Callable[[str, str], bool]  # (context value, policy value)
    negated: bool = False


def _arn_like(value: str, pattern: str) -> bool:
    # Component by component: a wildcard in one of the six parts does not spill into the next.
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    if len(values) != 6 or len(patterns) != 6:
        return False
    return all(_wildcard(p).fullmatch(v) for v, p in zip(values, patterns, strict=True))


def _string_like(value: str, pattern: str) -> bool:
    return _wildcard(pattern).fullmatch(value) is not None


def _equals(value: str, pattern: str) -> bool:
    return value == pattern


def _equals_ignore_case(value: str, pattern: str) -> bool:
    return value.casefold() == pattern.casefold()


def _bool_equals(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower() and value.lower() in {"true", "false"}


_OPERATORS: Final[Mapping[str, _Operator]] = {
    "StringEquals": _Operator(_equals),
    "StringNotEquals": _Operator(_equals, negated=True),
    "StringEqualsIgnoreCase": _Operator(_equals_ignore_case),
    "StringNotEqualsIgnoreCase": _Operator(_equals_ignore_case, negated=True),
    "StringLike": _Operator(_string_like),
    "StringNotLike": _Operator(_string_like, negated=True),
    "Bool": _Operator(_bool_equals),
    "ArnEquals": _Operator(_arn_like),
    "ArnLike": _Operator(_arn_like),
    "ArnNotEquals": _Operator(_arn_like, negated=True),
    "ArnNotLike": _Operator(_arn_like, negated=True),
}
_SET_QUALIFIERS: Final = ("", "ForAnyValue", "ForAllValues")


def _condition(operator: str, key: str, expected: Any, context: Mapping[str, list[str]]) -> Tri:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    values = _strings(expected)
    if qualifier not in _SET_QUALIFIERS or values is None or any("${" in v for v in values):
        return None
    actual = context.get(key.lower())  # condition keys are case-insensitive
    if name == "Null":
        return None if qualifier or if_exists else _null(values, actual)
    spec = _OPERATORS.get(name)
    if spec is None:
        return None
    if actual is None:
        # AWS: a missing key fails the condition, except the negated operators, which hold.
        if if_exists or qualifier == "ForAllValues":
            return True
        return False if qualifier == "ForAnyValue" else spec.negated

    def positive(value: str) -> bool:  # multiple policy values are OR'd
        return any(spec.matches(value, pattern) for pattern in values)

    def each(value: str) -> bool:
        return not positive(value) if spec.negated else positive(value)

    if qualifier == "ForAllValues":
        return all(each(value) for value in actual)
    if qualifier == "ForAnyValue":
        return any(each(value) for value in actual)
    found = any(positive(value) for value in actual)
    return not found if spec.negated else found


def _null(values: list[str], actual: list[str] | None) -> Tri:
    results: list[Tri] = []
    for value in values:
        if value.lower() == "true":
            results.append(actual is None)
        elif value.lower() == "false":
            results.append(actual is not None)
        else:
            results.append(None)
    return _any(results)


def _normalize_context(context: Mapping[str, ContextValue]) -> dict[str, list[str]]:
    normalized: dict[str, list[str]] = {}
    for key, value in context.items():
        items = [value] if isinstance(value, str | bool) else list(value)
        strings = [_scalar(item) for item in items]
        if strings:  # an empty multi-valued key is as good as absent
            normalized[key.lower()] = strings
    return normalized


def _scalar(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _strings(element: Any) -> list[str] | None:
    """A policy value as strings (JSON true -> "true"); None when it is not a valid one."""
    items = element if isinstance(element, list) else [element]
    strings: list[str] = []
    for item in items:
        if isinstance(item, bool):
            strings.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            strings.append(str(item))
        else:
            return None
    return strings


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    # IAM wildcards: * is any run of characters (across ':' and '/'), ? exactly one.
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _all(results: Iterable[Tri]) -> Tri:
    collected = list(results)
    if False in collected:
        return False
    return None if None in collected else True


def _any(results: Iterable[Tri]) -> Tri:
    collected = list(results)
    if True in collected:
        return True
    return None if None in collected else False


def _not(result: Tri) -> Tri:
    return None if result is None else not result
