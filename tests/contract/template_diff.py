"""Template snapshots a reviewer can read: normalization, and a security summary of a change.

`normalize` removes what changes without a change of meaning — asset hashes (a handler edit), the
hash suffixes CDK appends to logical IDs (the function version's changes with the asset), CDK
metadata — so a snapshot changes only when the infrastructure does.

`security_diff` compares two (normalized) templates and lists what matters for security and
behaviour: IAM grants added/removed (per role, action, resource, condition), trust principals,
resource-based permissions, Function URL auth type, function timeout/memory/architecture/
environment/role, resources added and removed. Anything that lets more callers do more is a
WIDENING: a new action, a `*` resource or action, a dropped condition, a broader or new principal,
a removed Deny, an attached managed policy, a URL without IAM auth.

No CDK import: it works on template dicts, so its tests need no synth.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# CDK's logical IDs end in 8 hex digits of the path's hash; a function version's also in 32 more,
# the hash of the function's configuration and code.
_ID_HASH = re.compile(r"[0-9A-F]{8}(?:[0-9a-f]{32})?$")
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
ASSET_HASH = "<asset-hash>"
# A role's ManagedPolicyArns entry, as a grant of everything that policy allows.
MANAGED_POLICY = "(managed policy)"

FUNCTION_PROPERTIES = (
    "Timeout",
    "MemorySize",
    "Architectures",
    "Role",
    "PackageType",
    "Runtime",
    "Handler",
    "FunctionName",
    "ReservedConcurrentExecutions",
    "VpcConfig",
    "EphemeralStorage",
)


# --- normalization -------------------------------------------------------------------------------


def normalize(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template without churn: stable logical IDs, no asset hashes, no CDK metadata."""
    resources = {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") != "AWS::CDK::Metadata"
    }
    renames: dict[str, str] = {}
    for logical_id in resources:
        stable = _ID_HASH.sub("", logical_id) or logical_id
        if stable in renames.values():
            raise ValueError(f"logical IDs collide without their hashes: {stable}")
        renames[logical_id] = stable

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if isinstance(node, str):
            if node in renames:
                return renames[node]
            text = _ASSET_HASH.sub(ASSET_HASH, node)
            # Fn::Sub strings name resources as ${LogicalId} or ${LogicalId.Attribute}.
            return re.sub(
                r"\$\{([A-Za-z0-9]+)([.}])",
                lambda m: "${" + renames.get(m.group(1), m.group(1)) + m.group(2),
                text,
            )
        return node

    normalized: dict[str, Any] = {
        key: rewrite(value) for key, value in template.items() if key != "Resources"
    }
    normalized["Resources"] = {
        renames[logical_id]: rewrite({k: v for k, v in resource.items() if k != "Metadata"})
        for logical_id, resource in resources.items()
    }
    conditions = {
        name: value
        for name, value in normalized.get("Conditions", {}).items()
        if name != "CDKMetadataAvailable"
    }
    if conditions:
        normalized["Conditions"] = conditions
    else:
        normalized.pop("Conditions", None)
    return normalized


# --- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Change:
    """One line of the summary."""

    area: str  # IAM, trust, permission, URL, function, resource
    subject: str  # the resource it is about (normalized logical ID)
    text: str
    widening: str = ""  # why it widens access; empty: not a widening

    def render(self) -> str:
        marker = "WIDENING " if self.widening else "         "
        reason = f"  [{self.widening}]" if self.widening else ""
        return f"{marker} {self.area} {self.subject}: {self.text}{reason}"


def render(changes: Iterable[Change]) -> str:
    """Widenings first, then the rest, one line each."""
    ordered = sorted(changes, key=lambda c: (not c.widening, c.area, c.subject, c.text))
    if not ordered:
        return "no security- or behaviour-relevant template change"
    widenings = sum(1 for c in ordered if c.widening)
    head = f"template changes: {len(ordered)} ({widenings} WIDENING)"
    return "\n".join([head, *(c.render() for c in ordered)])


def security_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """What changed between two templates, for a reviewer. Normalize both first."""
    old_resources = old.get("Resources", {})
    new_resources = new.get("Resources", {})
    changes = [
        *_resource_changes(old_resources, new_resources),
        *_grant_changes(old_resources, new_resources),
        *_trust_changes(old_resources, new_resources),
        *_permission_changes(old_resources, new_resources),
        *_url_changes(old_resources, new_resources),
        *_function_changes(old_resources, new_resources),
    ]
    return sorted(set(changes))


def describe(value: Any) -> str:
    """A CloudFormation value in a line: Ref X, X.Attr, joined strings, or compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"Ref {argument}"
        if function == "Fn::GetAtt" and isinstance(argument, list):
            return ".".join(str(a) for a in argument)
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            separator, parts = argument
            return str(separator).join(
                p if isinstance(p, str) else "${" + describe(p) + "}" for p in parts
            )
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _of_type(resources: Mapping[str, Any], *types: str) -> dict[str, Mapping[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in resources.items()
        if resource.get("Type") in types
    }


def _resource_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for logical_id in sorted(set(old) - set(new)):
        yield Change("resource", logical_id, f"removed ({old[logical_id].get('Type')})")
    for logical_id in sorted(set(new) - set(old)):
        yield Change("resource", logical_id, f"added ({new[logical_id].get('Type')})")


# IAM identity policies: a grant is one (owner, effect, action, resource, condition).
@dataclass(frozen=True)
class _Grant:
    owner: str
    effect: str
    action: str
    resource: str
    condition: str

    def text(self) -> str:
        if self.action == MANAGED_POLICY:
            return f"managed policy {self.resource}"
        condition = f" when {self.condition}" if self.condition else ""
        return f"{self.effect} {self.action} on {self.resource}{condition}"


def _statement_grants(owner: str, statement: Mapping[str, Any]) -> Iterator[_Grant]:
    effect = str(statement.get("Effect", "Allow"))
    condition = describe(statement["Condition"]) if "Condition" in statement else ""
    actions = [describe(a) for a in _as_list(statement.get("Action"))] or [
        "NotAction " + describe(statement.get("NotAction"))
    ]
    resources = [describe(r) for r in _as_list(statement.get("Resource"))] or [
        "NotResource " + describe(statement.get("NotResource"))
    ]
    for action in actions:
        for resource in resources:
            yield _Grant(owner, effect, action, resource, condition)


def _owners(properties: Mapping[str, Any]) -> list[str]:
    return [
        describe(ref).removeprefix("Ref ")
        for key in ("Roles", "Users", "Groups")
        for ref in _as_list(properties.get(key))
    ] or ["(unattached)"]


def _grants(resources: Mapping[str, Any]) -> set[_Grant]:
    grants: set[_Grant] = set()
    for properties in _of_type(resources, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy").values():
        for owner in _owners(properties):
            for statement in _as_list(properties.get("PolicyDocument", {}).get("Statement")):
                grants.update(_statement_grants(owner, statement))
    for role_id, properties in _of_type(resources, "AWS::IAM::Role").items():
        for policy in _as_list(properties.get("Policies")):
            for statement in _as_list(policy.get("PolicyDocument", {}).get("Statement")):
                grants.update(_statement_grants(role_id, statement))
        for arn in _as_list(properties.get("ManagedPolicyArns")):
            grants.add(_Grant(role_id, "Allow", MANAGED_POLICY, describe(arn), ""))
    return grants


def _is_wildcard(text: str) -> bool:
    return "*" in text or text.startswith("Not")


def _widening(grant: _Grant, before: set[_Grant]) -> str:
    """Why an added Allow grant widens access (every added Allow does, somehow)."""
    if grant.action == MANAGED_POLICY:
        return "managed policy attached"
    allowed = [g for g in before if g.owner == grant.owner and g.effect == "Allow"]
    if any((g.action, g.resource) == (grant.action, grant.resource) for g in allowed):
        return "condition changed" if grant.condition else "condition removed"
    reasons = []
    if _is_wildcard(grant.action):
        reasons.append("wildcard action")
    elif grant.action not in {g.action for g in allowed}:
        reasons.append("new action")
    if _is_wildcard(grant.resource):
        reasons.append("`*` resource")
    return ", ".join(reasons) or "new resource"


def _grant_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = _grants(old), _grants(new)
    for grant in sorted(after - before, key=_Grant.text):
        # An added Allow widens; an added Deny narrows.
        widening = _widening(grant, before) if grant.effect == "Allow" else ""
        yield Change("IAM", grant.owner, "+ " + grant.text(), widening)
    for grant in sorted(before - after, key=_Grant.text):
        widening = "Deny removed" if grant.effect == "Deny" else ""
        yield Change("IAM", grant.owner, "- " + grant.text(), widening)


# Trust policies: who may assume each role: (role, "Kind principal", action, condition).
_Trust = tuple[str, str, str, str]


def _trust(resources: Mapping[str, Any]) -> set[_Trust]:
    trust = set()
    for role_id, properties in _of_type(resources, "AWS::IAM::Role").items():
        document = properties.get("AssumeRolePolicyDocument", {})
        for statement in _as_list(document.get("Statement")):
            if statement.get("Effect", "Allow") != "Allow":
                continue
            condition = describe(statement["Condition"]) if "Condition" in statement else ""
            action = ", ".join(describe(a) for a in _as_list(statement.get("Action")))
            principal = statement.get("Principal", {})
            if not isinstance(principal, dict):  # "Principal": "*"
                principal = {"AWS": principal}
            for kind, values in principal.items():
                for value in _as_list(values):
                    trust.add((role_id, f"{kind} {describe(value)}", action, condition))
    return trust


def _principal_breadth(principal: str) -> str:
    if principal.endswith(" *"):
        return "any principal"
    if principal.endswith(":root") or re.fullmatch(r"AWS \d{12}", principal):
        return "a whole account"
    return "broader principal"


def _trust_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = _trust(old), _trust(new)
    for role_id, principal, action, condition in sorted(after - before):
        when = f" when {condition}" if condition else ""
        if any(t[:3] == (role_id, principal, action) for t in before):
            widening = "condition changed" if condition else "condition removed"
        else:
            widening = _principal_breadth(principal)
        yield Change("trust", role_id, f"+ {principal} may {action}{when}", widening)
    for role_id, principal, action, condition in sorted(before - after):
        when = f" when {condition}" if condition else ""
        yield Change("trust", role_id, f"- {principal} may {action}{when}")


# Resource-based permissions (AWS::Lambda::Permission): who may invoke, from where.
_PERMISSION_KEYS = ("Action", "Principal", "FunctionUrlAuthType", "SourceArn", "SourceAccount")


def _permissions(resources: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (
            describe(properties.get("FunctionName")).removeprefix("Ref "),
            ", ".join(
                f"{k}={describe(properties[k])}" for k in _PERMISSION_KEYS if k in properties
            ),
        )
        for properties in _of_type(resources, "AWS::Lambda::Permission").values()
    }


def _permission_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = _permissions(old), _permissions(new)
    for function, text in sorted(after - before):
        widening = "any principal" if "Principal=*" in text else "broader principal"
        if "FunctionUrlAuthType=NONE" in text:
            widening += ", auth NONE"
        yield Change("permission", function, f"+ {text}", widening)
    for function, text in sorted(before - after):
        yield Change("permission", function, f"- {text}")


def _url_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = _of_type(old, "AWS::Lambda::Url"), _of_type(new, "AWS::Lambda::Url")
    for url_id, properties in after.items():
        auth = properties.get("AuthType")
        widening = "auth NONE" if auth == "NONE" else ""
        if url_id not in before:
            target = (
                f"{describe(properties.get('TargetFunctionArn'))}:{properties.get('Qualifier')}"
            )
            yield Change("URL", url_id, f"+ URL with AuthType {auth} on {target}", widening)
            continue
        previous = before[url_id]
        for key in ("AuthType", "Qualifier", "TargetFunctionArn", "Cors", "InvokeMode"):
            if previous.get(key) != properties.get(key):
                yield Change(
                    "URL",
                    url_id,
                    f"{key} {_show(previous.get(key))} → {_show(properties.get(key))}",
                    widening if key == "AuthType" else "",
                )
    for url_id in sorted(set(before) - set(after)):
        yield Change("URL", url_id, f"- URL with AuthType {before[url_id].get('AuthType')}")


def _show(value: Any) -> str:
    return "(none)" if value is None else describe(value)


def _function_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before = _of_type(old, "AWS::Lambda::Function")
    after = _of_type(new, "AWS::Lambda::Function")
    for function_id in sorted(set(before) & set(after)):
        was, now = before[function_id], after[function_id]
        for key in FUNCTION_PROPERTIES:
            if was.get(key) != now.get(key):
                yield Change(
                    "function", function_id, f"{key} {_show(was.get(key))} → {_show(now.get(key))}"
                )
        was_env = was.get("Environment", {}).get("Variables", {})
        now_env = now.get("Environment", {}).get("Variables", {})
        for name in sorted(set(was_env) | set(now_env)):
            if was_env.get(name) != now_env.get(name):
                yield Change(
                    "function",
                    function_id,
                    f"environment {name} {_show(was_env.get(name))} → {_show(now_env.get(name))}",
                )
    for alias_id, properties in _of_type(new, "AWS::Lambda::Alias").items():
        previous = _of_type(old, "AWS::Lambda::Alias").get(alias_id)
        if previous is not None and previous.get("Name") != properties.get("Name"):
            yield Change(
                "function",
                alias_id,
                f"alias Name {_show(previous.get('Name'))} → {_show(properties.get('Name'))}",
            )
