"""Composite reward of paper eq. 8-12: r = sum_k w_k R_k over the components active for a sample.

Each component normalises one raw measurement to [0, 1] (eq. 9-11). A new reward is one registered class
plus a config line; `tags` make a component conditional (eq. 12's style/non-verbal rewards apply only to
prompts carrying those markups). A missing measurement (silent, empty or failed audio) gets the
component's minimum and a flag instead of an exception, so one bad sample never kills a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

REGISTRY: dict[str, type[RewardComponent]] = {}


def register(cls: type[RewardComponent]) -> type[RewardComponent]:
    REGISTRY[cls.name] = cls
    return cls


class RewardComponent:
    """Maps one raw measurement of a sample (e.g. its WER) to a reward in [minimum, 1]."""

    name: ClassVar[str]
    measurement: ClassVar[str]  # key of the raw value in a scored sample
    minimum: ClassVar[float] = 0.0

    def __init__(self, weight: float = 1.0, tags: tuple[str, ...] | list[str] = (), **params: Any):
        if weight < 0:
            raise ValueError(f"reward {self.name!r}: weight must be >= 0, got {weight}")
        self.weight, self.tags = float(weight), tuple(tags)
        unknown = set(params) - set(self.params())
        if unknown:
            raise ValueError(f"reward {self.name!r}: unknown parameter(s) {sorted(unknown)}; known: {self.params()}")
        for key, value in params.items():
            setattr(self, key, value)

    @classmethod
    def params(cls) -> list[str]:
        return []

    def active(self, text: str) -> bool:
        return not self.tags or any(tag in text for tag in self.tags)

    def normalise(self, raw: float) -> float:
        raise NotImplementedError


@register
class WerReward(RewardComponent):
    """Eq. 9: exp(-WER / alpha). alpha = 0.4 equals the public reference code's exp(-2.5 * WER)."""

    name, measurement = "wer", "error_rate"
    alpha: float = 0.4

    @classmethod
    def params(cls) -> list[str]:
        return ["alpha"]

    def normalise(self, raw: float) -> float:
        return math.exp(-max(raw, 0.0) / self.alpha)


@register
class IntelligibilityReward(RewardComponent):
    """How surely the ASR hears the target text: the mean over its words of their teacher-forced probability
    (`rewards.asr`). Graded where eq. 9's WER only counts errors, so completions with equal WER still rank."""

    name, measurement = "intelligibility", "asr_likelihood"

    def normalise(self, raw: float) -> float:
        return min(max(raw, 0.0), 1.0)


@register
class SimReward(RewardComponent):
    """Eq. 10: (cosine + 1) / 2."""

    name, measurement = "sim", "sim"

    def normalise(self, raw: float) -> float:
        return (min(max(raw, -1.0), 1.0) + 1.0) / 2.0


@register
class DnsmosReward(RewardComponent):
    """Eq. 11: MOS / 5 on a configurable head (ovrl, sig, bak or p808)."""

    name, measurement = "dnsmos", "dnsmos"
    head: str = "ovrl"

    @classmethod
    def params(cls) -> list[str]:
        return ["head"]

    def normalise(self, raw: dict | float) -> float:
        mos = raw[self.head] if isinstance(raw, dict) else raw
        return min(max(mos, 0.0), 5.0) / 5.0


@dataclass
class RewardSpec:
    """One config line: `{name: wer, weight: 1.0, tags: [], params: {alpha: 0.4}}`."""

    name: str
    weight: float = 1.0
    tags: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def default_specs() -> list[RewardSpec]:
    """The paper's combined run: WER, SIM and DNSMOS weighted equally."""
    return [RewardSpec("wer"), RewardSpec("sim"), RewardSpec("dnsmos")]


class CompositeReward:
    """Combines components; with `normalise_weights` the total is divided by the active weights, so samples
    with and without conditional components share one scale ([0, 1])."""

    def __init__(self, specs: list[RewardSpec] | None = None, normalise_weights: bool = True):
        specs = default_specs() if specs is None else specs
        self.components: list[RewardComponent] = []
        for spec in specs:
            if spec.name not in REGISTRY:
                raise ValueError(f"unknown reward {spec.name!r}; registered: {sorted(REGISTRY)}")
            self.components.append(REGISTRY[spec.name](spec.weight, spec.tags, **spec.params))
        if not self.components:
            raise ValueError("a composite reward needs at least one component")
        self.normalise_weights = normalise_weights

    @property
    def measurements(self) -> set[str]:
        return {c.measurement for c in self.components}

    def __call__(self, sample: dict) -> dict:
        """`sample` holds `text` and raw measurements (None = failed). Returns rewards, total and flags."""
        rewards: dict[str, float] = {}
        flags: list[str] = list(sample.get("flags", []))
        total = weight_sum = 0.0
        for comp in self.components:
            if not comp.active(sample.get("text", "")):
                continue
            raw = sample.get(comp.measurement)
            if raw is None:
                value = comp.minimum
                flags.append(f"{comp.name}: no measurement, minimum reward")
            else:
                value = comp.normalise(raw)
            rewards[comp.name] = value
            total += comp.weight * value
            weight_sum += comp.weight
        if self.normalise_weights and weight_sum > 0:
            total /= weight_sum
        rewards["total"] = total
        return {"rewards": rewards, "flags": flags}
