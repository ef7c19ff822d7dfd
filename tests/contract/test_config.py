"""StackConfig.from_context: parsing, validation with clear messages, and one-way configuration."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.config import LOG_RETENTION_DAYS, Architecture, ConfigError, StackConfig
from infra.inference_function import RETENTION_BY_DAYS, InferenceFunctionProps
from infra.invoker_role import InvokerRoleProps

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def _from(context: dict[str, object]) -> StackConfig:
    return StackConfig.from_context(context.get)


def test_config_keeps_defaults_when_context_is_empty():
    assert _from({}) == StackConfig()
    config = StackConfig()
    assert (config.stack_name, config.function_name, config.alias_name) == (
        "CdkMlLambda",
        None,
        "Dev",
    )
    assert (config.architecture, config.memory_size, config.timeout_seconds) == (
        Architecture.X86_64,
        1024,
        30,
    )
    assert config.invoker_principal_arns == ()


def test_config_parses_cli_strings_when_every_key_is_given():
    # `cdk synth -c key=value` passes every value as a string.
    config = _from(
        {
            "stackName": "ml-xgboost-dev",
            "functionName": "ML-XGBoost",
            "aliasName": "Prod",
            "architecture": "arm64",
            "memorySize": "2048",
            "timeoutSeconds": "60",
            "logRetentionDays": "90",
            "maxRows": "500",
            "invokerPrincipals": (
                "arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:user/b"
            ),
            "tags": "team=ml, env=dev",
        }
    )
    assert config == StackConfig(
        stack_name="ml-xgboost-dev",
        function_name="ML-XGBoost",
        alias_name="Prod",
        architecture=Architecture.ARM64,
        memory_size=2048,
        timeout_seconds=60,
        log_retention_days=90,
        max_rows=500,
        invoker_principal_arns=(
            "arn:aws:iam::111122223333:role/a",
            "arn:aws:iam::111122223333:user/b",
        ),
        tags={"team": "ml", "env": "dev"},
    )


def test_config_parses_json_types_when_given_in_cdk_json():
    config = _from(
        {
            "memorySize": 512,
            "invokerPrincipals": ["arn:aws:iam::111122223333:role/a"],
            "tags": {"team": "ml"},
        }
    )
    assert config.memory_size == 512
    assert config.invoker_principal_arns == ("arn:aws:iam::111122223333:role/a",)
    assert config.tags == {"team": "ml"}


def test_config_leaves_function_name_generated_when_given_empty():
    assert _from({"functionName": ""}).function_name is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"architecture": "x86"}, "architecture must be x86_64 or arm64, got 'x86'"),
        ({"architecture": "ARM64"}, "architecture must be x86_64 or arm64"),
        ({"memorySize": "1GB"}, "memorySize must be an integer, got '1GB'"),
        ({"memorySize": "64"}, "memorySize must be 128..10240 MB, got 64"),
        ({"memorySize": 20480}, "memorySize must be 128..10240 MB, got 20480"),
        ({"memorySize": True}, "memorySize must be an integer"),
        ({"timeoutSeconds": "901"}, "timeoutSeconds must be 1..900 s, got 901"),
        ({"logRetentionDays": "10"}, "logRetentionDays must be one of"),
        ({"maxRows": "0"}, "maxRows must be positive, got 0"),
        ({"stackName": "1stack"}, "stackName '1stack' is not a valid stack name"),
        ({"stackName": "my_stack"}, "stackName 'my_stack' is not a valid stack name"),
        ({"functionName": "ML XGBoost"}, "functionName 'ML XGBoost' is not a valid Lambda name"),
        ({"aliasName": "1"}, "aliasName '1' is not a valid alias name"),
        (
            {"invokerPrincipals": "arn:aws:iam::111122223333:root"},
            "invokerPrincipals: 'arn:aws:iam::111122223333:root' is not an IAM role or user ARN",
        ),
        (
            {"invokerPrincipals": "arn:aws:iam::1234:role/short-account"},
            "is not an IAM role or user ARN",
        ),
        ({"invokerPrincipals": "*"}, "invokerPrincipals: '*' is not an IAM role or user ARN"),
        ({"tags": "team"}, "tags must be key=value pairs separated by commas, got 'team'"),
        ({"tags": "aws:owner=me"}, "tags: 'aws:owner' is not a valid tag key"),
        ({"tags": "__proto__=x"}, "tags: '__proto__' cannot be passed through the CDK"),
    ],
)
def test_config_rejects_with_a_clear_message_when_context_is_invalid(context, message):
    with pytest.raises(ConfigError) as raised:
        _from(context)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"stackName": "my_stack"},
            "stackName 'my_stack' is not a valid stack name "
            "(a letter, then up to 127 letters, digits or hyphens)",
        ),
        (
            {"functionName": "ML XGBoost"},
            "functionName 'ML XGBoost' is not a valid Lambda name "
            "(1-64 letters, digits, hyphens or underscores)",
        ),
        (
            {"aliasName": "1"},
            "aliasName '1' is not a valid alias name "
            "(1-128 letters, digits, hyphens or underscores, not only digits)",
        ),
        (
            {"invokerPrincipals": "*"},
            "invokerPrincipals: '*' is not an IAM role or user ARN "
            "(arn:aws:iam::123456789012:role/NAME or :user/NAME)",
        ),
        (
            {"tags": "__proto__=x"},
            "tags: '__proto__' cannot be passed through the CDK as a tag key",
        ),
        ({"architecture": 64}, "architecture must be a string, got 64"),
    ],
)
def test_config_message_reads_in_full_when_a_name_is_invalid(context, message):
    # The whole line `cdk synth` prints: the rule in it is what the user fixes the value by.
    with pytest.raises(ConfigError) as raised:
        _from(context)
    assert str(raised.value) == message


def test_config_accepts_one_row_when_max_rows_is_its_lowest():
    assert _from({"maxRows": "1"}).max_rows == 1
    assert StackConfig(max_rows=1).max_rows == 1


def test_config_skips_empty_principals_when_commas_repeat_or_trail():
    role = "arn:aws:iam::111122223333:role/caller"
    user = "arn:aws:iam::111122223333:user/ci"
    assert _from({"invokerPrincipals": f",{role},, {user},"}).invoker_principal_arns == (
        role,
        user,
    )
    assert _from({"invokerPrincipals": ["", role, " "]}).invoker_principal_arns == (role,)


def test_app_exits_with_one_line_naming_the_key_when_context_is_invalid(tmp_path):
    # What `cdk synth -c architecture=sparc` shows: the CLI hands context to app.py this way.
    completed = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_CONTEXT_JSON": json.dumps({"architecture": "sparc"}),
            "CDK_OUTDIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr == "cdk context: architecture must be x86_64 or arm64, got 'sparc'\n"


@given(st.integers(min_value=-(2**20), max_value=2**20))
def test_config_accepts_memory_only_within_lambda_limits_when_any_integer(memory):
    if 128 <= memory <= 10240:
        assert _from({"memorySize": str(memory)}).memory_size == memory
    else:
        with pytest.raises(ConfigError, match="memorySize"):
            _from({"memorySize": str(memory)})


def test_config_retention_choices_all_have_a_cdk_retention_when_configured():
    assert set(LOG_RETENTION_DAYS) == set(RETENTION_BY_DAYS)


@pytest.mark.parametrize("props_type", [StackConfig, InferenceFunctionProps, InvokerRoleProps])
def test_props_are_frozen_and_keyword_only_when_constructed(props_type):
    params = getattr(props_type, "__dataclass_params__", None)
    assert params is not None, f"{props_type.__name__} is not a dataclass"
    assert params.frozen, f"{props_type.__name__} is not frozen"
    assert all(f.kw_only for f in dataclasses.fields(props_type)), props_type.__name__


def _environment_reads(source: str) -> list[int]:
    """Lines reading process environment: os.environ, os.getenv, or `from os import environ`."""
    names = {"environ", "environb", "getenv"}

    def reads(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in names
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            return bool({a.name for a in node.names} & names)
        return False

    return sorted(node.lineno for node in ast.walk(ast.parse(source)) if reads(node))


def test_infra_reads_no_environment_variables_when_imported():
    # Configuration flows one way: app.py reads context and environment, constructs get typed props.
    modules = sorted(INFRA.glob("*.py"))
    assert modules
    offenders = {p.name: lines for p in modules if (lines := _environment_reads(p.read_text()))}
    assert offenders == {}


def test_environment_read_detector_finds_os_environ_when_present():
    assert _environment_reads("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n") == [2, 3]
    assert _environment_reads("from os import environ\n") == [1]


def test_config_rejects_naming_the_first_bad_tag_when_cdk_json_values_are_not_text():
    # cdk.json null or true would become the tag values "None" or "True"; the first one is named.
    with pytest.raises(ConfigError) as raised:
        _from({"tags": {"team": "ml", "owner": None, "live": True}})
    assert str(raised.value) == "tags: the value of 'owner' must be a string or an integer"
    with pytest.raises(ConfigError, match="the value of 'live' must be a string or an integer"):
        _from({"tags": {"live": True}})


def test_config_keeps_integer_tag_values_as_text_when_given_in_cdk_json():
    assert _from({"tags": {"cost-center": 4711, "team": "ml"}}).tags == {
        "cost-center": "4711",
        "team": "ml",
    }


def test_config_skips_empty_tag_pairs_when_commas_repeat():
    assert _from({"tags": "team=ml,, ,owner=ds,"}).tags == {"team": "ml", "owner": "ds"}


def test_config_splits_a_tag_at_its_first_equals_sign_when_the_value_holds_one():
    assert _from({"tags": "query=a=b,owner=ds"}).tags == {"query": "a=b", "owner": "ds"}


@pytest.mark.parametrize(
    ("key", "attr", "edges"),
    [("memorySize", "memory_size", (128, 10240)), ("timeoutSeconds", "timeout_seconds", (1, 900))],
)
def test_config_accepts_both_lambda_limits_when_given_exactly(key, attr, edges):
    # Lambda's own limits (128 MB..10 GB, 1..900 s) are valid settings, not off-by-one errors.
    for edge in edges:
        assert getattr(_from({key: str(edge)}), attr) == edge
