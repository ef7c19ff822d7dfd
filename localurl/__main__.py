"""The whole system on one machine, no AWS account.

python -m localurl demo [--body FILE]   synth, deploy into moto, sign, invoke, print, destroy
python -m localurl serve [--port N]     deploy and keep serving until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .deploy import LocalSystem
from .moto_service import OPERATOR_KEY_ID

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
            "\n".join(
                [
                    f"Function URL ({deployed.spec.url_auth_type}): {deployed.endpoint_url}",
                    f"Region: {system.region}   invoker role: {deployed.role_arn}",
                    f"STS/IAM/CloudFormation (moto): {system.moto.endpoint_url}",
                    "Credentials: assume the invoker role through the local STS, e.g.",
                    f"  AWS_ACCESS_KEY_ID={OPERATOR_KEY_ID} AWS_SECRET_ACCESS_KEY=<any> \\",
                    f"  aws sts assume-role --endpoint-url {system.moto.endpoint_url} "
                    f"--region {system.region} --role-arn {deployed.role_arn} "
                    "--role-session-name me",
                    "then sign requests with SigV4 (service lambda, region above), or run",
                    f"  python -m client --url {deployed.endpoint_url} --role-arn "
                    f"{deployed.role_arn} --region {system.region} "
                    f"--sts-endpoint-url {system.moto.endpoint_url} --body FILE",
                    "Ctrl-C stops and destroys everything.",
                ]
            ),
            flush=True,
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
