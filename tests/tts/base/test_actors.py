"""Actor groups (tts/base/actors.py): every actor of a group serves, a dead actor is replaced and its chunk
retried, health replaces the unresponsive, and a group that cannot be placed fails naming the free resources."""

from __future__ import annotations

import os

import pytest
import ray

from tts.base.actors import ActorGroup, PoolConfig, PoolError


class Echo:
    """A trivial actor: `tag` tells the actors apart, `run` answers with (tag, pid) per item."""

    def __init__(self, tag: int):
        self.tag = tag

    def ping(self) -> int:
        return self.tag  # 0 for the first actor: health must not read the answer as a verdict

    def run(self, items: list[int]) -> list[tuple[int, int, int]]:
        return [(item, self.tag, os.getpid()) for item in items]


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


def test_dead_actor_is_replaced_once_and_its_chunks_retried(ray_local):
    g = group(1)
    g.wait_ready(60)
    first_pid = ray.get(g[0].run.remote([0]))[0][2]
    ray.kill(g[0])
    out = g.gather(g.submit(list(range(6))))  # three chunks sent to the dead actor
    assert [item for item, _, _ in out] == list(range(6)) and g.replaced == 1
    assert {pid for _, _, pid in out} != {first_pid}
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
