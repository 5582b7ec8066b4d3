"""Ray actor pools of reward scorers: one model load per actor, batched calls, dead actors replaced.

A pool splits a batch into chunks of `batch_size`, spreads them over its actors, and gathers the results in
order. If an actor died (OOM, node loss, `ray.kill`), it is replaced and its chunk retried once on the new
actor; a second failure raises `PoolError` naming the pool, so the caller knows which stage failed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from rewards.scorers import Sample, build_scorer

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


class ScorerActor:
    """Holds one scorer (model loaded once) inside a Ray actor process."""

    def __init__(self, kind: str, kwargs: dict[str, Any]):
        self.scorer = build_scorer(kind, **kwargs)

    def ping(self) -> bool:
        return True

    def score_batch(self, samples: list[Sample]) -> list[dict]:
        return self.scorer.score_batch(samples)


class LocalPool:
    """The same submit/gather interface in-process (no Ray): for one-off scoring from the CLI and tests."""

    def __init__(self, kind: str, kwargs: dict[str, Any], cfg: PoolConfig = PoolConfig(), name: str | None = None):
        self.name, self.cfg = name or kind, cfg
        self.scorer = build_scorer(kind, **kwargs)

    def submit(self, samples: list[Sample]) -> list[dict]:
        return self.scorer.score_batch(samples)

    def gather(self, pending: list[dict]) -> list[dict]:
        return pending

    def score(self, samples: list[Sample]) -> list[dict]:
        return self.submit(samples)

    def wait_ready(self, timeout: float = 0.0) -> None:
        pass

    def health(self, timeout: float = 0.0) -> list[bool]:
        return [True]

    def shutdown(self) -> None:
        pass


class ScorerPool:
    """Actors of `actor_cls(kind, kwargs)` whose `method(chunk) -> list` is called on chunks of a batch. The
    reward pools use `ScorerActor.score_batch`; the GRPO job's codec decoders reuse the same failure handling."""

    def __init__(
        self,
        kind: str,
        kwargs: dict[str, Any],
        cfg: PoolConfig = PoolConfig(),
        name: str | None = None,
        actor_cls: type = ScorerActor,
        method: str = "score_batch",
    ):
        if cfg.actors < 1 or cfg.batch_size < 1:
            raise ValueError(f"pool {name or kind}: actors and batch_size must be >= 1")
        self.kind, self.kwargs, self.cfg, self.name, self.method = kind, kwargs, cfg, name or kind, method
        self._cls = ray.remote(actor_cls).options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus)
        self.actors = [self._spawn() for _ in range(cfg.actors)]
        self.replaced = 0
        self._lock = threading.Lock()  # the GRPO driver gathers from several threads

    def _spawn(self):
        return self._cls.remote(self.kind, self.kwargs)

    def _replace(self, index: int, reason: str) -> None:
        log.warning("pool %s: actor %d died (%s); replacing it", self.name, index, reason)
        try:
            ray.kill(self.actors[index])
        except Exception:  # noqa: BLE001  already gone
            pass
        self.actors[index] = self._spawn()
        self.replaced += 1

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Block until every actor has loaded its model (surfaces load errors at start-up, not mid-run)."""
        wait_started(self.actors, f"pool {self.name}", timeout)

    def health(self, timeout: float = 30.0) -> list[bool]:
        """Ping every actor; dead or unresponsive ones are replaced. Returns who was healthy."""
        healthy = []
        for i, actor in enumerate(self.actors):
            try:
                healthy.append(ray.get(actor.ping.remote(), timeout=timeout))
            except (RayActorError, GetTimeoutError) as exc:
                self._replace(i, type(exc).__name__)
                healthy.append(False)
        return healthy

    def submit(self, samples: list[Sample]) -> list[tuple[int, Any, list[Sample], ray.ObjectRef]]:
        """Start scoring; returns (actor index, actor, chunk, future) for `gather`."""
        bs = self.cfg.batch_size
        pending = []
        for k, start in enumerate(range(0, len(samples), bs)):
            index = k % len(self.actors)
            actor, chunk = self.actors[index], samples[start : start + bs]
            pending.append((index, actor, chunk, getattr(actor, self.method).remote(chunk)))
        return pending

    def gather(self, pending: list[tuple[int, Any, list[Sample], ray.ObjectRef]]) -> list[dict]:
        out: list[dict] = []
        for index, actor, chunk, ref in pending:
            try:
                out.extend(ray.get(ref))
            except RayActorError as exc:
                with self._lock:
                    if self.actors[index] is actor:  # chunks queued on the same dead actor share one replacement
                        self._replace(index, type(exc).__name__)
                try:
                    out.extend(ray.get(getattr(self.actors[index], self.method).remote(chunk)))
                except RayActorError as again:
                    raise PoolError(f"pool {self.name}: chunk failed twice ({again})") from again
        return out

    def score(self, samples: list[Sample]) -> list[dict]:
        return self.gather(self.submit(samples))

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
