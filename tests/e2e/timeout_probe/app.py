"""The real CDK app with the function's code swapped for the timeout probe (./image).

Run from the project root like app.py, as `python -m tests.e2e.timeout_probe.app`: the CDK CLI
(`--app`) or the local stand-in's synth does. Context is read by the same StackConfig code,
so the probe's function gets exactly the timeout, memory and alias the configuration sets.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import aws_cdk as cdk

from infra.application import add_inference_stack
from infra.config import ConfigError, StackConfig

PROBE_IMAGE = Path(__file__).resolve().parent / "image"


def main() -> None:
    app = cdk.App()
    try:
        config = StackConfig.from_context(app.node.try_get_context)
    except ConfigError as error:
        raise SystemExit(f"cdk context: {error}") from None
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    add_inference_stack(app, config=dataclasses.replace(config, handler_dir=PROBE_IMAGE), env=env)
    app.synth()


if __name__ == "__main__":
    main()
