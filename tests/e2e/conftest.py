"""The e2e session's deployments of the real app: the local stand-in, or AWS (--target aws).

`deployment` is the default configuration; `configured_deployment` is one non-default
configuration (configuration.E2E_CONFIGURED_CONTEXT, which the template snapshot covers too), and
`timeout_probe_deployment` the same configuration with the timeout probe's code. Locally all of
them live in one LocalSystem (one moto, one synth each).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

import pytest

from localurl.deploy import LocalSystem
from tests.e2e.configuration import E2E_CONFIGURED_CONTEXT
from tests.e2e.targets import (
    ROOT,
    AwsTimeouts,
    Deployment,
    E2ESetupError,
    SessionBudget,
    aws_deployment,
    local_deployment,
    local_run_id,
    unique_stack_name,
)
from tests.e2e.timeout_probe import APP as TIMEOUT_PROBE_APP

# A test body's cap (pytest-timeout). Fixture setup, i.e. a whole `cdk deploy` of an AWS run,
# is not under it: that has its own caps (targets.AwsTimeouts) inside the session's budget.
BODY_TIMEOUT_SECONDS = 180
# The e2e session's whole time on AWS, teardown included (the nightly workflow adds it up).
DEFAULT_SESSION_MINUTES = 70.0
_BUDGET = pytest.StashKey[SessionBudget]()
_TIMEOUTS = pytest.StashKey[AwsTimeouts]()


def pytest_configure(config: pytest.Config) -> None:
    """Read the run's settings once; make SIGTERM (a cancelled job, tox's escalation) unwind
    like SIGINT, so every fixture's `finally` reaches DeleteStack."""
    config.stash[_BUDGET] = SessionBudget(
        seconds=float(os.environ.get("E2E_SESSION_MINUTES") or DEFAULT_SESSION_MINUTES) * 60
    )
    poll = os.environ.get("E2E_POLL_SECONDS")  # the rehearsal's moto needs no 5 s pause
    config.stash[_TIMEOUTS] = AwsTimeouts(poll_seconds=float(poll)) if poll else AwsTimeouts()
    if config.getoption("--target") == "aws":  # locally, nothing outlives the process
        install_cleanup_signal_handlers()


def install_cleanup_signal_handlers() -> None:
    """The first SIGINT or SIGTERM raises KeyboardInterrupt (Python's default for SIGTERM is to
    die on the spot, skipping every `finally`); later ones are ignored, so that the cleanup
    the first one started (DeleteStack and its wait) is not interrupted in turn."""

    def ignore(signum: int, frame: FrameType | None) -> None:
        del frame
        print(f"e2e: {signal.Signals(signum).name} ignored: cleaning up", file=sys.stderr)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        del frame
        signal.signal(signal.SIGINT, ignore)
        signal.signal(signal.SIGTERM, ignore)
        raise KeyboardInterrupt(f"{signal.Signals(signum).name}: tearing the e2e stacks down")

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.path.as_posix():
            item.add_marker(pytest.mark.timeout(BODY_TIMEOUT_SECONDS, func_only=True))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """No new test once the budget is spent (what is left is the stacks' teardown)."""
    if item.config.getoption("--target") == "aws" and item.config.stash[_BUDGET].left() <= 0:
        pytest.fail("the e2e session's time budget is spent; tearing down", pytrace=False)


@pytest.fixture(scope="session")
def run_id() -> str:
    """The workflow run's id (E2E_RUN_ID): every stack and role is tagged with it."""
    return os.environ.get("E2E_RUN_ID") or local_run_id()


@pytest.fixture(scope="session")
def local_system(request: pytest.FixtureRequest) -> Iterator[LocalSystem | None]:
    """One local stand-in for every deployment of the session; None on --target aws."""
    if request.config.getoption("--target") != "local":
        yield None
        return
    system = LocalSystem()
    try:
        system.start()
        yield system
    finally:
        system.close()


def _deploy(
    request: pytest.FixtureRequest,
    system: LocalSystem | None,
    run_id: str,
    *,
    suffix: str = "",
    context: Mapping[str, str] | None = None,
    app: Sequence[str] | None = None,
) -> Iterator[Deployment]:
    target = request.config.getoption("--target")
    keep = request.config.getoption("--keep-stack")
    stack_name = (os.environ.get("E2E_STACK_NAME") or unique_stack_name()) + suffix
    try:
        if target == "aws":
            deployed = aws_deployment(
                stack_name,
                keep_stack=keep,
                run_id=run_id,
                budget=request.config.stash[_BUDGET],
                timeouts=request.config.stash[_TIMEOUTS],
                evidence_dir=Path(
                    os.environ.get("E2E_EVIDENCE_DIR") or ROOT / "cdk.out.e2e" / "evidence"
                ),
                context=context,
                app=app,
                # A new image tag per run: the CLI builds and pushes the image every night.
                image_nonce=run_id,
                cdk_cli=os.environ.get("E2E_CDK_CLI"),  # the rehearsal's stand-ins only
            )
        else:
            deployed = local_deployment(
                stack_name, system=system, context=context, app=app, run_id=run_id
            )
        with deployed as deployment:
            yield deployment
    except E2ESetupError as exc:
        # A run that was asked for and cannot happen is a failure, never a skip: a nightly
        # job that skips looks green.
        pytest.fail(f"e2e target {target!r} unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def deployment(
    request: pytest.FixtureRequest, local_system: LocalSystem | None, run_id: str
) -> Iterator[Deployment]:
    yield from _deploy(request, local_system, run_id)


@pytest.fixture(scope="session")
def configured_deployment(
    request: pytest.FixtureRequest, local_system: LocalSystem | None, run_id: str
) -> Iterator[Deployment]:
    yield from _deploy(request, local_system, run_id, suffix="-cfg", context=E2E_CONFIGURED_CONTEXT)


@pytest.fixture(scope="session")
def timeout_probe_deployment(
    request: pytest.FixtureRequest, local_system: LocalSystem | None, run_id: str
) -> Iterator[Deployment]:
    yield from _deploy(
        request,
        local_system,
        run_id,
        suffix="-probe",
        context=E2E_CONFIGURED_CONTEXT,
        app=TIMEOUT_PROBE_APP,
    )
