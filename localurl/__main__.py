"""The whole system on one machine, no AWS account.

python -m localurl demo [--body FILE]   synth, deploy into moto, sign, invoke, print, destroy
python -m localurl serve                deploy, print how to call it, serve until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from .deploy import LocalSystem
from .moto_service import OPERATOR_KEY_ID, OPERATOR_SECRET

DEFAULT_BODY = Path(__file__).resolve().parent.parent / "data" / "samples.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localurl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="deploy, invoke the samples signed, print, destroy")
    demo.add_argument("--body", type=Path, default=DEFAULT_BODY, help="JSON request body file")
    demo.add_argument("--stack-name", default="cdk-ml-lambda-demo")
    serve = commands.add_parser("serve", help="deploy and keep serving until interrupted")
    serve.add_argument("--stack-name", default="cdk-ml-lambda-local")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.body, args.stack_name)
    return _serve(args.stack_name)


def _demo(body_path: Path, stack_name: str) -> int:
    from client.invoke import InferenceClient

    body = body_path.read_bytes()
    with LocalSystem() as system:
        print(f"synthesizing the CDK app (stack {stack_name}) ...", file=sys.stderr)
        deployed = system.deploy(system.synth(stack_name=stack_name))
        print(
            f"deployed into moto; Function URL {deployed.endpoint_url} (AuthType "
            f"{deployed.spec.url_auth_type})",
            file=sys.stderr,
        )
        print(
            f"assuming {deployed.role_arn} and sending {body_path.name} signed ...", file=sys.stderr
        )
        client = InferenceClient.for_role(
            endpoint_url=deployed.endpoint_url,
            role_arn=deployed.role_arn,
            region=system.region,
            sts_client=system.moto.client("sts"),
        )
        predictions = client.predict(body)
        print(json.dumps(predictions))
        print("destroying the stack ...", file=sys.stderr)
    return 0


def _serve(stack_name: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalSystem() as system:
        deployed = system.deploy(system.synth(stack_name=stack_name))
        print(
            serve_instructions(
                endpoint_url=deployed.endpoint_url,
                auth_type=deployed.spec.url_auth_type,
                role_arn=deployed.role_arn,
                region=system.region,
                sts_endpoint_url=system.moto.endpoint_url,
            ),
            flush=True,
        )
        stop.wait()
    return 0


def serve_instructions(
    *, endpoint_url: str, auth_type: str, role_arn: str, region: str, sts_endpoint_url: str
) -> str:
    """What `serve` prints: each command line runs as printed, pasted into any shell, from any
    folder (this interpreter, the checkout on PYTHONPATH, the operator's keys for the local STS)."""
    client = [
        "env",
        f"AWS_ACCESS_KEY_ID={OPERATOR_KEY_ID}",
        f"AWS_SECRET_ACCESS_KEY={OPERATOR_SECRET}",
        f"PYTHONPATH={Path(__file__).resolve().parent.parent}",
        sys.executable,
        "-m",
        "client",
        "--url",
        endpoint_url,
        "--role-arn",
        role_arn,
        "--region",
        region,
        "--sts-endpoint-url",
        sts_endpoint_url,
    ]
    return "\n".join(
        [
            f"Function URL ({auth_type}): {endpoint_url}",
            f"Region: {region}   invoker role: {role_arn}",
            f"STS/IAM/CloudFormation (moto): {sts_endpoint_url}",
            "Predict: the client assumes the invoker role through the local STS and signs:",
            "  " + shlex.join([*client, "--body", str(DEFAULT_BODY)]),
            "The model's schema:",
            "  " + shlex.join([*client, "--metadata"]),
            "Any SigV4 client works the same way: assume the invoker role at the STS endpoint "
            f"above (operator key {OPERATOR_KEY_ID}, any secret), sign for service lambda in "
            f"{region}.",
            "Ctrl-C stops and destroys everything.",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
