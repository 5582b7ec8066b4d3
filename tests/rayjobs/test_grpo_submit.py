"""`ray job submit` of the GRPO job against a head node started with `ray start --head` (slow).

Its own module: `ray stop` at the end stops every Ray process `ray start` made on this machine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rayjobs.test_grpo import CONFIG, ROOT, overrides
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_grpo_runs_under_ray_job_submit(tmp_path):
    manifest = tiny_corpus(tmp_path / "corpus")
    inputs = {
        "manifest": manifest,
        "codec": tiny_codec(tmp_path / "codec"),
        "policy": tiny_policy(tmp_path / "lm", manifest),
    }
    port, dashboard = free_port(), free_port()
    # Ray >= 2.59 protects local clusters with a token (~/.ray/auth_token); the CLI sends it in token mode
    env = dict(os.environ, RAY_AUTH_MODE="token")
    subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True, env=env, timeout=60)
    head = [RAY, "start", "--head", f"--port={port}", f"--dashboard-port={dashboard}", "--num-cpus=4"]
    subprocess.run([*head, "--dashboard-host=127.0.0.1"], check=True, capture_output=True, env=env, timeout=180)
    try:
        entry = [sys.executable, "rayjobs/grpo.py", "--config", str(CONFIG.relative_to(ROOT))]
        entry += overrides(inputs, tmp_path / "runs", "submitted", "steps=1", "eval_after=false")
        res = subprocess.run(
            [
                RAY,
                "job",
                "submit",
                "--address",
                f"http://127.0.0.1:{dashboard}",
                "--working-dir",
                str(ROOT),
                "--",
                *entry,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)
    assert res.returncode == 0 and "succeeded" in res.stdout, (res.stdout + res.stderr)[-3000:]
    report = json.loads((tmp_path / "runs" / "submitted" / "report.json").read_text())
    assert report["steps"] == 1 and report["before"]["n"] == 2 and report["after"] is None
