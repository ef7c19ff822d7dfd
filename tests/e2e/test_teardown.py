"""Teardown happens even when a test body raises after the deploy (local target)."""

from __future__ import annotations

import pytest
import requests

from localurl.deploy import LocalSystem
from tests.e2e.targets import local_deployment, unique_stack_name


def test_teardown_deletes_stack_when_test_body_raises() -> None:
    """GIVEN a deployed stack WHEN the code using it raises THEN the stack is deleted (and waited
    for), its endpoint stops answering, and the original error reaches the caller."""
    stack_name = unique_stack_name()
    with LocalSystem() as system:
        seen: dict[str, object] = {}

        def failing_test_body() -> None:
            with local_deployment(stack_name, system=system) as deployment:
                seen["endpoint"] = deployment.endpoint_url
                seen["deployed"] = system.is_deployed(stack_name)
                raise RuntimeError("test body failed")

        with pytest.raises(RuntimeError, match="test body failed"):
            failing_test_body()

        assert seen["deployed"] is True
        assert not system.is_deployed(stack_name)
        endpoint = str(seen["endpoint"])
        with pytest.raises(requests.ConnectionError):
            requests.get(endpoint, timeout=5)
