"""Actor groups (tts/base/actors.py): every actor of a group serves, a dead actor is replaced and its chunk
retried, health replaces the unresponsive, and a group that cannot be placed fails naming the free resources."""

from __future__ import annotations

import os
import threading
import time

import pytest
import ray

import tts.base.actors as actors
from tts.base.actors import ActorGroup, Placement, PoolConfig, PoolError


class Echo:
    """A trivial actor: `tag` tells the actors apart, `run` answers with (tag, pid) per item."""

    def __init__(self, tag: int):
        self.tag = tag

    def ping(self) -> int:
        return self.tag  # 0 for the first actor: health must not read the answer as a verdict

    def run(self, items: list[int]) -> list[tuple[int, int, int]]:
        return [(item, self.tag, os.getpid()) for item in items]

    def flaky(self, markers: list[str]) -> list[int]:
        """Raises while a marker file exists (removing it): a task error that a fresh actor does not repeat."""
        for m in markers:
            if os.path.exists(m):
                os.remove(m)
                raise RuntimeError(f"transient failure ({m})")
        return [self.tag for _ in markers]

    def slow(self, items: list[float]) -> list[int]:
        time.sleep(sum(items))
        return [self.tag for _ in items]


@pytest.fixture(scope="module")
def ray_local():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def group(n: int, batch: int = 2, num_cpus: float = 0.25) -> ActorGroup:
    return ActorGroup(Echo, lambda k: (k,), PoolConfig(actors=n, batch_size=batch, num_cpus=num_cpus), "echo", "run")


def test_chunks_spread_over_every_actor_in_order(ray_local):
    g = group(2)
    g.wait_ready(60)
    out = g.map(list(range(8)))  # four chunks of two
    assert [item for item, _, _ in out] == list(range(8))
    assert {tag for _, tag, _ in out} == {0, 1} and len(g) == 2 and g[1] is g.actors[1]
    g.shutdown()


def test_one_chunk_per_call_reaches_every_actor(ray_local):
    """The GRPO pattern: each call submits one small group (one chunk) from its own thread."""
    g = ActorGroup(Echo, lambda k: (k,), PoolConfig(actors=3, batch_size=8, num_cpus=0.25), "echo", "slow")
    g.wait_ready(60)
    tags: list[int] = []
    threads = [threading.Thread(target=lambda: tags.extend(g.map([0.5]))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(tags) == [0, 0, 1, 1, 2, 2] and g.calls == [2, 2, 2]  # round-robin from 0 per call: all on 0
    assert g._inflight == [0, 0, 0]
    g.shutdown()


def test_a_busy_actor_is_passed_over(ray_local):
    g = ActorGroup(Echo, lambda k: (k,), PoolConfig(actors=2, batch_size=1, num_cpus=0.25), "echo", "slow")
    g.wait_ready(60)
    busy = g.submit([3.0])  # actor 0 sleeps 3 s
    assert [g.map([0.0]) for _ in range(3)] == [[1], [1], [1]]  # each call while 0 is busy goes to 1
    assert g.gather(busy) == [0] and g.calls == [1, 3] and g._inflight == [0, 0]
    g.shutdown()


def test_dead_actor_is_replaced_once_and_its_chunks_retried(ray_local):
    g = group(1)
    g.wait_ready(60)
    first_pid = ray.get(g[0].run.remote([0]))[0][2]
    ray.kill(g[0])
    out = g.gather(g.submit(list(range(6))))  # three chunks sent to the dead actor
    assert [item for item, _, _ in out] == list(range(6)) and g.replaced == 1
    assert {pid for _, _, pid in out} != {first_pid}
    g.shutdown()


def test_a_task_error_replaces_the_actor_and_retries_once(ray_local, tmp_path):
    g = ActorGroup(Echo, lambda k: (k,), PoolConfig(actors=1, num_cpus=0.25), "echo", "flaky")
    g.wait_ready(60)
    marker = tmp_path / "fail_once"
    marker.touch()
    assert g.map([str(marker)]) == [0] and g.replaced == 1  # raised once, a fresh actor served the retry
    twice = [str(tmp_path / "a"), str(tmp_path / "b")]
    for m in twice:
        open(m, "w").close()
    with pytest.raises(PoolError, match=r"echo: chunk failed twice: RuntimeError: transient failure"):
        g.map(twice)  # the retry meets the second marker: the cause is named, not retried forever
    g.shutdown()


def test_health_replaces_the_dead_and_keeps_rank_zero(ray_local):
    g = group(2)
    g.wait_ready(60)
    ray.kill(g[1])
    assert g.health() == [True, False] and g.replaced == 1
    assert g.health() == [True, True]
    g.shutdown()


def test_group_that_cannot_be_placed_names_free_resources(ray_local):
    g = group(1, num_cpus=64)  # the session has 2 CPUs
    with pytest.raises(PoolError, match=r"learner ranks: not all 1 actor\(s\) started within 2 s.*'CPU'"):
        g.wait_ready(2, "learner ranks")
    g.shutdown()


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="pool echo: actors and batch_size must be >= 1"):
        ActorGroup(Echo, lambda k: (k,), PoolConfig(actors=0), "echo")


def test_placed_group_runs_in_its_bundles_and_frees_them(ray_local):
    free = ray.available_resources()["CPU"]
    shape = PoolConfig(actors=2, batch_size=1, num_cpus=0.25)
    placement = Placement(shape, "spread", "echo", timeout=60)
    ip, port = placement.address(0)  # a rendezvous on bundle 0's node
    g = ActorGroup(Echo, lambda k: (k,), shape, "echo", "run", placement=placement)
    g.wait_ready(60)
    assert g.hosts() == [ip, ip] and 0 < port < 65536  # one node here: both bundles on it
    assert sorted(tag for _, tag, _ in g.map([1, 2])) == [0, 1]
    g.shutdown()
    wait_until(lambda: ray.available_resources()["CPU"] == free)


def test_placement_that_cannot_be_satisfied_names_it_and_reserves_nothing(ray_local, monkeypatch, caplog):
    free = ray.available_resources()["CPU"]
    monkeypatch.setattr(actors, "PLACEMENT_LOG_S", 0.5)
    with pytest.raises(
        PoolError, match=r"learner ranks: not all 2 actor\(s\) could be placed within 2 s \(strict_spread"
    ):
        Placement(PoolConfig(actors=2, num_cpus=0.25), "strict_spread", "learner ranks", timeout=2)  # one node
    waiting = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert waiting and all(m.startswith("learner ranks: waiting") and "strict_spread" in m for m in waiting)
    wait_until(lambda: ray.available_resources()["CPU"] == free)
    with pytest.raises(ValueError, match="placement must be one of"):
        Placement(PoolConfig(actors=1), "anywhere", "echo", timeout=2)


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)
