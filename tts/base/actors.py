"""Groups of Ray actors of one class: reward pools, codec decoders, rollout workers and learner ranks.

A group starts its actors with a timeout that names the cluster's free resources (an actor that cannot be
placed would otherwise wait forever), pings them for health, and replaces a dead actor. Groups that serve
batches (`method` given) split a batch into chunks of `batch_size`, send each chunk to the actor with the
fewest chunks in flight across all callers (the GRPO driver submits one small group per call from several
threads: round-robin restarting at actor 0 on every call would leave the others idle), and gather the
results in order; a chunk whose actor died (OOM, node loss, `ray.kill`) is retried once on its
replacement, and a second failure raises `PoolError` naming the group, so the caller knows which stage failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

log = logging.getLogger(__name__)
PLACEMENT_LOG_S = 30.0  # how often a placement that waits for resources says so


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


STRATEGIES = ("pack", "spread", "strict_pack", "strict_spread")


def check_strategy(strategy: str, where: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"{where} must be one of {STRATEGIES}, got {strategy!r}")


class Placement:
    """A Ray placement group holding one bundle per actor of a group ({CPU: num_cpus, GPU: num_gpus}), reserved
    before any actor starts: `pack` keeps a group on as few nodes as possible (learner ranks: fast collectives),
    `spread` puts its actors on different nodes. A placement the cluster cannot satisfy fails within `timeout`
    naming what it asked for and what is free, and leaves nothing reserved."""

    def __init__(self, cfg: PoolConfig, strategy: str, what: str, timeout: float):
        from ray.util.placement_group import placement_group, remove_placement_group

        check_strategy(strategy, f"{what}: placement")
        bundle = {k: v for k, v in (("CPU", cfg.num_cpus), ("GPU", cfg.num_gpus)) if v > 0}
        if not bundle:
            raise ValueError(f"{what}: a placement group needs num_cpus or num_gpus > 0 per actor")
        self.group = placement_group([dict(bundle) for _ in range(cfg.actors)], strategy=strategy.upper(), name=what)
        asked = f"{strategy} of {cfg.actors} x {bundle}"
        ready, start = self.group.ready(), time.monotonic()
        while not ray.wait([ready], timeout=min(PLACEMENT_LOG_S, max(timeout - (time.monotonic() - start), 0)))[0]:
            waited = time.monotonic() - start
            if waited >= timeout:
                remove_placement_group(self.group)
                raise PoolError(
                    f"{what}: not all {cfg.actors} actor(s) could be placed within {timeout:.0f} s ({asked}); the "
                    f"cluster has {ray.available_resources()} free of {ray.cluster_resources()}. Add nodes, lower "
                    "num_cpus/num_gpus, or change the placement"
                )
            # an autoscaler may still add nodes, so waiting is right; silence for start_timeout_s is not
            log.warning(
                "%s: waiting %.0f s of %.0f s for %s; free: %s", what, waited, timeout, asked, ray.available_resources()
            )

    def strategy(self, index: int):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=index)

    def address(self, index: int = 0) -> tuple[str, int]:
        """(IP, free port) of the node holding bundle `index`: a rendezvous on the node where rank 0 will run,
        whichever node runs the driver (under `ray job submit`, the head, which may hold no rank at all)."""
        return ray.get(_node_address.options(scheduling_strategy=self.strategy(index)).remote())

    def remove(self) -> None:
        """Frees the reservation; a second call does nothing (a group's shutdown and its job's both call it)."""
        from ray.util.placement_group import remove_placement_group

        if self.group is not None:
            remove_placement_group(self.group)
            self.group = None


@ray.remote(num_cpus=0)
def _node_address() -> tuple[str, int]:
    from tts.base.cluster import free_port

    ip = ray.util.get_node_ip_address()
    return ip, free_port(ip)


def node_of(actor: Any) -> str:
    """The IP address of the node an actor runs on (a future: `ray.get` it)."""
    return actor.__ray_call__.remote(lambda _: ray.util.get_node_ip_address())


Pending = list[tuple[int, Any, list, ray.ObjectRef]]


def _reason(exc: Exception) -> str:
    """What went wrong in an actor, in one line: the task's own exception when it raised one."""
    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"


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
        placement: Placement | None = None,
    ):
        if cfg.actors < 1 or cfg.batch_size < 1:
            raise ValueError(f"pool {name}: actors and batch_size must be >= 1")
        self.cfg, self.name, self.method, self._args, self.placement = cfg, name, method, args, placement
        self._cls, self._options = ray.remote(actor_cls), {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}
        self.actors = [self._spawn(k) for k in range(cfg.actors)]
        self.replaced = 0
        self.calls = [0] * cfg.actors  # chunks sent to each actor (index), for metrics and tests
        self._inflight = [0] * cfg.actors
        self._next = 0  # where the search for the least-loaded actor starts: ties rotate
        self._lock = threading.Lock()  # the GRPO driver submits and gathers from several threads

    def __getitem__(self, index: int):
        return self.actors[index]

    def __len__(self) -> int:
        return len(self.actors)

    def __iter__(self):
        return iter(self.actors)

    def _spawn(self, index: int):
        options = dict(self._options)
        if self.placement is not None:
            options["scheduling_strategy"] = self.placement.strategy(index)
        return self._cls.options(**options).remote(*self._args(index))

    def hosts(self) -> list[str]:
        """The node IP of each actor, in order."""
        return ray.get([node_of(a) for a in self.actors])

    def replace(self, index: int, reason: str, dead: Any = None) -> bool:
        """Replace actor `index` (unless it was already replaced since `dead` was seen); True if it was."""
        with self._lock:
            if dead is not None and self.actors[index] is not dead:
                return False  # calls queued on the same dead actor share one replacement
            log.warning("%s: actor %d failed (%s); replacing it", self.name, index, reason)
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

    def _least_loaded(self) -> int:
        """The actor with the fewest chunks in flight (ties: the next in rotation); counts it busy. Locked."""
        n = len(self.actors)
        index = min(range(n), key=lambda i: (self._inflight[i], (i - self._next) % n))
        self._inflight[index] += 1
        self.calls[index] += 1
        self._next = (index + 1) % n
        return index

    def submit(self, items: list) -> Pending:
        """Start `method` on chunks of `items`; returns (actor index, actor, chunk, future) for `gather`."""
        bs = self.cfg.batch_size
        pending = []
        for start in range(0, len(items), bs):
            with self._lock:
                index = self._least_loaded()
                actor = self.actors[index]
            chunk = items[start : start + bs]
            pending.append((index, actor, chunk, getattr(actor, self.method).remote(chunk)))
        return pending

    def gather(self, pending: Pending) -> list:
        out: list = []
        done = 0
        try:
            for index, actor, chunk, ref in pending:
                try:
                    out.extend(ray.get(ref))
                except (RayActorError, RayTaskError) as exc:
                    # dead, or its task raised (CUDA error, OOM): a fresh actor retries the chunk once
                    self.replace(index, _reason(exc), actor)
                    try:
                        out.extend(ray.get(getattr(self.actors[index], self.method).remote(chunk)))
                    except (RayActorError, RayTaskError) as again:
                        raise PoolError(f"pool {self.name}: chunk failed twice: {_reason(again)}") from again
                finally:
                    self._done(index)
                    done += 1
        finally:  # after an error the batch is abandoned: its other chunks no longer count as in flight
            for index, *_ in pending[done:]:
                self._done(index)
        return out

    def _done(self, index: int) -> None:
        with self._lock:
            self._inflight[index] = max(0, self._inflight[index] - 1)

    def map(self, items: list) -> list:
        return self.gather(self.submit(items))

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.placement is not None:
            self.placement.remove()
            self.placement = None
