"""What every synth of this app contains: the inference stack and the cdk-nag checks."""

from __future__ import annotations

from aws_cdk import App, Environment

from .config import StackConfig
from .nag import enable_nag_checks
from .stack import InferenceStack

# The construct id, stable across stack names: the stack name comes from the config.
STACK_ID = "InferenceStack"


def add_inference_stack(
    app: App, *, config: StackConfig, env: Environment | None = None
) -> InferenceStack:
    stack = InferenceStack(app, STACK_ID, config=config, env=env)
    enable_nag_checks(app)
    return stack
