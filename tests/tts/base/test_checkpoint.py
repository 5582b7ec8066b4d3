"""Checkpoint I/O (tts/base/checkpoint.py): which directory is a run's latest checkpoint."""

from __future__ import annotations

from tts.base import checkpoint


def state(directory, step: int) -> None:
    directory.mkdir(parents=True)
    checkpoint.write_state(directory, {"job": "grpo", "step": step, "max_steps": 10})


def test_latest_is_the_highest_finished_step_never_a_temporary_one(tmp_path):
    state(tmp_path / "checkpoint_000002", 2)
    state(tmp_path / "checkpoint_000010", 10)
    # a save that died after rank 0 wrote its part: it may hold a state but is not a checkpoint
    state(tmp_path / "checkpoint_000011.tmp", 11)
    (tmp_path / "checkpoint_000012").mkdir()  # no state yet: its ranks are still writing
    assert checkpoint.latest(tmp_path) == tmp_path / "checkpoint_000010"
    assert checkpoint.latest(tmp_path / "checkpoint_000002") == tmp_path / "checkpoint_000002"
    assert checkpoint.latest(tmp_path / "checkpoint_000012") is None
