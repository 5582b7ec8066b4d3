"""Checkpoint I/O (tts/base/checkpoint.py): which directory is a run's latest checkpoint, and when and how a
training loop reports, evaluates and saves."""

from __future__ import annotations

import json
from types import SimpleNamespace

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


def test_a_loop_reports_evaluates_and_saves_at_its_intervals_and_always_at_its_last_step():
    cadence = checkpoint.Cadence(log=2, evaluate=4, save=6, last=7)
    due = {step: cadence.due(step) for step in range(1, 8)}
    assert due == {1: None, 2: (False, False), 3: None, 4: (True, False), 5: None, 6: (False, True), 7: (True, True)}
    # halt_at_step stops early on the max_steps schedule: the halt is the last step
    cfg = SimpleNamespace(log_interval=10, eval_interval=50, checkpoint_interval=100, max_steps=1000, halt_at_step=None)
    assert checkpoint.Cadence.of(cfg) == checkpoint.Cadence(log=10, evaluate=50, save=100, last=1000)
    assert checkpoint.Cadence.of(SimpleNamespace(**vars(cfg) | {"halt_at_step": 30})).due(30) == (True, True)


class _Session:
    def __init__(self):
        self.reports = []

    def report(self, metrics, directory=None):
        files = sorted(p.name for p in directory.rglob("*")) if directory else None
        self.reports.append((metrics, directory and directory.name, files))


def test_publish_logs_on_rank_0_and_hands_the_session_a_checkpoint_only_when_saving(tmp_path):
    session = _Session()
    checkpoint.publish(session, tmp_path, 0, {"step": 5, "loss": 1.0})

    def save(directory):
        directory.mkdir()
        (directory / "weights").write_text("w")

    checkpoint.publish(session, tmp_path, 0, {"step": 10, "loss": 0.5}, save)
    checkpoint.publish(session, tmp_path, 1, {"step": 10, "loss": 0.5})  # other ranks report, never log
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [5, 10]
    assert session.reports[0] == ({"step": 5, "loss": 1.0}, None, None)
    assert session.reports[1] == ({"step": 10, "loss": 0.5}, "checkpoint_000010", ["weights"])
    assert session.reports[2][1] is None
