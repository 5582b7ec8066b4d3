"""Groups of Ray actors of one class: reward pools, codec decoders, rollout workers and learner ranks.

A group starts its actors with a timeout that names the cluster's free resources (an actor that cannot be
placed would otherwise wait forever), pings them for health, and replaces a dead actor. Groups that serve
batches (`method` given) split a batch into chunks of `batch_size`, spread them over the actors and gather
the results in order; a chunk whose actor died (OOM, node loss, `ray.kill`) is retried once on its
replacement, and a second failure raises `PoolError` naming the group, so the caller knows which stage failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

log = logging.getLogger(__name__)


@dataclass
class PoolConfig:
    actors: int = 1
    num_cpus: float = 0.5  # logical CPUs per actor; the embedded pools share 2 cores
    num_gpus: float = 0.0  # e.g. 0.25: four Whisper large-v3 actors per GPU
    batch_size: int = 8
    threads: int = 1  # intra-op threads of the model inside an actor


class PoolError(RuntimeError):
    pass


def wait_started(actors: list, what: str, timeout: float) -> None:
    """Block until every actor answers `ping`. An actor the cluster cannot place (its CPUs/GPUs are held by other
    actors or jobs) would wait forever: after `timeout` seconds this raises with what is free, instead."""
    try:
        ray.get([a.ping.remote() for a in actors], timeout=timeout)
    except RayActorError as exc:
        raise PoolError(f"{what}: an actor failed to start: {exc}") from exc
    except GetTimeoutError as exc:
        raise PoolError(
            f"{what}: not all {len(actors)} actor(s) started within {timeout:.0f} s; the cluster has "
            f"{ray.available_resources()} free of {ray.cluster_resources()}. Other actors or jobs may hold the "
            "resources: lower num_cpus/num_gpus in the config, free the cluster, or raise the start timeout"
        ) from exc


Pending = list[tuple[int, Any, list, ray.ObjectRef]]


class ActorGroup:
    """`cfg.actors` Ray actors of `actor_cls`; actor k is built from `args(k)`. With `method`, `submit`/`gather`
    call `method(chunk) -> list` on chunks of a batch."""

    def __init__(
        self,
        actor_cls: type,
        args: Callable[[int], tuple],
        cfg: PoolConfig,
        name: str,
        method: str | None = None,
    ):
        if cfg.actors < 1 or cfg.batch_size < 1:
            raise ValueError(f"pool {name}: actors and batch_size must be >= 1")
        self.cfg, self.name, self.method, self._args = cfg, name, method, args
        self._cls = ray.remote(actor_cls).options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus)
        self.actors = [self._spawn(k) for k in range(cfg.actors)]
        self.replaced = 0
        self._lock = threading.Lock()  # the GRPO driver gathers from several threads

    def __getitem__(self, index: int):
        return self.actors[index]

    def __len__(self) -> int:
        return len(self.actors)

    def __iter__(self):
        return iter(self.actors)

    def _spawn(self, index: int):
        return self._cls.remote(*self._args(index))

    def replace(self, index: int, reason: str, dead: Any = None) -> bool:
        """Replace actor `index` (unless it was already replaced since `dead` was seen); True if it was."""
        with self._lock:
            if dead is not None and self.actors[index] is not dead:
                return False  # calls queued on the same dead actor share one replacement
            log.warning("%s: actor %d died (%s); replacing it", self.name, index, reason)
            try:
                ray.kill(self.actors[index])
            except Exception:  # noqa: BLE001  already gone
                pass
            self.actors[index] = self._spawn(index)
            self.replaced += 1
            return True

    def wait_ready(self, timeout: float = 600.0, what: str | None = None) -> None:
        """Block until every actor has started (surfaces load errors at start-up, not mid-run)."""
        wait_started(self.actors, what or f"pool {self.name}", timeout)

    def health(self, timeout: float = 30.0) -> list[bool]:
        """Ping every actor; dead or unresponsive ones are replaced. Returns who was healthy."""
        healthy = []
        for i, actor in enumerate(self.actors):
            try:
                ray.get(actor.ping.remote(), timeout=timeout)
                healthy.append(True)
            except (RayActorError, GetTimeoutError) as exc:
                self.replace(i, type(exc).__name__, actor)
                healthy.append(False)
        return healthy

    def submit(self, items: list) -> Pending:
        """Start `method` on chunks of `items`; returns (actor index, actor, chunk, future) for `gather`."""
        bs = self.cfg.batch_size
        pending = []
        for k, start in enumerate(range(0, len(items), bs)):
            index = k % len(self.actors)
            actor, chunk = self.actors[index], items[start : start + bs]
            pending.append((index, actor, chunk, getattr(actor, self.method).remote(chunk)))
        return pending

    def gather(self, pending: Pending) -> list:
        out: list = []
        for index, actor, chunk, ref in pending:
            try:
                out.extend(ray.get(ref))
            except RayActorError as exc:
                self.replace(index, type(exc).__name__, actor)
                try:
                    out.extend(ray.get(getattr(self.actors[index], self.method).remote(chunk)))
                except RayActorError as again:
                    raise PoolError(f"pool {self.name}: chunk failed twice ({again})") from again
        return out

    def map(self, items: list) -> list:
        return self.gather(self.submit(items))

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
