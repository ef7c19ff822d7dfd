"""`python -m client`: sources of endpoint and role, body input, output, and exit codes.

STS and IAM are moto's; the Function URL is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import requests
from moto import mock_aws
from moto.server import ThreadedMotoServer

from client.cli import main
from client.exit_codes import ExitCode
from tests.contract.test_client_support import (
    ACCOUNT_ID,
    REGION,
    Reply,
    ScriptedServer,
    create_role,
    moto_assumed_role,
    parse_authorization,
    refused_url,
)

ROOT = Path(__file__).resolve().parents[2]
PREDICTIONS = [6.573914, 4.869721]
BODY = b'[{"alcohol": 11.4}]'


@pytest.fixture
def role_arn() -> Iterator[str]:
    with mock_aws():
        yield create_role(boto3.client("iam", region_name=REGION))


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(BODY)
    return path


def outputs_file(tmp_path: Path, url: str, role_arn: str, stack: str = "ml-xgboost-dev") -> Path:
    """What `cdk deploy --outputs-file` writes, for an endpoint served locally."""
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                stack: {
                    "fnUrlRoleArn": role_arn,
                    "EndpointUrl": url,
                    "Region": REGION,
                    "FunctionName": "fn",
                    "AliasName": "Dev",
                }
            }
        )
    )
    return path


def sent_access_key(server: ScriptedServer) -> str:
    authorization = server.requests[-1].header("Authorization") or ""
    return parse_authorization(authorization)["Credential"].split("/")[0]


def test_cli_prints_the_answer_and_exits_0(
    tmp_path: Path, role_arn: str, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a `cdk deploy` outputs file naming the URL and the invoker role
    WHEN the CLI is run with a body file
    THEN it sends the body signed as the role and prints the answer's JSON on stdout."""
    with ScriptedServer(Reply.json(200, PREDICTIONS)) as server:
        code = main(
            [
                "--outputs-file",
                str(outputs_file(tmp_path, server.url, role_arn)),
                "--body",
                str(body_file),
            ]
        )

    captured = capsys.readouterr()
    assert code == ExitCode.OK == 0
    assert json.loads(captured.out) == PREDICTIONS
    assert captured.err == ""
    (request,) = server.requests
    assert request.body == BODY
    assert moto_assumed_role(sent_access_key(server)).role_arn == role_arn


def test_cli_reads_the_body_from_stdin(
    tmp_path: Path,
    role_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stdin_body = b"[[7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4, 1, 0]]"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_body)))
    with ScriptedServer(Reply.json(200, [5.0])) as server:
        code = main(
            ["--outputs-file", str(outputs_file(tmp_path, server.url, role_arn)), "--body", "-"]
        )

    assert code == 0
    assert server.requests[0].body == stdin_body
    assert json.loads(capsys.readouterr().out) == [5.0]


def test_cli_stack_name_picks_the_stack_in_the_outputs_file(
    tmp_path: Path, role_arn: str, body_file: Path
) -> None:
    with (
        ScriptedServer(Reply.json(200, [1.0])) as wanted,
        ScriptedServer(Reply.json(200, [2.0])) as other,
    ):
        path = tmp_path / "outputs.json"
        path.write_text(
            json.dumps(
                {
                    name: {"fnUrlRoleArn": role_arn, "EndpointUrl": url, "Region": REGION}
                    for name, url in (("wanted", wanted.url), ("other", other.url))
                }
            )
        )
        code = main(
            ["--outputs-file", str(path), "--stack-name", "wanted", "--body", str(body_file)]
        )

    assert code == 0
    assert (len(wanted.requests), len(other.requests)) == (1, 0)


def test_cli_url_and_role_arn_given_directly(role_arn: str, body_file: Path) -> None:
    with ScriptedServer(Reply.json(200, PREDICTIONS)) as server:
        code = main(
            [
                "--url",
                server.url,
                "--role-arn",
                role_arn,
                "--region",
                REGION,
                "--body",
                str(body_file),
            ]
        )

    assert code == 0
    credential_scope = parse_authorization(server.requests[0].header("Authorization") or "")
    assert credential_scope["Credential"].split("/")[2] == REGION


def test_cli_stack_name_reads_outputs_from_cloudformation(
    role_arn: str, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(Reply.json(200, PREDICTIONS)) as server:
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}},
            "Outputs": {
                "fnUrlRoleArn": {"Value": role_arn},
                "EndpointUrl": {"Value": server.url},
                "Region": {"Value": {"Ref": "AWS::Region"}},
            },
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="ml-xgboost-dev", TemplateBody=json.dumps(template)
        )
        code = main(
            ["--stack-name", "ml-xgboost-dev", "--region", REGION, "--body", str(body_file)]
        )

    assert code == 0, capsys.readouterr().err
    assert len(server.requests) == 1


def test_cli_session_name_and_duration_reach_sts(
    tmp_path: Path, role_arn: str, body_file: Path
) -> None:
    started = datetime.now(UTC)
    with ScriptedServer(Reply.json(200, PREDICTIONS)) as server:
        code = main(
            [
                "--outputs-file",
                str(outputs_file(tmp_path, server.url, role_arn)),
                "--body",
                str(body_file),
                "--session-name",
                "cli-contract",
                "--duration-seconds",
                "900",
            ]
        )

    assert code == 0
    session = moto_assumed_role(sent_access_key(server))
    assert session.session_name == "cli-contract"
    lifetime = (session.expiration.replace(tzinfo=UTC) - started).total_seconds()
    assert 895 <= lifetime <= 905


def test_cli_metadata_sends_a_signed_get(
    tmp_path: Path, role_arn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = {"features": [{"name": "alcohol", "type": "float"}]}
    with ScriptedServer(Reply.json(200, schema)) as server:
        code = main(
            ["--outputs-file", str(outputs_file(tmp_path, server.url, role_arn)), "--metadata"]
        )

    assert code == 0
    assert json.loads(capsys.readouterr().out) == schema
    assert server.requests[0].method == "GET"
    assert server.requests[0].header("Authorization")


@pytest.mark.parametrize(
    ("reply", "exit_code", "requests", "stderr_has"),
    [
        (Reply.json(403, {"Message": "Forbidden"}), ExitCode.AUTH_FAILURE, 1, "HTTP 403"),
        (
            Reply.error(400, "missing_feature", "row 0: missing feature 'pH'"),
            ExitCode.BAD_REQUEST,
            1,
            "row 0: missing feature 'pH'",
        ),
        (Reply.error(413, "too_many_rows", "at most 10000 rows"), ExitCode.BAD_REQUEST, 1, "10000"),
        (
            Reply.error(500, "internal_error", "request id 7"),
            ExitCode.SERVER_FAILURE,
            2,
            "HTTP 500",
        ),
        (Reply.json(502, {"Message": "Internal server error"}), ExitCode.SERVER_FAILURE, 2, "502"),
    ],
)
def test_cli_exit_codes_for_error_answers(
    tmp_path: Path,
    role_arn: str,
    body_file: Path,
    capsys: pytest.CaptureFixture[str],
    reply: Reply,
    exit_code: ExitCode,
    requests: int,
    stderr_has: str,
) -> None:
    with ScriptedServer(reply) as server:
        code = main(
            [
                "--outputs-file",
                str(outputs_file(tmp_path, server.url, role_arn)),
                "--body",
                str(body_file),
                "--retries",
                "1",
            ]
        )

    captured = capsys.readouterr()
    assert code == exit_code
    assert len(server.requests) == requests
    assert captured.out == ""
    assert stderr_has in captured.err
    assert captured.err.count("\n") == 1, "one line on stderr"


def test_cli_unreachable_endpoint_exits_5(
    tmp_path: Path, role_arn: str, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = outputs_file(tmp_path, refused_url(), role_arn)

    code = main(["--outputs-file", str(path), "--body", str(body_file), "--retries", "0"])

    assert code == ExitCode.SERVER_FAILURE
    assert "cannot reach" in capsys.readouterr().err


def test_cli_timeout_exits_5(
    tmp_path: Path, role_arn: str, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(Reply.json(200, PREDICTIONS, delay_seconds=3)) as server:
        code = main(
            [
                "--outputs-file",
                str(outputs_file(tmp_path, server.url, role_arn)),
                "--body",
                str(body_file),
                "--timeout",
                "0.2",
                "--retries",
                "0",
            ]
        )

    assert code == ExitCode.SERVER_FAILURE
    assert "within 0.2 s" in capsys.readouterr().err


def test_cli_malformed_role_arn_exits_3(
    body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--url",
            "https://abc.lambda-url.eu-west-1.on.aws/",
            "--role-arn",
            "arn:aws:iam::123:role/x",
            "--body",
            str(body_file),
        ]
    )

    assert code == ExitCode.AUTH_FAILURE
    assert "not an IAM role ARN" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "stderr_has"),
    [
        (["--body", "x.json"], "--url and --role-arn, --outputs-file, or --stack-name"),
        (["--url", "https://a.lambda-url.eu-west-1.on.aws/", "--body", "x"], "go together"),
        (["--outputs-file", "o.json", "--url", "u", "--role-arn", "r", "--metadata"], "combined"),
        (["--outputs-file", "o.json"], "one of the arguments --body --metadata is required"),
        (["--outputs-file", "o.json", "--body", "b", "--metadata"], "not allowed with"),
        (["--outputs-file", "o.json", "--metadata", "--duration-seconds", "60"], "900-43200"),
        (["--outputs-file", "o.json", "--metadata", "--timeout", "0"], "must be positive"),
        (["--outputs-file", "o.json", "--metadata", "--retries", "-1"], "must not be negative"),
        (["--outputs-file", "o.json", "--metadata", "--session-name", "a b"], "2-64 characters"),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], stderr_has: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == ExitCode.USAGE
    assert stderr_has in capsys.readouterr().err


def test_cli_bad_local_input_exits_2(
    tmp_path: Path, role_arn: str, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing files, and a local URL whose region cannot be known, are usage errors."""
    local = ["--url", "http://127.0.0.1:9/", "--role-arn", role_arn]
    cases = [
        (["--outputs-file", str(tmp_path / "absent.json"), "--metadata"], "outputs file not found"),
        (
            [
                "--outputs-file",
                str(outputs_file(tmp_path, "http://127.0.0.1:9/", role_arn)),
                "--body",
                str(tmp_path / "absent-body.json"),
            ],
            "cannot read body file",
        ),
        ([*local, "--body", str(body_file)], "pass --region"),
        (
            [
                "--url",
                "http://example.com/",
                "--role-arn",
                role_arn,
                "--region",
                REGION,
                "--metadata",
            ],
            "plain http",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == ExitCode.USAGE, argv
        err = capsys.readouterr().err
        assert message in err
        assert err.count("\n") == 1


def test_cli_help_describes_sources_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    for option in (
        "--url",
        "--role-arn",
        "--outputs-file",
        "--stack-name",
        "--body",
        "--metadata",
        "--sts-endpoint-url",
        "--cloudformation-endpoint-url",
        "--session-name",
        "--duration-seconds",
        "--timeout",
        "--retries",
        "--region",
        "--content-type",
    ):
        assert option in out
    assert "exit codes:" in out
    for code in ExitCode:
        assert f"  {code.value}  " in out


def test_module_entry_point_runs_the_cli() -> None:
    """`python -m client --help` works from a checkout, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-m", "client", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "--outputs-file" in result.stdout


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto as a real server on 127.0.0.1, as the local stand-in runs it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALOCALOPERATOR000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-operator-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        # The backends outlive the server (they are the process's): leave them as mock_aws does.
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=30).raise_for_status()
    finally:
        server.stop()


def test_cli_assumes_the_role_through_sts_endpoint_url(
    moto_endpoint: str, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN STS served over HTTP on 127.0.0.1 (no in-process mocking)
    WHEN the CLI gets --sts-endpoint-url and --cloudformation-endpoint-url
    THEN it reads the stack and assumes the role there."""
    cloudformation = boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint)
    role_arn = create_role(
        boto3.client("iam", region_name=REGION, endpoint_url=moto_endpoint), "local-invoker"
    )
    with ScriptedServer(Reply.json(200, PREDICTIONS)) as server:
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}},
            "Outputs": {
                "fnUrlRoleArn": {"Value": role_arn},
                "EndpointUrl": {"Value": server.url},
                "Region": {"Value": REGION},
            },
        }
        cloudformation.create_stack(StackName="ml-local", TemplateBody=json.dumps(template))
        code = main(
            [
                "--stack-name",
                "ml-local",
                "--region",
                REGION,
                "--cloudformation-endpoint-url",
                moto_endpoint,
                "--sts-endpoint-url",
                moto_endpoint,
                "--body",
                str(body_file),
            ]
        )

    assert code == 0, capsys.readouterr().err
    session = moto_assumed_role(sent_access_key(server))
    assert session.role_arn == role_arn
    assert session.account_id == ACCOUNT_ID
