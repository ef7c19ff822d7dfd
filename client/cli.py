"""`python -m client` (also `ml-invoke`): assume the invoker role, sign, call, print the answer.

The answer's JSON goes to stdout; errors go to stderr as one line, with an exit code per kind
of failure (see `client.exit_codes`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bx

from .aws_errors import translate_aws_error
from .credentials import (
    DEFAULT_DURATION_SECONDS,
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
    SESSION_NAME_RE,
)
from .errors import (
    AuthError,
    BadRequestError,
    ConfigurationError,
    InferenceClientError,
    ServerError,
)
from .exit_codes import ExitCode
from .invoke import DEFAULT_CONTENT_TYPE, DEFAULT_TIMEOUT_SECONDS, InferenceClient
from .outputs import StackOutputs, load_outputs_file, load_stack_outputs
from .retry import DEFAULT_MAX_ATTEMPTS, RetryPolicy

STDIN = "-"

EPILOG = f"""\
where the endpoint and role come from (one of):
  --url URL --role-arn ARN          given directly
  --outputs-file FILE               `cdk deploy --outputs-file` JSON (--stack-name picks a stack)
  --stack-name NAME                 the deployed stack's outputs, from CloudFormation

exit codes:
  {ExitCode.OK:d}  success: the answer's JSON is on stdout
  {ExitCode.USAGE:d}  usage error or bad local input (options, files, region)
  {ExitCode.AUTH_FAILURE:d}  authentication failed: HTTP 403 from the URL, or STS refused the role
  {ExitCode.BAD_REQUEST:d}  the request was refused (another 4xx): the server's message is printed
  {ExitCode.SERVER_FAILURE:d}  server or network failure: 5xx or 429 after retries, no connection,
     timeout

examples:
  python -m client --outputs-file outputs.json --body data/samples.json
  python -m client --outputs-file outputs.json --metadata
  cat rows.json | python -m client --url https://abc.lambda-url.eu-west-1.on.aws/ \\
      --role-arn arn:aws:iam::123456789012:role/Invoker --body -
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_source_options(parser, args)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        answer = _run(args)
    except InferenceClientError as exc:
        print(f"{parser.prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exit_code_for(exc)
    print(json.dumps(answer, ensure_ascii=False))
    return ExitCode.OK


def exit_code_for(exc: InferenceClientError) -> ExitCode:
    if isinstance(exc, AuthError):
        return ExitCode.AUTH_FAILURE
    if isinstance(exc, BadRequestError):
        return ExitCode.BAD_REQUEST
    if isinstance(exc, ServerError):
        return ExitCode.SERVER_FAILURE
    return ExitCode.USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Call the XGBoost inference Function URL (AuthType AWS_IAM): assume the\n"
        "invoker role with STS, sign the request with SigV4 (service lambda), print the\n"
        "JSON answer on stdout.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("endpoint and role")
    source.add_argument("--url", help="the Function URL (https://<id>.lambda-url.<region>.on.aws/)")
    source.add_argument(
        "--role-arn", metavar="ARN", help="the invoker role to assume (stack output fnUrlRoleArn)"
    )
    source.add_argument(
        "--outputs-file", type=Path, metavar="FILE", help="outputs JSON of `cdk deploy`"
    )
    source.add_argument(
        "--stack-name",
        metavar="NAME",
        help="stack to use: picks one in --outputs-file, or else is read from CloudFormation",
    )

    request = parser.add_argument_group("request")
    what = request.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--body", metavar="FILE", help=f"request body file, sent as is; '{STDIN}' reads stdin"
    )
    what.add_argument(
        "--metadata", action="store_true", help="GET the model schema instead of predicting"
    )
    request.add_argument(
        "--content-type",
        default=DEFAULT_CONTENT_TYPE,
        help=f"Content-Type of the body (default {DEFAULT_CONTENT_TYPE})",
    )
    request.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"per-request connect/read timeout (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    request.add_argument(
        "--retries",
        type=_non_negative_int,
        default=DEFAULT_MAX_ATTEMPTS - 1,
        metavar="N",
        help="retries on 429, 5xx and connection failures, with exponential backoff and "
        f"jitter (default {DEFAULT_MAX_ATTEMPTS - 1})",
    )

    aws = parser.add_argument_group("AWS")
    aws.add_argument(
        "--region",
        help="signing (and STS) region; default: from the URL host, else the outputs' Region",
    )
    aws.add_argument("--profile", help="AWS profile whose credentials assume the role")
    aws.add_argument(
        "--session-name",
        type=_session_name,
        metavar="NAME",
        help="role session name (default ml-invoke-<time>)",
    )
    aws.add_argument(
        "--duration-seconds",
        type=_duration,
        default=DEFAULT_DURATION_SECONDS,
        metavar="SECONDS",
        help=f"role session duration, {MIN_DURATION_SECONDS}-{MAX_DURATION_SECONDS} "
        f"(default {DEFAULT_DURATION_SECONDS})",
    )
    aws.add_argument("--sts-endpoint-url", metavar="URL", help="STS endpoint (e.g. a local moto)")
    aws.add_argument("--cloudformation-endpoint-url", metavar="URL", help="CloudFormation endpoint")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress (never secrets) to stderr"
    )
    return parser


def _run(args: argparse.Namespace) -> Any:  # any JSON value
    body = None if args.metadata else _read_body(args.body)
    boto3_session = _boto3_session(args.profile)
    outputs = _stack_outputs(args, boto3_session)
    client = InferenceClient.from_outputs(
        outputs,
        region=args.region,
        boto3_session=boto3_session,
        sts_endpoint_url=args.sts_endpoint_url,
        session_name=args.session_name,
        duration_seconds=args.duration_seconds,
        timeout=args.timeout,
        retry=RetryPolicy.with_retries(args.retries),
        content_type=args.content_type,
    )
    with client:
        return client.metadata() if args.metadata else client.predict(body)


def _check_source_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    direct = args.url is not None or args.role_arn is not None
    if direct and (args.outputs_file is not None or args.stack_name is not None):
        parser.error("--url/--role-arn cannot be combined with --outputs-file or --stack-name")
    if direct and (args.url is None or args.role_arn is None):
        parser.error("--url and --role-arn go together")
    if not direct and args.outputs_file is None and args.stack_name is None:
        parser.error(
            "say where the endpoint is: --url and --role-arn, --outputs-file, or --stack-name"
        )


def _stack_outputs(args: argparse.Namespace, boto3_session: boto3.Session) -> StackOutputs:
    if args.outputs_file is not None:
        return load_outputs_file(args.outputs_file, stack_name=args.stack_name)
    if args.url is not None:
        return StackOutputs(endpoint_url=args.url, role_arn=args.role_arn)
    region = args.region or boto3_session.region_name
    if not region:
        raise ConfigurationError(
            "reading the stack from CloudFormation needs a region: pass --region"
        )
    cloudformation = boto3_session.client(
        "cloudformation", region_name=region, endpoint_url=args.cloudformation_endpoint_url
    )
    return load_stack_outputs(args.stack_name, cloudformation_client=cloudformation)


def _boto3_session(profile: str | None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile)
    except bx.BotoCoreError as exc:
        raise translate_aws_error(exc, action="loading the AWS profile") or ConfigurationError(
            str(exc)
        ) from None


def _read_body(source: str) -> bytes:
    if source == STDIN:
        stream = getattr(sys.stdin, "buffer", None)
        return stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read body file {source}: {exc.strerror}") from None


def _prog() -> str:
    invoked_as = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "ml-invoke" if invoked_as == "ml-invoke" else "python -m client"


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value!r}")
    return number


def _duration(value: str) -> int:
    seconds = _non_negative_int(value)
    if not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be {MIN_DURATION_SECONDS}-{MAX_DURATION_SECONDS} seconds: {value!r}"
        )
    return seconds


def _session_name(value: str) -> str:
    if not SESSION_NAME_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"2-64 characters of letters, digits and +=,.@_- expected: {value!r}"
        )
    return value
