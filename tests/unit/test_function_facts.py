"""GET reports what Lambda told the invocation about the function (alias ARN, memory, time left):
the e2e layer reads it through the URL to see how the deployment is configured."""

from __future__ import annotations

import json

import pytest

from tests.unit.events import function_url_event, post

ALIAS_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:ml-fn-Abc:Canary"


class RuntimeContext:
    """A context as awslambdaric builds it: the memory size is the environment's string."""

    def __init__(self, *, memory: object = "2048", remaining: object = 2_987) -> None:
        self.aws_request_id = "ctx-1"
        self.invoked_function_arn = ALIAS_ARN
        self.memory_limit_in_mb = memory
        self._remaining = remaining

    def get_remaining_time_in_millis(self) -> object:
        return self._remaining


def _get(service, context) -> dict:
    response = service.handle(function_url_event("GET"), context)
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def test_get_reports_invoked_arn_memory_and_time_left_from_context(small_service):
    metadata = _get(small_service, RuntimeContext())

    assert metadata["function"] == {
        "invoked_function_arn": ALIAS_ARN,
        "memory_limit_in_mb": 2048,
        "remaining_time_in_millis": 2987,
    }


def test_get_reports_integer_memory_from_a_context_that_has_one(small_service):
    facts = _get(small_service, RuntimeContext(memory=1024))["function"]
    assert facts["memory_limit_in_mb"] == 1024


@pytest.mark.parametrize("memory", [None, "", "lots"])
def test_get_reports_null_memory_when_context_value_is_not_a_number(small_service, memory):
    """A context this handler does not understand never turns GET into a 500."""
    facts = _get(small_service, RuntimeContext(memory=memory))["function"]

    assert facts["memory_limit_in_mb"] is None
    assert facts["invoked_function_arn"] == ALIAS_ARN


def test_post_response_carries_no_function_facts(small_service, small_compiled):
    row = [0.0] * len(small_compiled.feature_names)

    response = small_service.handle(post([row]), RuntimeContext())

    assert response["statusCode"] == 200
    assert ALIAS_ARN not in response["body"]
    assert isinstance(json.loads(response["body"]), list)
