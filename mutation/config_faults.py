"""Configuration faults, one context key at a time: each must turn a test red (issue 10).

    python -m mutation.config_faults                    # every fault, both suites
    python -m mutation.config_faults --keys maxRows tags
    python -m mutation.config_faults --suites contract  # skip the e2e deployments
    python -m mutation.config_faults --jobs 2           # two faults at a time

Each fault is a text patch that makes the system ignore one configured value (the default acts
instead). It is applied to a temporary copy of the repository (never to the checkout), and the
suites it names run there with pytest:

* `infra` faults: the stack ignores the value, where infra/config.py reads the context or where a
  construct consumes it. The contract suite (config → template property test, snapshots, stack
  tests) must go red; for the settings the e2e layer deploys (maxRows, timeoutSeconds, aliasName,
  memorySize) the e2e suite must go red on its own as well.
* `deployed` faults: the template is right, but the deployed function does not get the value
  (the stand-in drops it, or the handler reads another variable). Template tests cannot see
  these: tests/e2e/test_configured_system.py must.

Prints a table (key, fault, suite, red/green, failing tests) and the time taken; exit status 1 if
any fault stays green in a suite (or its patch no longer applies), 2 if the unpatched baseline is
not green. Not part of the gate: 32 min with --jobs 2 on the shared 2-core machine (24 contract
runs of 45-100 s, 10 e2e runs of 90-250 s, a baseline of each); --keys or --suites cut it down.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

# What the suites need from the repository (not .git, node_modules or build output): the same
# as a mutmut workspace.
from mutation.run import COPIED, IGNORED, ROOT

F = TypeVar("F")
R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class Suite:
    name: str
    tests: tuple[str, ...]
    # pytest -k per context key: only the key's own tests (and the deployments they need) run.
    by_key: dict[str, str] = field(default_factory=dict)


SUITES = {
    suite.name: suite
    for suite in (
        Suite(
            name="contract",
            tests=(
                "tests/contract/test_config.py",
                "tests/contract/test_config_template.py",
                "tests/contract/test_template_snapshot.py",
                "tests/contract/test_stack_function.py",
                "tests/contract/test_stack_iam.py",
                "tests/contract/test_stack_names.py",
                "tests/contract/test_stack_outputs.py",
                "tests/contract/test_stack_url.py",
            ),
        ),
        Suite(
            name="e2e",
            tests=("tests/e2e/test_configured_system.py",),
            # Only the timeout's tests need the third deployment (the probe).
            by_key={
                "maxRows": "row_limit",
                "aliasName": "alias",
                "memorySize": "memory",
                "timeoutSeconds": "timeout",
            },
        ),
    )
}


@dataclass(frozen=True, kw_only=True)
class Fault:
    key: str
    layer: str  # "infra" or "deployed"
    description: str
    path: str
    old: str
    new: str
    suites: tuple[str, ...]


# The settings tests/e2e/configuration.py deploys: their infra faults run in both suites.
DEPLOYED_KEYS = ("maxRows", "timeoutSeconds", "aliasName", "memorySize")


def _infra(
    key: str, description: str, path: str, old: str, new: str, *, deployed: bool = False
) -> Fault:
    # `deployed`: the e2e suite must see it too (the value reaches the deployed function).
    suites = ("contract", "e2e") if deployed and key in DEPLOYED_KEYS else ("contract",)
    return Fault(
        key=key, layer="infra", description=description, path=path, old=old, new=new, suites=suites
    )


def _deployed(key: str, description: str, path: str, old: str, new: str) -> Fault:
    return Fault(
        key=key,
        layer="deployed",
        description=description,
        path=path,
        old=old,
        new=new,
        suites=("e2e",),
    )


def _context_unread(key: str, old: str) -> Fault:
    # The edge: from_context looks the key up under another name, so the default applies.
    return _infra(
        key,
        f"config.from_context never reads {key}",
        "infra/config.py",
        old,
        old.replace(f'"{key}"', f'"{key}-ignored"'),
    )


_STACK = "infra/stack.py"
_FUNCTION = "infra/inference_function.py"
_DEPLOY = "localurl/deploy.py"

FAULTS: tuple[Fault, ...] = (
    # Where the context is read.
    _context_unread("stackName", 'get("stackName")'),
    _context_unread("functionName", 'get("functionName")'),
    _context_unread("aliasName", 'get("aliasName")'),
    _context_unread("architecture", 'get("architecture")'),
    _context_unread("memorySize", '("memorySize", "memory_size")'),
    _context_unread("timeoutSeconds", '("timeoutSeconds", "timeout_seconds")'),
    _context_unread("logRetentionDays", '("logRetentionDays", "log_retention_days")'),
    _context_unread("maxRows", '("maxRows", "max_rows")'),
    _context_unread("invokerPrincipals", 'get("invokerPrincipals")'),
    _context_unread("tags", 'get("tags")'),
    # Where the stack and its constructs consume the config.
    _infra(
        "stackName",
        "stack name is the default",
        _STACK,
        "stack_name=config.stack_name,",
        'stack_name="CdkMlLambda",',
    ),
    _infra(
        "functionName",
        "function name is generated",
        _STACK,
        "function_name=config.function_name,",
        "function_name=None,",
    ),
    _infra(
        "aliasName",
        "alias is Dev",
        _STACK,
        "alias_name=config.alias_name,",
        'alias_name="Dev",',
        deployed=True,
    ),
    _infra(
        "architecture",
        "function and image are x86_64",
        _FUNCTION,
        "_ARCHITECTURES[props.architecture]",
        "_ARCHITECTURES[Architecture.X86_64]",
    ),
    _infra(
        "architecture",
        "function is x86_64 (image as configured)",
        _FUNCTION,
        "architecture=architecture,",
        "architecture=lambda_.Architecture.X86_64,",
    ),
    _infra(
        "architecture",
        "image is linux/amd64 (function as configured)",
        _FUNCTION,
        "from_image_asset(str(props.handler_dir))",
        # CDK builds the asset for the function's architecture unless a platform is given.
        'from_image_asset(str(props.handler_dir), platform=__import__("aws_cdk").aws_ecr_assets'
        ".Platform.LINUX_AMD64)",
    ),
    _infra(
        "memorySize",
        "MemorySize 1024",
        _FUNCTION,
        "memory_size=props.memory_size,",
        "memory_size=1024,",
        deployed=True,
    ),
    _infra(
        "timeoutSeconds",
        "Timeout 30 s",
        _FUNCTION,
        "Duration.seconds(props.timeout_seconds)",
        "Duration.seconds(30)",
        deployed=True,
    ),
    _infra(
        "logRetentionDays",
        "retention 30 days",
        _FUNCTION,
        "RETENTION_BY_DAYS[props.log_retention_days]",
        "RETENTION_BY_DAYS[30]",
    ),
    _infra(
        "maxRows",
        "MAX_ROWS=10000 in the environment",
        _FUNCTION,
        '"MAX_ROWS": str(props.max_rows)',
        '"MAX_ROWS": "10000"',
        deployed=True,
    ),
    _infra(
        "maxRows",
        "the variable is misnamed (MAX_ROW): the handler's default applies",
        _FUNCTION,
        '"MAX_ROWS": str(props.max_rows)',
        '"MAX_ROW": str(props.max_rows)',
    ),
    _infra(
        "aliasName",
        "URL on the function ($LATEST), not the alias",
        _FUNCTION,
        "self.url = self.alias.add_function_url(",
        "self.url = self.function.add_function_url(",
        deployed=True,
    ),
    _infra(
        "invokerPrincipals",
        "invoker role trusts the account",
        _STACK,
        "trusted_principal_arns=config.invoker_principal_arns",
        "trusted_principal_arns=()",
    ),
    _infra("tags", "stack untagged", _STACK, "tags=dict(config.tags) or None,", "tags=None,"),
    # The template is right; the deployed function does not get the value.
    _deployed(
        "maxRows",
        "function environment not passed to the handler (stand-in)",
        _DEPLOY,
        "environment={**image.env, **spec.environment},",
        "environment=dict(image.env),",
    ),
    _deployed(
        "maxRows",
        "handler reads another variable than MAX_ROWS (copy only)",
        "handler/ml_handler/config.py",
        '_positive_int(env, "MAX_ROWS", DEFAULT_MAX_ROWS)',
        '_positive_int(env, "MAX_ROWS_IGNORED", DEFAULT_MAX_ROWS)',
    ),
    _deployed(
        "timeoutSeconds",
        "function runs with a 30 s timeout (stand-in)",
        _DEPLOY,
        "timeout_seconds=spec.timeout_seconds,",
        "timeout_seconds=30,",
    ),
    _deployed(
        "memorySize",
        "function told 1024 MB (stand-in)",
        _DEPLOY,
        "memory_mb=spec.memory_mb,",
        "memory_mb=1024,",
    ),
    _deployed(
        "aliasName",
        "URL invokes the unqualified function (stand-in)",
        _DEPLOY,
        'f"{function_arn}:{spec.url_qualifier}" if spec.url_qualifier else function_arn',
        "function_arn",
    ),
)


class StalePatchError(RuntimeError):
    """The text a fault replaces is not in the file exactly once: the code moved on."""


@dataclass(frozen=True, kw_only=True)
class SuiteRun:
    suite: str
    returncode: int
    failed: tuple[str, ...]
    errors: tuple[str, ...]
    seconds: float

    @property
    def red(self) -> bool:
        return self.returncode != 0

    @property
    def verdict(self) -> str:
        if not self.red:
            return "GREEN"
        if self.failed:
            return "red"
        # A crash in setup (e.g. the deploy) turns the gate red too, but says less.
        return "red (errors only)" if self.errors else f"red (exit {self.returncode})"


@dataclass(frozen=True, kw_only=True)
class FaultResult:
    fault: Fault
    runs: tuple[SuiteRun, ...] = ()
    stale: str = ""

    @property
    def caught(self) -> bool:
        return not self.stale and all(run.red for run in self.runs)


def prepare_workspace(workspace: Path) -> None:
    workspace.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workspace / name, ignore=IGNORED)
        else:
            shutil.copy2(source, workspace / name)


def apply(fault: Fault, workspace: Path) -> None:
    target = workspace / fault.path
    text = target.read_text()
    if (count := text.count(fault.old)) != 1:
        raise StalePatchError(f"{fault.path}: {fault.old!r} found {count} times, expected once")
    target.write_text(text.replace(fault.old, fault.new))


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        # Derandomized examples, as mutation/run.py uses: a verdict repeats.
        "HYPOTHESIS_PROFILE": "mutation",
        "PYTHONDONTWRITEBYTECODE": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


def _test_id(case: ET.Element) -> str:
    module = case.get("classname", "").rsplit(".", 1)[-1]
    return f"{module}::{case.get('name', '?')}"


def run_suite(suite: Suite, workspace: Path, *, key: str | None = None) -> SuiteRun:
    junit = workspace / f"junit-{suite.name}.xml"
    started = time.monotonic()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            *(("-k", suite.by_key[key]) if key in suite.by_key else ()),
            *suite.tests,
        ],
        cwd=workspace,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    failed: list[str] = []
    errors: list[str] = []
    if junit.exists():
        # Written by the pytest run just above, not untrusted input.
        for case in ET.parse(junit).iter("testcase"):  # noqa: S314
            if case.find("failure") is not None:
                failed.append(_test_id(case))
            elif case.find("error") is not None:
                errors.append(_test_id(case))
    elif completed.returncode != 0:
        errors.append(completed.stderr.strip().splitlines()[-1:][0] if completed.stderr else "?")
    return SuiteRun(
        suite=suite.name,
        returncode=completed.returncode,
        failed=tuple(failed),
        errors=tuple(errors),
        seconds=seconds,
    )


def run_each(run: Callable[[F, Path], R], faults: Sequence[F], *, work: Path, jobs: int) -> list[R]:
    """run(fault, workspace) for every fault, `jobs` at a time, each in work/fault-NN."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda n: run(faults[n], work / f"fault-{n:02d}"), range(len(faults))))


def run_fault(fault: Fault, workspace: Path) -> FaultResult:
    try:
        prepare_workspace(workspace)
        try:
            apply(fault, workspace)
        except StalePatchError as exc:
            return FaultResult(fault=fault, stale=str(exc))
        return FaultResult(
            fault=fault,
            runs=tuple(run_suite(SUITES[name], workspace, key=fault.key) for name in fault.suites),
        )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _names(tests: Sequence[str], limit: int = 5) -> str:
    # One entry per test function: parametrized cases collapse into a count.
    counts: dict[str, int] = {}
    for test in tests:
        name = test.split("[", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    names = [f"{name} ({n} cases)" if n > 1 else name for name, n in counts.items()]
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def table(results: Sequence[FaultResult]) -> str:
    lines = [
        "| key | layer | injected fault | suite | verdict | red tests | s |",
        "|---|---|---|---|---|---|---:|",
    ]
    for result in results:
        fault = result.fault
        head = f"| {fault.key} | {fault.layer} | {fault.description}"
        if result.stale:
            lines.append(f"{head} | - | STALE PATCH | {result.stale} | |")
        for run in result.runs:
            lines.append(
                f"{head} | {run.suite} | {run.verdict} | "
                f"{_names(run.failed or run.errors)} | {run.seconds:.0f} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mutation.config_faults", description=__doc__)
    parser.add_argument("--keys", nargs="+", help="only the faults of these context keys")
    parser.add_argument("--suites", nargs="+", choices=sorted(SUITES), help="only these suites")
    parser.add_argument("--jobs", type=int, default=1, help="faults run at a time (default 1)")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the unpatched run that must be green"
    )
    return parser.parse_args(argv)


def selected(args: argparse.Namespace) -> list[Fault]:
    faults = []
    for fault in FAULTS:
        if args.keys and fault.key not in args.keys:
            continue
        suites = tuple(s for s in fault.suites if not args.suites or s in args.suites)
        if suites:
            faults.append(replace(fault, suites=suites))
    return faults


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    faults = selected(args)
    if not faults:
        print("no fault matches the selection", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="config-faults-") as tmp:
        work = Path(tmp)
        if not args.no_baseline:
            baseline = work / "baseline"
            prepare_workspace(baseline)
            needed = sorted({name for fault in faults for name in fault.suites})
            runs = [run_suite(SUITES[name], baseline) for name in needed]
            shutil.rmtree(baseline, ignore_errors=True)
            for run in runs:
                print(f"baseline {run.suite}: {run.verdict.lower()} in {run.seconds:.0f} s")
            if any(run.red for run in runs):
                print("the unpatched copy is not green: no verdict on faults", file=sys.stderr)
                for run in runs:
                    print(f"  {run.suite}: {_names(run.failed or run.errors, 10)}", file=sys.stderr)
                return 2
        results = run_each(run_fault, faults, work=work, jobs=args.jobs)
    print(table(results))
    survivors = [r for r in results if not r.caught]
    print(
        f"\n{len(results) - len(survivors)}/{len(results)} faults red in every suite they ran in; "
        f"{time.monotonic() - started:.0f} s in all (--jobs {args.jobs})"
    )
    for result in survivors:
        print(f"NOT CAUGHT: {result.fault.key}: {result.fault.description}", file=sys.stderr)
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
