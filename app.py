#!/usr/bin/env python3
"""CDK entry point: read context and environment once, build the config, create the stack."""

from __future__ import annotations

import os

import aws_cdk as cdk

from infra.config import StackConfig
from infra.stack import InferenceStack


def main() -> None:
    app = cdk.App()
    config = StackConfig.from_context(app.node.try_get_context)
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    InferenceStack(app, "InferenceStack", config=config, env=env)
    app.synth()


if __name__ == "__main__":
    main()
