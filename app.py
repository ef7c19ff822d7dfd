#!/usr/bin/env python3
"""CDK entry point: read context and environment once, build the config, create the stack."""

from __future__ import annotations

import os

import aws_cdk as cdk

from infra.application import add_inference_stack
from infra.config import ConfigError, StackConfig


def main() -> None:
    app = cdk.App()
    try:
        config = StackConfig.from_context(app.node.try_get_context)
    except ConfigError as error:
        # One line naming the context key, instead of a traceback from inside `cdk synth`.
        raise SystemExit(f"cdk context: {error}") from None
    # Set by the CDK CLI from the caller's profile; unset, the stack is environment-agnostic.
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    add_inference_stack(app, config=config, env=env)
    app.synth()


if __name__ == "__main__":
    main()
