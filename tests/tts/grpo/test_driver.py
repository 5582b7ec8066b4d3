"""The driver's in-flight rollout bookkeeping (tts/grpo/driver.py), without Ray: groups arrive from stream threads,
a stream's failure reaches the driver's thread, and all-equal groups are recognised."""

from __future__ import annotations

import time

import pytest

from tts.grpo.driver import Rollout, all_equal


def test_streams_fill_groups_and_their_error_reaches_the_waiting_thread():
    rollout = Rollout(prompts=["p0", "p1", "p2"])

    def stream(ks):
        for k in ks:
            time.sleep(0.01)
            rollout.groups[k] = [f"g{k}"]

    rollout.start(stream, [0, 2])
    rollout.start(stream, [1])
    assert rollout.wait_generated() == {0: ["g0"], 1: ["g1"], 2: ["g2"]}

    failing = Rollout(prompts=["p0"])
    failing.start(lambda: (_ for _ in ()).throw(RuntimeError("worker 0 failed twice")))
    with pytest.raises(RuntimeError, match="worker 0 failed twice"):
        failing.wait_generated()


def test_timed_records_when_the_last_score_finished():
    rollout = Rollout(prompts=["p0"])
    before = rollout.scored_at
    assert rollout.timed(lambda x: x + 1, 1) == 2 and rollout.scored_at > before


def test_all_equal_groups_carry_no_signal():
    rec = lambda total: {"rewards": {"total": total}}  # noqa: E731
    assert all_equal([rec(0.5), rec(0.5)]) and not all_equal([rec(0.5), rec(0.6)])
