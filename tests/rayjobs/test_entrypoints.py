"""Every job runs as `python rayjobs/<job>.py` from the repository root (as `ray job submit` does), with no
sys.path edits: no job file may be named like a standard-library module or one of our packages, which it would
shadow for its neighbours (rayjobs/ comes first on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted(p.name for p in (ROOT / "rayjobs").glob("*.py") if p.name != "__init__.py")


def test_jobs_found():
    assert {"embedded.py", "tokenize_corpus.py", "grpo.py"} <= set(JOBS)
    shadowed = set(sys.stdlib_module_names) | {"tts", "rewards", "evals", "rayjobs", "bench"}
    for folder in ("rayjobs", "bench"):
        assert not {p.stem for p in (ROOT / folder).glob("*.py")} & shadowed, folder


@pytest.mark.parametrize("job", JOBS)
def test_job_help_runs_as_a_script(job):
    res = subprocess.run(
        [sys.executable, f"rayjobs/{job}", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout
