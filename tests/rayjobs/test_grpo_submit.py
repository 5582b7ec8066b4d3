"""`ray job submit` of the GRPO job against a head node started with `ray start --head` (slow).

The head runs under `ray start --block`, so terminating that command stops this head and nothing else (`ray stop`
would stop every Ray instance on the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.rayjobs.test_grpo import CONFIG, ROOT, overrides
from tests.tts.grpo.tiny_setup import tiny_codec, tiny_corpus, tiny_policy
from tts.base.cluster import free_port

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def wait_for_jobs_api(address: list[str], env: dict, node: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert node.poll() is None, "ray start --head exited"
        if subprocess.run([RAY, "job", "list", *address], capture_output=True, env=env, timeout=60).returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError(f"the head's job API did not answer within {timeout} s")


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
    head = [RAY, "start", "--head", f"--port={port}", f"--dashboard-port={dashboard}", "--num-cpus=4", "--block"]
    # the agents' default ports (52365, ...) belong to whichever other Ray on this machine took them first
    head += [f"--{flag}={free_port()}" for flag in ("dashboard-agent-listen-port", "runtime-env-agent-port")]
    address = ["--address", f"http://127.0.0.1:{dashboard}"]
    node = subprocess.Popen([*head, "--dashboard-host=127.0.0.1"], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for_jobs_api(address, env, node)
        entry = [sys.executable, "rayjobs/grpo.py", "--config", str(CONFIG.relative_to(ROOT))]
        entry += overrides(inputs, tmp_path / "runs", "submitted", "steps=1", "eval_after=false")
        submit = [RAY, "job", "submit", *address, "--working-dir", str(ROOT), "--", *entry]
        deadline = time.monotonic() + 180
        while True:  # the head's job API answers before its node's job agent is up
            res = subprocess.run(submit, capture_output=True, text=True, env=env, timeout=900)
            if "No available agent" not in res.stderr or time.monotonic() > deadline:
                break
            time.sleep(3)
    finally:
        node.terminate()  # `ray start --block` kills its node's processes on SIGTERM
        node.wait(timeout=120)
        current = Path("/tmp/ray/ray_current_cluster")  # `ray start` names its head there; `ray stop` would clear it
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    assert res.returncode == 0 and "succeeded" in res.stdout, (res.stdout + res.stderr)[-3000:]
    report = json.loads((tmp_path / "runs" / "submitted" / "report.json").read_text())
    assert report["steps"] == 1 and report["before"]["n"] == 2 and report["after"] is None
