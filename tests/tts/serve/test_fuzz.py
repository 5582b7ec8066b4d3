"""Schemathesis against the running tiny app's own OpenAPI schema: whatever a client sends to any operation, the
API answers with no 5xx and within a time limit (slow: every accepted speech request synthesises audio)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.tts.serve.tiny_app import KEY

pytestmark = pytest.mark.slow


def test_no_request_gets_a_server_error_or_hangs(server):
    url, *_ = server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/audio/speech", "/v1/voices", "/v1/arena/votes"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def fuzz(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error], timeout=60)

        fuzz()
