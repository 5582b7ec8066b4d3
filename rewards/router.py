"""Fan a batch of samples out to the reward pools and join one record per sample (paper section 3.5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewards.composite import REGISTRY, CompositeReward, RewardSpec, default_specs
from rewards.pool import LocalPool, ScorerPool
from rewards.scorers import Sample, audio_problem
from tts.base.actors import PoolConfig
from tts.base.cluster import init_ray
from tts.base.languages import CER_LANGUAGES


@dataclass
class AsrConfig:
    backend: str = "faster-whisper"  # production: whisper (large-v3, GPU)
    model: str | None = None  # None: embedded Whisper tiny.en / large-v3 for the whisper backend
    device: str = "cpu"
    cer_languages: list[str] = field(default_factory=lambda: sorted(CER_LANGUAGES))
    # language -> {"backend", "model"}: languages another ASR transcribes (seed-tts-eval: zh with Paraformer-zh)
    per_language: dict[str, dict[str, str]] = field(default_factory=dict)
    pool: PoolConfig = field(default_factory=PoolConfig)

    def __post_init__(self) -> None:
        from rewards.asr import ASR_BACKENDS

        if self.backend not in ASR_BACKENDS:
            raise ValueError(f"rewards.asr.backend: {self.backend!r}; expected a backend in {list(ASR_BACKENDS)}")
        for language, spec in self.per_language.items():
            fields_ok = isinstance(spec, dict) and not set(spec) - {"backend", "model"}
            if not fields_ok or spec.get("backend") not in ASR_BACKENDS:
                raise ValueError(
                    f"rewards.asr.per_language.{language}: {spec!r}; expected a backend in {list(ASR_BACKENDS)} "
                    "and an optional model"
                )


@dataclass
class SpeakerConfig:
    backend: str = "resemblyzer"  # production: wavlm_ecapa (seed-tts-eval's WavLM-large SV) or wavlm
    path: str | None = None
    device: str = "cpu"
    pool: PoolConfig = field(default_factory=PoolConfig)


@dataclass
class DnsmosConfig:
    model_dir: str | None = None  # None: the official ONNX models inside the speechmos wheel
    personalized: bool = False
    # None: every 1 s hop, as the official script (comparable with published tables). A GRPO reward can take 1:
    # on 32 corpus clips its OVRL correlates 0.976 with the official one (mean |diff| 0.05) at 1/5 of the cost
    windows_per_clip: int | None = None
    p808: bool = True  # False: skip the P.808 MOS (NaN), which no default reward reads
    pool: PoolConfig = field(default_factory=PoolConfig)


@dataclass
class RewardsConfig:
    asr: AsrConfig = field(default_factory=AsrConfig)
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    dnsmos: DnsmosConfig = field(default_factory=DnsmosConfig)
    components: list[RewardSpec] = field(default_factory=default_specs)
    normalise_weights: bool = True
    silence_rms: float = 1e-4  # below this RMS the audio counts as silent: minimum reward, flagged
    # a reward model that fails on more than this share of a GRPO step's scorable samples stops the run (its
    # minimum rewards would otherwise train the policy on noise); 1.0: never stop
    max_failed_share: float = 0.5


# measurements a pool makes alongside its own: the ASR pool's transcripts and likelihoods share one encoder pass
ALSO_MEASURED_BY = {"asr_likelihood": "error_rate"}


# measurement -> (pool name, scorer kind, kwargs from config)
def pool_specs(cfg: RewardsConfig) -> dict[str, tuple[str, dict, PoolConfig]]:
    likelihood = any(
        spec.name in REGISTRY and REGISTRY[spec.name].measurement == "asr_likelihood" for spec in cfg.components
    )
    return {
        "error_rate": (
            "asr",
            {
                "backend": cfg.asr.backend,
                "model": cfg.asr.model,
                "device": cfg.asr.device,
                "cer_languages": cfg.asr.cer_languages,
                "per_language": cfg.asr.per_language,
                "threads": cfg.asr.pool.threads,
                "likelihood": likelihood,
            },
            cfg.asr.pool,
        ),
        "sim": (
            "speaker",
            {"backend": cfg.speaker.backend, "path": cfg.speaker.path, "device": cfg.speaker.device},
            cfg.speaker.pool,
        ),
        "dnsmos": (
            "dnsmos",
            {
                "model_dir": cfg.dnsmos.model_dir,
                "personalized": cfg.dnsmos.personalized,
                "threads": cfg.dnsmos.pool.threads,
                "windows_per_clip": cfg.dnsmos.windows_per_clip,
                "p808": cfg.dnsmos.p808,
            },
            cfg.dnsmos.pool,
        ),
    }


class RewardRouter:
    """Owns one pool per reward model the composite needs; `score(samples)` returns one record per sample:
    `{"id", "transcript", "error_rate", "metric", "sim", "dnsmos", "rewards": {..., "total"}, "flags"}`.
    With `use_ray=False` the same models run in-process (the CLI's single-file case)."""

    def __init__(self, cfg: RewardsConfig = RewardsConfig(), use_ray: bool = True):
        self.cfg = cfg
        self.composite = CompositeReward(cfg.components, cfg.normalise_weights)
        if use_ray:
            init_ray()
        specs = pool_specs(cfg)
        needed = self.composite.measurements
        unknown = needed - set(specs) - set(ALSO_MEASURED_BY)
        if unknown:
            raise ValueError(f"no reward model produces {sorted(unknown)}; pools exist for {sorted(specs)}")
        pool_cls = ScorerPool if use_ray else LocalPool
        self.pools: dict[str, ScorerPool | LocalPool] = {}
        self.measured: dict[str, list[str]] = {}  # pool (by its own measurement) -> what it measures for us
        for measurement in sorted({ALSO_MEASURED_BY.get(m, m) for m in needed}):
            name, kwargs, pool_cfg = specs[measurement]
            self.pools[measurement] = pool_cls(name, kwargs, pool_cfg, name=name)
            self.measured[measurement] = [measurement] + [
                m for m, by in ALSO_MEASURED_BY.items() if by == measurement and m in needed
            ]
        for pool in self.pools.values():
            pool.wait_ready()

    def score(self, samples: list[Sample]) -> list[dict]:
        problems = [s.meta.get("error") or audio_problem(s.wave, self.cfg.silence_rms) for s in samples]
        good = [i for i, p in enumerate(problems) if p is None]
        # every pool starts before any result is awaited: the reward models run concurrently
        pending = {m: pool.submit([samples[i] for i in good]) for m, pool in self.pools.items()}
        records = [
            {"id": s.id, "text": s.text, "language": s.language, "flags": [p] if p else []}
            for s, p in zip(samples, problems)
        ]
        for i in good:
            records[i]["failed"] = []  # reward models that could not measure this scorable sample
        for measurement in self.pools:
            results = self.pools[measurement].gather(pending[measurement])
            for i, res in zip(good, results):
                res = dict(res)
                if any(res.get(m) is None for m in self.measured[measurement]):  # scorable audio, no measurement
                    records[i]["failed"].append(self.pools[measurement].name)
                records[i]["flags"] += res.pop("flags", [])
                records[i].update(res)
        for rec in records:
            for measurement in (m for ms in self.measured.values() for m in ms):
                rec.setdefault(measurement, None)
            rec.update(self.composite(rec))
        return records

    def shutdown(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()


class RewardModelError(RuntimeError):
    pass


def check_failures(records: list[dict], max_share: float) -> None:
    """Raise naming the reward model that failed on more than `max_share` of the scorable `records` (those whose
    audio could be scored at all), with its first error."""
    scorable = [r for r in records if "failed" in r]  # the router scored them (their audio was not unusable)
    for name in sorted({n for r in scorable for n in r["failed"]}):
        failed = [r for r in scorable if name in r["failed"]]
        if len(failed) / len(scorable) > max_share:
            first = next((f for f in failed[0]["flags"] if not f.endswith("minimum reward")), "no error given")
            raise RewardModelError(
                f"reward model {name} failed on {len(failed)} of {len(scorable)} scorable samples of this step "
                f"(> rewards.max_failed_share {max_share}); first: {first}. Stopping: its minimum rewards would "
                "train the policy on noise"
            )


def ovrl_of(scores: dict | None) -> float | None:
    """OVRL of a record's `dnsmos` field (`DnsmosScores.as_dict()`), None when it was not measured."""
    return scores.get("ovrl") if isinstance(scores, dict) else None


def public_record(rec: dict) -> dict:
    """The documented JSON shape: `{"transcript", "wer"|"cer", "sim", "dnsmos": {...}, "rewards": {...}}`."""
    out = {"id": rec.get("id", ""), "transcript": rec.get("transcript")}
    if "error_rate" in rec:
        out[rec.get("metric") or "wer"] = rec["error_rate"]
    for key in ("sim", "dnsmos"):
        if key in rec:
            out[key] = rec[key]
    return out | {"rewards": rec["rewards"], "flags": rec["flags"]}
