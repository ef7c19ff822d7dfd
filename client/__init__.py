"""Client for the inference Function URL: assume the invoker role, sign with SigV4, invoke.

Library: `InferenceClient.for_role(...)` / `InferenceClient.from_outputs(...)`, then
`predict(body)` and `metadata()`. Command line: `python -m client --help`.
"""

from __future__ import annotations

from .credentials import AssumeRoleCredentials, TemporaryCredentials
from .errors import (
    AuthError,
    BadRequestError,
    ConfigurationError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    InferenceClientError,
    InvalidRoleArnError,
    ServerError,
)
from .invoke import InferenceClient
from .outputs import StackOutputs, load_outputs_file, load_stack_outputs
from .retry import RetryPolicy

__all__ = [
    "AssumeRoleCredentials",
    "AuthError",
    "BadRequestError",
    "ConfigurationError",
    "EndpointTimeoutError",
    "EndpointUnreachableError",
    "InferenceClient",
    "InferenceClientError",
    "InvalidRoleArnError",
    "RetryPolicy",
    "ServerError",
    "StackOutputs",
    "TemporaryCredentials",
    "load_outputs_file",
    "load_stack_outputs",
]
