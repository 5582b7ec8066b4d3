"""bench/train.py runs a bare torch loop, one process and Ray Train with 2 workers on synthetic shards and writes
its table + JSON (the 1-worker setting is the same code path: the test skips it to save a Ray Train start)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny import random_codec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_bench_table_and_json(tmp_path):
    codec = random_codec(tmp_path / "codec")
    out = tmp_path / "train.json"
    cmd = [
        sys.executable,
        str(ROOT / "bench/train.py"),
        "--steps",
        "4",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--max-len",
        "256",
        "--codec",
        str(codec),
        "--out",
        str(out),
        "--settings",
        "plain",
        "local",
        "ray2",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Ray Train, 2 workers" in res.stdout and "vs bare torch loop" in res.stdout
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["bare torch loop", "1 process (no Ray)", "Ray Train, 2 workers"]
    assert all(r["tokens_per_s"] > 0 and r["max_rss_mb"] > 50 for r in results.values())
