"""Reading the function, its alias and its URL from the synthesized template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    function_logical_id: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    url_auth_type: str
    url_qualifier: str | None
    # LoggingConfig.LogGroup: a name, or {"Ref": logical id} of the stack's own log group.
    log_group: str | dict[str, str] | None = None


def read_function_spec(template: dict[str, Any]) -> FunctionSpec:
    resources = template.get("Resources", {})
    functions = _of_type(resources, "AWS::Lambda::Function")
    urls = _of_type(resources, "AWS::Lambda::Url")
    if len(functions) != 1 or len(urls) != 1:
        raise TemplateError(
            f"expected one function and one URL, found {len(functions)} and {len(urls)}"
        )
    (function_id, function), (_, url) = functions[0], urls[0]
    props = function.get("Properties", {})
    url_props = url.get("Properties", {})
    variables = props.get("Environment", {}).get("Variables", {})
    if any(not isinstance(v, str) for v in variables.values()):
        raise TemplateError("environment variables must be literal strings for the local run")
    return FunctionSpec(
        function_logical_id=function_id,
        # CloudFormation's defaults when the template leaves them out.
        timeout_seconds=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
        environment=dict(variables),
        url_auth_type=str(url_props["AuthType"]),
        url_qualifier=url_props.get("Qualifier"),
        log_group=props.get("LoggingConfig", {}).get("LogGroup"),
    )


def _of_type(resources: dict[str, Any], type_name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(k, v) for k, v in resources.items() if v.get("Type") == type_name]
