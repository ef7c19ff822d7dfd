"""Mutation testing with mutmut 3: mutate one package at a time, run the tests that cover it,
print the kill rate per package and the surviving mutants.

    python -m mutation.run                      # every package
    python -m mutation.run handler infra        # some of them
    python -m mutation.run handler -- --max-children 1
    python -m mutation.run infra --rerun-survivors   # after new tests: the survivors again

Each package runs in its own workspace, .mutation/<package>/, a copy of the repository, because
mutmut names a mutant after its file's path and matches it against the `__module__` the tests
import. That holds for infra/, client/ and localurl/ (top-level packages), not for
handler/ml_handler/, which the tests import as `ml_handler` (pytest's pythonpath has handler/).
So the handler's workspace moves it to src/ml_handler/: mutmut strips a leading `src.` from
module names and puts mutants/src on sys.path itself, and pytest's pythonpath is pointed at src/
so that the original, unmutated copy cannot be imported.

mutmut runs, for each mutant, only the tests that called the mutated function, and credits a call
made while a session-scoped fixture is set up to the first test that asked for it: code that runs
only at load time is checked by tests that load inside their own body (tests/unit/test_loading.py).

The report goes to mutation-report/ (report.md, <package>-survivors.diff, stats.json); survivors
justified in mutation/survivors.toml (`[[survivor]]` tables: `mutant`, the full mutmut name, and
`reason`, why it is equivalent or harmless) are marked as such. Exit status 1 if a package with a
target (TARGETS) is below it.

infra's mutants run in mutmut's fork server, not fork mode: see mutation/jsii_fork.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
REPORT = ROOT / "mutation-report"
SURVIVORS_FILE = ROOT / "mutation" / "survivors.toml"
# What a workspace needs from the repository (the tests import every package).
COPIED = (
    "app.py",
    "cdk.json",
    "conftest.py",
    "pyproject.toml",
    "client",
    "data",
    "fuzz",
    "handler",
    "infra",
    "localurl",
    "mutation",
    "tests",
    "training",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "cdk.out*")
TARGETS = {"handler": 90.0, "infra": 90.0}
# mutmut statuses that mean a test (or the interpreter) noticed the mutant.
KILLED = ("killed", "timeout", "segfault", "caught by type check")


@dataclass(frozen=True, kw_only=True)
class Package:
    name: str
    # Where the package sits in its workspace (mutmut's source_paths).
    source: str
    # Fast, in-process tests that exercise it: mutmut only sees calls made in its own process,
    # so tests that reach the code through a subprocess (the image, the local runtime) add time
    # and no kills.
    tests: tuple[str, ...]
    pythonpath: str = ". handler"
    # "fork": each mutant's tests run in a fork of the process that ran them all once (fast).
    # "forkserver": from a clean process instead, for state that must not be shared, like the
    # jsii kernel (one Node process behind pipes) that aws_cdk starts on import.
    isolation: str = "fork"
    # With "forkserver": modules the server imports once before forking (mutmut's "import"
    # warmup). Empty: mutmut's default warmup (collect).
    preload: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    # mutmut's timeout_constant (s), added to a mutant's estimated test time before its CPU and
    # wall limits are multiplied: the estimate leaves out imports and a session's first synth.
    timeout_constant: float = 1.0
    env: dict[str, str] = field(default_factory=dict)


PACKAGES = {
    "handler": Package(
        name="handler",
        source="src/ml_handler",
        tests=(
            "tests/unit/test_batch.py",
            "tests/unit/test_errors.py",
            "tests/unit/test_function_facts.py",
            "tests/unit/test_loading.py",
            "tests/unit/test_logging.py",
            "tests/unit/test_model.py",
            "tests/unit/test_model_cache.py",
            "tests/unit/test_parsing.py",
            "tests/unit/test_properties.py",
            "tests/unit/test_request_fast_path.py",
            # It compares the default model path with handler/model/, which the workspace's
            # layout moves (src/model/); other tests load the default model.
            "--deselect=tests/unit/test_model.py::test_bundled_model_used_when_model_path_env_unset",
        ),
        # handler/ for model_compiler (the unit fixtures compile the small model); it no longer
        # holds ml_handler, which the workspace moved to src/.
        pythonpath=". src handler",
    ),
    "infra": Package(
        name="infra",
        source="infra",
        tests=(
            "tests/contract/test_config.py",
            # In-process only: its `cdk synth` CLI cases reach infra/ through a subprocess.
            "tests/contract/test_config_invalid.py::test_every_key_has_invalid_values_when_listed",
            "tests/contract/test_config_invalid.py::"
            "test_invalid_value_is_a_config_error_naming_the_key_when_given",
            "tests/contract/test_stack_function.py",
            "tests/contract/test_stack_iam.py",
            "tests/contract/test_stack_names.py",
            "tests/contract/test_stack_outputs.py",
            "tests/contract/test_stack_url.py",
            "tests/contract/test_nag.py",
            # Construct ids become logical ids: a renamed construct changes only the snapshot.
            "tests/contract/test_template_snapshot.py",
        ),
        # Not "fork": mutmut's fork mode collects stats in its main process, so every mutant's
        # fork would share that process's jsii kernel (one Node process behind pipes); two
        # children at once interleave their messages and die in ~0.2 s, a false kill (the first
        # run: 492 of 497 "killed" in 2.9 min). The fork server imports aws_cdk once, and each
        # forked pytest session gets a kernel process of its own (mutation/jsii_fork.py).
        isolation="forkserver",
        preload=("mutation.jsii_fork", "pytest", "hypothesis", "syrupy", "localurl.deploy"),
        pytest_args=("-p", "mutation.jsii_fork"),
        # At 1 s, config mutants whose tests reach a synth fixture hit the CPU limit on a busy
        # machine (SIGXCPU, counted as killed although they survive).
        timeout_constant=20.0,
        # The validation-plugin tests (test_nag.py) switch it on for themselves.
        env={"CDK_VALIDATION": "false"},
    ),
    "client": Package(
        name="client",
        source="client",
        tests=(
            "tests/contract/test_client_cli.py",
            "tests/contract/test_client_credentials.py",
            "tests/contract/test_client_invoke.py",
            "tests/contract/test_client_outputs.py",
            "tests/contract/test_client_secrets.py",
            "tests/contract/test_client_signing.py",
            "tests/contract/test_client_support.py",
        ),
    ),
    "localurl": Package(
        name="localurl",
        source="localurl",
        tests=(
            "tests/contract/test_sigv4_verify.py",
            "tests/contract/test_iam_policy.py",
            "tests/contract/test_local_event.py",
            "tests/contract/test_moto_identity.py",
            "tests/contract/test_local_runtime.py",
            "tests/contract/test_local_endpoint.py",
        ),
    ),
}


@dataclass(frozen=True, kw_only=True)
class Result:
    package: str
    counts: dict[str, int]
    survivors: list[str]
    seconds: float

    @property
    def tested(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in ("skipped", "not checked"))

    @property
    def kill_rate(self) -> float:
        killed = sum(self.counts.get(k, 0) for k in KILLED)
        return 100.0 * killed / self.tested if self.tested else 0.0


# mutmut's own state in a workspace: the mutants, their results (*.meta) and the test stats.
MUTMUT_STATE = "mutants"


def prepare_workspace(package: Package, *, keep_results: bool = False) -> Path:
    """A fresh copy of the repository for the package; with keep_results, mutmut's state from
    the last run stays (mutmut copies the refreshed sources and tests into it again)."""
    workspace = WORK / package.name
    if keep_results and (workspace / MUTMUT_STATE).is_dir():
        for entry in workspace.iterdir():
            if entry.name != MUTMUT_STATE:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    else:
        shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workspace / name, ignore=IGNORED)
        elif source.exists():
            shutil.copy2(source, workspace / name)
    if package.name == "handler":
        src = workspace / "src"
        src.mkdir()
        shutil.move(workspace / "handler" / "ml_handler", src / "ml_handler")
        # ml_handler.config finds the bundled model next to its package.
        shutil.copytree(workspace / "handler" / "model", src / "model")
    also_copy = [n for n in COPIED if n not in ("pyproject.toml", "tests", package.source)]
    if package.name == "handler":
        also_copy.append("src/model")
    config = {
        "source_paths": [package.source],
        "also_copy": also_copy,
        "pytest_add_cli_args": [
            "-p",
            "no:cacheprovider",
            "-o",
            f"pythonpath={package.pythonpath}",
            *package.pytest_args,
        ],
        "pytest_add_cli_args_test_selection": list(package.tests),
        "process_isolation": package.isolation,
        "use_git_change_detection": False,
        "timeout_constant": package.timeout_constant,
    }
    if package.preload:
        preload_file = workspace / "mutmut-preload.txt"
        preload_file.write_text("\n".join(package.preload) + "\n")
        config["forkserver_warmup"] = "import"
        config["preload_modules_file"] = str(preload_file)
    with (workspace / "pyproject.toml").open("a") as toml:
        toml.write("\n[tool.mutmut]\n")
        for key, value in config.items():
            toml.write(f"{key} = {json.dumps(value)}\n")
    return workspace


def run_package(
    package: Package, mutmut_args: list[str], *, rerun_survivors: bool = False
) -> Result:
    """Run mutmut on the package; rerun_survivors: only the last run's survivors, again (after
    new tests), keeping every other result."""
    workspace = WORK / package.name
    env = {
        **os.environ,
        **package.env,
        "HYPOTHESIS_PROFILE": "mutation",
        # libgomp's thread pool does not survive fork: a forked child that enters a parallel
        # region (xgboost) spins on a barrier until its CPU limit. One thread: no pool.
        "OMP_NUM_THREADS": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    mutmut = [sys.executable, "-m", "mutmut"]
    names: list[str] = []
    if rerun_survivors:
        if not (workspace / MUTMUT_STATE).is_dir():
            raise SystemExit(f"{package.name}: no earlier run in {workspace} to rerun survivors of")
        # Justified survivors keep their verdict (mutmut retests them anyway if their function
        # changed): only the others can meet the new tests.
        reasons = justified()
        names = [
            name
            for name in (e.split(" ", 1)[0] for e in _results(mutmut, workspace, env)[1])
            if name not in reasons
        ]
    workspace = prepare_workspace(package, keep_results=rerun_survivors)
    if names:
        _forget_results(workspace, set(names))
    started = time.monotonic()
    # mutmut tests every mutant without a result: the forgotten survivors, and the mutants of
    # functions that changed since (it drops those results itself); new tests get their stats.
    subprocess.run([*mutmut, "run", *mutmut_args], cwd=workspace, env=env, check=True)
    seconds = time.monotonic() - started
    counts, survivors = _results(mutmut, workspace, env)
    diffs = []
    for entry in survivors:
        name = entry.split(" ", 1)[0]
        shown = subprocess.run(
            [*mutmut, "show", name], cwd=workspace, env=env, capture_output=True, text=True
        )
        diffs.append(shown.stdout)
    out = REPORT / f"{package.name}-survivors.diff"
    out.write_text("\n".join(diffs))
    return Result(package=package.name, counts=counts, survivors=survivors, seconds=seconds)


def _forget_results(workspace: Path, names: set[str]) -> None:
    """Mark these mutants untested in mutmut's per-file records, so the next run tests them."""
    for meta in (workspace / MUTMUT_STATE).rglob("*.meta"):
        data = json.loads(meta.read_text())
        results = data.get("exit_code_by_key", {})
        if names & results.keys():
            # None, not a missing key: mutmut lists a file's mutants from these keys, and tests
            # those whose result is None (a dropped key would drop the mutant from the run).
            data["exit_code_by_key"] = {k: None if k in names else v for k, v in results.items()}
            meta.write_text(json.dumps(data))


def _results(
    mutmut: list[str], workspace: Path, env: dict[str, str]
) -> tuple[dict[str, int], list[str]]:
    """Counts by status, and the survivors ("name (status)"), from mutmut's results."""
    listing = subprocess.run(
        [*mutmut, "results", "--all", "true"],
        cwd=workspace,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts: dict[str, int] = {}
    survivors: list[str] = []
    for line in listing.splitlines():
        match = re.fullmatch(r"\s*(\S+): (.+)", line)
        if not match:
            continue
        name, status = match.groups()
        counts[status] = counts.get(status, 0) + 1
        if status in ("survived", "no tests"):
            survivors.append(f"{name} ({status})")
    return counts, survivors


def justified() -> dict[str, str]:
    if not SURVIVORS_FILE.exists():
        return {}
    data = tomllib.loads(SURVIVORS_FILE.read_text())
    return {str(m["mutant"]): str(m["reason"]) for m in data.get("survivor", [])}


def report(results: list[Result]) -> str:
    reasons = justified()
    lines = [
        "# Mutation testing (mutmut)",
        "",
        "| package | mutants | killed | survived | no tests | timeout | kill rate | target "
        "| time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        target = TARGETS.get(r.package)
        lines.append(
            f"| {r.package} | {r.tested} | {r.counts.get('killed', 0)} "
            f"| {r.counts.get('survived', 0)} | {r.counts.get('no tests', 0)} "
            f"| {r.counts.get('timeout', 0)} | {r.kill_rate:.1f}% "
            f"| {f'{target:.0f}%' if target else '—'} | {r.seconds / 60:.1f} min |"
        )
    for r in results:
        lines += ["", f"## Survivors: {r.package} ({len(r.survivors)})", ""]
        for entry in r.survivors:
            name = entry.split(" ", 1)[0]
            reason = reasons.get(name)
            lines.append(
                f"- `{entry}`: " + (f"justified: {reason}" if reason else "**not justified**")
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mutmut_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, mutmut_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", choices=list(PACKAGES), default=list(PACKAGES))
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="test only the last run's survivors again (after new tests), keeping other results",
    )
    args = parser.parse_args(argv)
    REPORT.mkdir(exist_ok=True)
    results = [
        run_package(PACKAGES[name], mutmut_args, rerun_survivors=args.rerun_survivors)
        for name in args.packages
    ]
    text = report(results)
    (REPORT / "report.md").write_text(text)
    (REPORT / "stats.json").write_text(
        json.dumps(
            [
                {**r.counts, "package": r.package, "kill_rate": r.kill_rate, "seconds": r.seconds}
                for r in results
            ],
            indent=2,
        )
    )
    print(text)
    below = [r for r in results if r.kill_rate < TARGETS.get(r.package, 0.0)]
    for r in below:
        print(f"{r.package}: kill rate {r.kill_rate:.1f}% is below {TARGETS[r.package]:.0f}%")
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(main())
