"""Schemathesis against the running tiny app's own OpenAPI schema: whatever a client sends to any operation, the
API answers with no 5xx and within a time limit (slow: every accepted speech request synthesises audio)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.tts.serve.tiny_app import KEY

pytestmark = pytest.mark.slow


@pytest.fixture
def api_schema(server):
    url, *_ = server
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error_or_hangs(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error], timeout=60)
