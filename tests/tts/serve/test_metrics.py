"""Serve metrics reach Ray's Prometheus export (what the Ray dashboard's Grafana panels read)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.tts.serve.tiny_app import KEY

pytestmark = pytest.mark.slow

# ServeMetrics' names as Ray exports them: "ray_" prefix, counters with "_total", histograms with "_bucket"
EXPECTED = [
    'ray_tts_requests_total{.*route="speech".*status="200"',
    'ray_tts_errors_total{.*kind="unknown_markup"',
    'ray_tts_time_to_first_audio_s_bucket{.*stream="true"',
    'ray_tts_real_time_factor_bucket{.*stream="false"',
    "ray_tts_audio_seconds_total",
]


def test_request_error_ttfa_and_rtf_metrics_are_exported(server):
    import re

    url, _, metrics_port = server
    speech = {"model": "tts-1", "input": "hello", "voice": "default", "response_format": "pcm", "seed": 1}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as c:
        assert c.post("/v1/audio/speech", json=speech).status_code == 200
        assert c.post("/v1/audio/speech", json=speech | {"stream": False}).status_code == 200
        assert c.post("/v1/audio/speech", json=speech | {"input": "[dancing]"}).status_code == 400
    missing, text = EXPECTED, ""
    deadline = time.time() + 45  # Ray flushes metrics to the agent every few seconds: poll
    while missing and time.time() < deadline:
        time.sleep(0.5)
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        missing = [m for m in EXPECTED if not re.search(m, text)]
    assert not missing, (missing, sorted({line.split("{")[0] for line in text.splitlines() if "tts" in line}))
