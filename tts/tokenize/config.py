"""Settings of the tokenisation job; every default lives here (YAML and `key=value` overrides change them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenizeConfig:
    language: str = "en"  # language of seed-tts-eval meta.lst rows (our JSONL manifests carry their own)
    languages: list[str] | None = None  # accepted language codes; None: tts.base.languages.LANGUAGES
    codec_dir: str | None = None  # None: the embedded codec
    # False: no DNSMOS scoring nor OVRL filter, e.g. for a synthetic corpus, whose rendered speech has no noise to
    # find (DNSMOS is ~3 s of CPU per clip: most of the time of tokenising a synthetic corpus)
    dnsmos: bool = True
    dnsmos_model_dir: str | None = None  # None: the ONNX files of the speechmos wheel
    dnsmos_personalized: bool = False
    dnsmos_drop_fraction: float = 0.2  # drop rows below this quantile of OVRL (over all scored rows)
    cps_low_quantile: float = 0.05  # per-language tails of characters per second (speaking rate)
    cps_high_quantile: float = 0.95
    cps_min_rows: int = 20  # languages with fewer usable rows keep their tails: a 5% tail of 6 rows is noise
    min_duration: float = 0.5  # seconds
    max_duration: float = 40.0  # seconds; longer files are not scored by DNSMOS either (9 s windows, 1 s hop)
    shard_size: int = 256  # input rows per shard (shard k holds the kept rows among input rows [k*n, (k+1)*n))
    batch_size: int = 8  # rows per map_batches call
    dnsmos_actors: int = 2
    encode_actors: int = 2
    actor_cpus: float = 1.0  # CPUs reserved per DNSMOS / codec actor (also the DNSMOS ONNX thread count)

    def __post_init__(self) -> None:
        if not 0.0 <= self.dnsmos_drop_fraction < 1.0:
            raise ValueError(f"dnsmos_drop_fraction must be in [0, 1), got {self.dnsmos_drop_fraction}")
        if not 0.0 <= self.cps_low_quantile < self.cps_high_quantile <= 1.0:
            raise ValueError(
                f"need 0 <= cps_low_quantile < cps_high_quantile <= 1, got {self.cps_low_quantile}, "
                f"{self.cps_high_quantile}"
            )
        if not 0.0 <= self.min_duration < self.max_duration:
            raise ValueError(f"need 0 <= min_duration < max_duration, got {self.min_duration}, {self.max_duration}")
        for name in ("shard_size", "batch_size", "dnsmos_actors", "encode_actors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
