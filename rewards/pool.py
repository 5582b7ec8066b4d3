"""Ray actor pools of reward scorers: one model load per actor, batched calls, dead actors replaced
(`tts.base.actors.ActorGroup`), plus the same interface in-process for the CLI and tests."""

from __future__ import annotations

from typing import Any

from rewards.scorers import Sample, build_scorer
from tts.base.actors import ActorGroup, PoolConfig


class ScorerActor:
    """Holds one scorer (model loaded once) inside a Ray actor process."""

    def __init__(self, kind: str, kwargs: dict[str, Any]):
        self.scorer = build_scorer(kind, **kwargs)

    def ping(self) -> bool:
        return True

    def score_batch(self, samples: list[Sample]) -> list[dict]:
        return self.scorer.score_batch(samples)


class ScorerPool(ActorGroup):
    """`cfg.actors` actors of the scorer `kind` (rewards.scorers), scoring chunks of `cfg.batch_size` samples."""

    def __init__(self, kind: str, kwargs: dict[str, Any], cfg: PoolConfig = PoolConfig(), name: str | None = None):
        super().__init__(ScorerActor, lambda _: (kind, kwargs), cfg, name or kind, method="score_batch")

    def score(self, samples: list[Sample]) -> list[dict]:
        return self.map(samples)


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

    def shutdown(self) -> None:
        pass
