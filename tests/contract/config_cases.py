"""Valid stack configurations as CDK context, each with the values it must produce (the oracle).

A case is drawn key by key: absent (the documented default applies), a `-c key=value` string as
the CLI passes it, or a cdk.json JSON value. The expected values come from the draw itself and
from the README's table of defaults, never from infra/.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# The README's configuration table.
DEFAULTS: Mapping[str, Any] = {
    "stackName": "CdkMlLambda",
    "functionName": None,
    "aliasName": "Dev",
    "architecture": "x86_64",
    "memorySize": 1024,
    "timeoutSeconds": 30,
    "logRetentionDays": 30,
    "maxRows": 10_000,
    "invokerPrincipals": (),
    "tags": {},
}
KEYS = tuple(DEFAULTS)
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365)


@dataclass(frozen=True, kw_only=True)
class ConfigCase:
    """Context as the app receives it, and what each key must turn into."""

    context: Mapping[str, Any]
    expected: Mapping[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        return self.expected.get(key, DEFAULTS[key])


def case_from_cli_strings(context: Mapping[str, str]) -> ConfigCase:
    """A hand-written case of `-c` strings; expected values parsed by the README's rules."""
    expected: dict[str, Any] = {}
    for key, raw in context.items():
        if key in ("memorySize", "timeoutSeconds", "logRetentionDays", "maxRows"):
            expected[key] = int(raw)
        elif key == "invokerPrincipals":
            expected[key] = tuple(p.strip() for p in raw.split(",") if p.strip())
        elif key == "tags":
            expected[key] = dict(pair.split("=", 1) for pair in raw.split(",") if pair)
        else:
            expected[key] = (raw or None) if key == "functionName" else raw
    return ConfigCase(context=dict(context), expected=expected)


_ALNUM = string.ascii_letters + string.digits
stack_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,127}", fullmatch=True)
function_names = st.text(_ALNUM + "_-", min_size=1, max_size=64)
alias_names = st.text(_ALNUM + "_-", min_size=1, max_size=128).filter(lambda s: not s.isdigit())
_IAM_NAME_CHARS = _ALNUM + "+=,.@_-"


@st.composite
def principal_arns(draw: st.DrawFn, *, commas: bool) -> str:
    partition = draw(st.sampled_from(["aws", "aws-cn", "aws-us-gov"]))
    account = draw(st.text(string.digits, min_size=12, max_size=12))
    kind = draw(st.sampled_from(["role", "user"]))
    chars = _IAM_NAME_CHARS if commas else _IAM_NAME_CHARS.replace(",", "")
    path = draw(st.lists(st.text(chars, min_size=1, max_size=8), max_size=2))
    name = draw(st.text(chars, min_size=1, max_size=32))
    return f"arn:{partition}:iam::{account}:{kind}/{''.join(p + '/' for p in path)}{name}"


# Letters (Unicode too), digits, spaces and _ . : / = + - @; not the reserved aws: prefix.
_TAG_CHARS = st.characters(categories=("L", "Nd"), include_characters="_.:/=+-@ ")


def _not_reserved(key: str) -> bool:
    # "__proto__" is a valid AWS tag key that jsii cannot carry: the config refuses it.
    return not key.lower().startswith("aws:") and key.strip() != "__proto__"


tag_keys_json = st.text(_TAG_CHARS, min_size=1, max_size=128).filter(_not_reserved)
tag_values_json = st.text(_TAG_CHARS, max_size=256)


def _cli_safe(text: str) -> bool:
    # `-c tags=k=v,k2=v2`: a key has no "=", neither has ",", and both are stripped.
    return "," not in text and text == text.strip()


tag_keys_cli = tag_keys_json.filter(lambda k: _cli_safe(k) and "=" not in k and k != "")
tag_values_cli = tag_values_json.filter(_cli_safe)


def _padded(draw: st.DrawFn, text: str) -> str:
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    """Any valid configuration, each key absent, a `-c` string or a cdk.json value."""
    context: dict[str, Any] = {}
    expected: dict[str, Any] = {}

    def form() -> str:
        return draw(st.sampled_from(["absent", "cli", "json"]))

    for key, names in (("stackName", stack_names), ("aliasName", alias_names)):
        if form() != "absent":
            context[key] = expected[key] = draw(names)

    if form() != "absent":
        # An empty name means "generated", as if the key were absent.
        name = draw(st.one_of(st.just(""), function_names))
        context["functionName"] = name
        expected["functionName"] = name or None

    if form() != "absent":
        context["architecture"] = expected["architecture"] = draw(
            st.sampled_from(["x86_64", "arm64"])
        )

    for key, values in (
        ("memorySize", st.integers(128, 10_240)),
        ("timeoutSeconds", st.integers(1, 900)),
        ("logRetentionDays", st.sampled_from(RETENTION_DAYS)),
        ("maxRows", st.integers(1, 10**12)),
    ):
        how = form()
        if how == "absent":
            continue
        number = draw(values)
        expected[key] = number
        # cdk.json may hold a number or a numeric string; `-c` always passes a string.
        as_text = how == "cli" or draw(st.booleans())
        context[key] = _padded(draw, str(number)) if as_text else number

    if (how := form()) != "absent":
        arns = draw(st.lists(principal_arns(commas=how == "json"), max_size=4))
        expected["invokerPrincipals"] = tuple(arns)
        if how == "json":
            context["invokerPrincipals"] = arns
        else:
            separator = draw(st.sampled_from([",", ", "]))
            trailing = draw(st.sampled_from(["", ","]))
            context["invokerPrincipals"] = separator.join(arns) + trailing

    if (how := form()) != "absent":
        keys, values = (
            (tag_keys_json, tag_values_json) if how == "json" else (tag_keys_cli, tag_values_cli)
        )
        tags = draw(st.dictionaries(keys, values, max_size=4))
        expected["tags"] = tags
        context["tags"] = (
            dict(tags) if how == "json" else ",".join(f"{k}={v}" for k, v in tags.items())
        )

    return ConfigCase(context=context, expected=expected)
