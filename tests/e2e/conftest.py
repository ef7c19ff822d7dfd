"""One deployment of the real app per e2e session: the local stand-in, or AWS (--target aws)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.targets import (
    Deployment,
    E2ESetupError,
    aws_deployment,
    local_deployment,
    unique_stack_name,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-timeout's alarm (600 s) would otherwise cover fixture setup, i.e. the whole
    # `cdk deploy` of an AWS run; that has its own caps (targets.AwsTimeouts).
    for item in items:
        if "tests/e2e/" in item.path.as_posix():
            item.add_marker(pytest.mark.timeout(func_only=True))


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    target = request.config.getoption("--target")
    keep = request.config.getoption("--keep-stack")
    stack_name = os.environ.get("E2E_STACK_NAME") or unique_stack_name()
    try:
        if target == "aws":
            context = aws_deployment(stack_name, keep_stack=keep)
        else:
            context = local_deployment(stack_name)
        with context as deployed:
            yield deployed
    except E2ESetupError as exc:
        # A run that was asked for and cannot happen is a failure, never a skip: a nightly
        # job that skips looks green.
        pytest.fail(f"e2e target {target!r} unavailable: {exc}", pytrace=False)
