"""The e2e session's deployments of the real app: the local stand-in, or AWS (--target aws).

`deployment` is the default configuration; `configured_deployment` is one non-default
configuration (configuration.E2E_CONFIGURED_CONTEXT, which the template snapshot covers too), and
`timeout_probe_deployment` the same configuration with the timeout probe's code. Locally all of
them live in one LocalSystem (one moto, one synth each).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import pytest

from localurl.deploy import LocalSystem
from tests.e2e.configuration import E2E_CONFIGURED_CONTEXT
from tests.e2e.targets import (
    Deployment,
    E2ESetupError,
    aws_deployment,
    local_deployment,
    unique_stack_name,
)
from tests.e2e.timeout_probe import APP as TIMEOUT_PROBE_APP


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-timeout's alarm (600 s) would otherwise cover fixture setup, i.e. the whole
    # `cdk deploy` of an AWS run; that has its own caps (targets.AwsTimeouts).
    for item in items:
        if "tests/e2e/" in item.path.as_posix():
            item.add_marker(pytest.mark.timeout(func_only=True))


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
            deployed = aws_deployment(stack_name, keep_stack=keep, context=context, app=app)
        else:
            deployed = local_deployment(stack_name, system=system, context=context, app=app)
        with deployed as deployment:
            yield deployment
    except E2ESetupError as exc:
        # A run that was asked for and cannot happen is a failure, never a skip: a nightly
        # job that skips looks green.
        pytest.fail(f"e2e target {target!r} unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def deployment(
    request: pytest.FixtureRequest, local_system: LocalSystem | None
) -> Iterator[Deployment]:
    yield from _deploy(request, local_system)


@pytest.fixture(scope="session")
def configured_deployment(
    request: pytest.FixtureRequest, local_system: LocalSystem | None
) -> Iterator[Deployment]:
    yield from _deploy(request, local_system, suffix="-cfg", context=E2E_CONFIGURED_CONTEXT)


@pytest.fixture(scope="session")
def timeout_probe_deployment(
    request: pytest.FixtureRequest, local_system: LocalSystem | None
) -> Iterator[Deployment]:
    yield from _deploy(
        request,
        local_system,
        suffix="-probe",
        context=E2E_CONFIGURED_CONTEXT,
        app=TIMEOUT_PROBE_APP,
    )
