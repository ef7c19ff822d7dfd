"""Invalid values of every context key: a ConfigError naming the key, and from `cdk synth` (the
pinned CLI) one line from the app, no traceback, for cdk.json values and `-c` strings alike.

The in-process property tests draw invalid values by construction (a valid value broken in one
way, or a JSON type the key cannot take); the app's entry point is run in-process for every key
and form on the context the CLI would hand it; the CLI itself runs once per form.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import app as app_module
from infra.config import ConfigError, StackConfig
from tests.contract.config_cases import (
    KEYS,
    RETENTION_DAYS,
    alias_names,
    function_names,
    principal_arns,
    stack_names,
)

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / ".bin" / "cdk"
INVALID_EXAMPLES = min(settings.default.max_examples, 100)

_NOT_A_STRING = st.one_of(
    st.integers(), st.booleans(), st.floats(), st.lists(st.integers(), max_size=2)
)
_NOT_AN_INTEGER = st.one_of(
    st.booleans(),
    # Even 1024.0: a cdk.json number with a fraction part is not an integer setting.
    st.floats(allow_nan=True),
    st.text(string.ascii_letters + ".,-e ", min_size=1).filter(lambda s: s.strip() != ""),
    st.just(""),
    st.lists(st.integers(), max_size=1),
)


@st.composite
def _broken(draw: st.DrawFn, valid: st.SearchStrategy[str], bad_chars: str) -> str:
    """A valid value with one character it may not contain inserted somewhere."""
    text = draw(valid)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(bad_chars)) + text[at:]


# Characters no stack, function or alias name may hold; "\n" at the end once passed a `$` regex.
_NAME_BREAKERS = " .:/@!*\n\t\u00e9\u0661"


def _outside(low: int, high: int | None = None) -> st.SearchStrategy[int]:
    below = st.integers(max_value=low - 1)
    return below if high is None else st.one_of(below, st.integers(min_value=high + 1))


def _not_an_accepted_integer(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    # A cdk.json number, the same as a `-c` string, or no integer at all.
    return st.one_of(ints, ints.map(str), _NOT_AN_INTEGER)


_bad_arns = st.one_of(
    # Not whitespace: an item is stripped, so a space at either end would be harmless.
    _broken(principal_arns(commas=False), "*#!"),
    st.sampled_from(
        [
            "*",
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::11112222333:role/eleven-digits",
            # Arabic-Indic digits: \d matches them unless the pattern is ASCII-only.
            f"arn:aws:iam::{chr(0x661) * 12}:role/x",
            "arn:aws:iam::111122223333:group/devs",
            "arn:aws:sts::111122223333:assumed-role/r/s",
            "lambda.amazonaws.com",
            "111122223333",
        ]
    ),
)


@st.composite
def _bad_principals(draw: st.DrawFn) -> Any:
    good = draw(st.lists(principal_arns(commas=False), max_size=2))
    items = [*good]
    items.insert(draw(st.integers(0, len(items))), draw(_bad_arns))
    return items if draw(st.booleans()) else ",".join(items)


_tag_text = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=10)


@st.composite
def _bad_tags(draw: st.DrawFn) -> Any:
    key, value = draw(_tag_text), draw(_tag_text)
    kind = draw(st.sampled_from(["no-equals", "empty-key", "reserved", "key-char", "value-char"]))
    kind += draw(st.sampled_from(["", "+json"])) if kind in ("reserved", "key-char") else ""
    if kind == "no-equals":
        return f"{key}=ok,{key}x"
    if kind == "empty-key":
        return f"={value}"
    if kind.startswith("reserved"):
        key = draw(st.sampled_from(["aws:", "AWS:", "Aws:"])) + key
    elif kind == "key-char":
        key = draw(_broken(_tag_text, "!#$%&*"))  # `-c` pairs are stripped: no whitespace
    elif kind == "key-char+json":
        key = draw(_broken(_tag_text, "!#$%&*\n\t"))
    else:
        # Only a cdk.json value can hold a comma, or a type that is not text.
        return {key: draw(st.one_of(_broken(_tag_text, "!#,\n"), st.none(), st.booleans()))}
    return {key: value} if kind.endswith("+json") else f"{key}={value}"


def _too_long(valid: st.SearchStrategy[str], limit: int) -> st.SearchStrategy[str]:
    return st.tuples(valid, st.integers(1, 20)).map(lambda t: (t[0] * (limit + 20))[: limit + t[1]])


INVALID: Mapping[str, st.SearchStrategy[Any]] = {
    "stackName": st.one_of(
        _broken(stack_names, _NAME_BREAKERS + "_"),
        st.sampled_from(string.digits + "-").map(lambda c: c + "Stack"),
        st.just(""),
        _too_long(stack_names, 128),
        _NOT_A_STRING,
    ),
    "functionName": st.one_of(
        _broken(function_names, _NAME_BREAKERS), _too_long(function_names, 64), _NOT_A_STRING
    ),
    "aliasName": st.one_of(
        _broken(alias_names, _NAME_BREAKERS),
        st.text(string.digits, min_size=1, max_size=5),
        st.just(""),
        _too_long(alias_names, 128),
        _NOT_A_STRING,
    ),
    "architecture": st.one_of(
        st.text(max_size=10).filter(lambda s: s not in ("x86_64", "arm64")),
        st.sampled_from(["X86_64", "ARM64", "amd64", "aarch64", "x86_64 ", "arm64\n"]),
        _NOT_A_STRING,
    ),
    "memorySize": _not_an_accepted_integer(_outside(128, 10_240)),
    "timeoutSeconds": _not_an_accepted_integer(_outside(1, 900)),
    "logRetentionDays": _not_an_accepted_integer(
        st.integers(-(10**6), 10**6).filter(lambda n: n not in RETENTION_DAYS)
    ),
    "maxRows": _not_an_accepted_integer(_outside(1)),
    "invokerPrincipals": _bad_principals(),
    "tags": _bad_tags(),
}


def test_every_key_has_invalid_values_when_listed():
    assert set(INVALID) == set(KEYS)


@pytest.mark.parametrize("key", KEYS)
@settings(max_examples=INVALID_EXAMPLES)
@given(data=st.data())
def test_invalid_value_is_a_config_error_naming_the_key_when_given(key, data):
    """Property: any invalid value of any key, as `-c` string or cdk.json value, raises a
    one-line ConfigError that starts with the key's name."""
    value = data.draw(INVALID[key], label=key)
    with pytest.raises(ConfigError) as raised:
        StackConfig.from_context({key: value}.get)
    message = str(raised.value)
    assert message.startswith(key), message
    assert "\n" not in message


# One invalid value per key and form, chosen to reach each key's own checks through the CLI.
CLI_CASES: Mapping[str, tuple[str, Any]] = {
    # key: (`-c` string, cdk.json value)
    "stackName": ("1stack", 42),
    "functionName": ("ML XGBoost", False),
    "aliasName": ("123", True),
    "architecture": ("ARM64", 64),
    "memorySize": ("64", True),
    "timeoutSeconds": ("0", 901),
    "logRetentionDays": ("10", "thirty"),
    "maxRows": ("0", -1),
    "invokerPrincipals": ("arn:aws:iam::111122223333:root", ["*"]),
    "tags": ("team", {"aws:owner": "me"}),
}


def _cli_env(home: Path) -> dict[str, str]:
    # No AWS credentials or profile, a fresh HOME; the CLI runs `python3 app.py` from this venv.
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "HOME": str(home),
        "CDK_HOME": str(home / ".cdk"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "JSII_RUNTIME_PACKAGE_CACHE_ROOT": os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT")
        or str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache"),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }


CliResult = tuple[subprocess.CompletedProcess[str], str]  # and the app command the CLI ran


def _cdk_synth(workdir: Path, key: str, form: str) -> CliResult:
    """`cdk synth` with one invalid value: in a copy of cdk.json, or as `-c key=value`."""
    cli_value, json_value = CLI_CASES[key]
    workdir.mkdir(parents=True)
    (workdir / "home").mkdir()
    args = ["synth", "--no-notices", "-q", "--output", str(workdir / "cdk.out")]
    if form == "cdk.json":
        project = json.loads((ROOT / "cdk.json").read_text())
        app = f"python3 {ROOT / 'app.py'}"
        project["app"] = app
        project["context"][key] = json_value
        (workdir / "cdk.json").write_text(json.dumps(project))
        cwd = workdir
    else:
        app = json.loads((ROOT / "cdk.json").read_text())["app"]
        args += ["-c", f"{key}={cli_value}"]
        cwd = ROOT
    completed = subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env=_cli_env(workdir / "home"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return completed, app


# The CLI itself runs for one key per form: what it adds (a `-c` value reaches the app as a string,
# a cdk.json value as JSON; its own line about the subprocess; nothing on stdout) is the same for
# every key. Each key's line is proven below by the app's main() on the context the CLI builds.
CLI_RUNS = (("memorySize", "-c"), ("tags", "cdk.json"))


@pytest.fixture(scope="module")
def cli_runs(
    tmp_path_factory,
) -> dict[tuple[str, str], tuple[subprocess.CompletedProcess[str], str]]:
    assert CLI.exists(), "the pinned CDK CLI is missing: run `npm ci` (tox's commands_pre does)"
    root = tmp_path_factory.mktemp("cli-invalid")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(
            lambda job: _cdk_synth(root / f"{job[0]}-{job[1].strip('-.')}", *job), CLI_RUNS
        )
        return dict(zip(CLI_RUNS, results, strict=True))


@pytest.mark.parametrize(("key", "form"), CLI_RUNS)
def test_cdk_synth_prints_one_line_naming_the_key_when_a_value_is_invalid(cli_runs, key, form):
    completed, app = cli_runs[(key, form)]
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr, completed.stderr
    # The app's one line, then the CLI's own about the subprocess; nothing on stdout.
    lines = completed.stderr.splitlines()
    assert len(lines) == 2, completed.stderr
    assert lines[0].startswith(f"cdk context: {key}"), completed.stderr
    assert lines[1] == f"{app}: Subprocess exited with error 1", completed.stderr
    assert completed.stdout == ""


def test_cli_runs_cover_both_forms():
    assert {form for _, form in CLI_RUNS} == {"-c", "cdk.json"}
    assert set(CLI_CASES) == set(KEYS)


@pytest.mark.parametrize("form", ["-c", "cdk.json"])
@pytest.mark.parametrize("key", KEYS)
def test_app_exits_with_one_line_naming_the_key_when_the_cli_passes_an_invalid_value(
    key, form, monkeypatch, capsys
):
    # GIVEN the context the CLI hands app.py (CDK_CONTEXT_JSON): cdk.json's, with one key invalid,
    # as the `-c` string or as the cdk.json value
    cli_value, json_value = CLI_CASES[key]
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context[key] = cli_value if form == "-c" else json_value
    # (the jsii kernel read its environment at import, so the context goes in as the App's own:
    # aws-cdk-lib merges CDK_CONTEXT_JSON into exactly this)
    real_app = cdk.App
    monkeypatch.setattr(app_module.cdk, "App", lambda: real_app(context=context))
    # WHEN the app's entry point runs
    with pytest.raises(SystemExit) as exited:
        app_module.main()
    # THEN it exits with one line naming the key, and prints nothing else
    message = str(exited.value.code)
    assert message.startswith(f"cdk context: {key}"), message
    assert "\n" not in message
    assert capsys.readouterr() == ("", "")
