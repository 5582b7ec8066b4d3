"""Settings of the evaluation job and of the embedded benchmark sets; every default lives here
(`rayjobs/configs/eval_*.yaml` and `key=value` overrides change them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from evals.buckets import DEFAULT_BOUNDS, check_bounds
from evals.protocols import check_protocol
from rewards.router import RewardsConfig
from tts.codec.decoders import DecoderConfig
from tts.rollout import RolloutConfig

SIM_AGAINST = ("prompt", "ground_truth")


@dataclass
class SynthesisConfig:
    """Synthesis from a checkpoint with the GRPO job's rollout workers and codec decoders."""

    codec_dir: str | None = None  # None: the embedded codec; must be the codec the checkpoint was trained with
    temperature: float = 0.7  # the GRPO job's held-out temperature
    seed: int = 0  # an utterance samples under a seed derived from (seed, its id): batching changes nothing
    batch_size: int = 8  # prompts per generate call (vLLM batches them; the HF backend loops)
    without_prompt: bool = True  # also decode the same tokens without the prompt audio as context (Table 10)
    # False: speak each target with no reference (the model's own voice, or a LoRA voice: professional cloning);
    # the prompt audio is then only what SIM compares with, a held-out recording of the voice
    reference: bool = True

    @property
    def variants(self) -> list[str]:
        """The decodes each item gets: with the prompt audio as the decoder's context, and without it when cloning
        and `without_prompt`."""
        return ["prompt", "no_prompt"] if self.without_prompt and self.reference else ["prompt"]

    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(backend="hf"))
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


@dataclass
class ArenaConfig:
    bootstrap: int = 1000  # resamples of the votes for the 95% intervals
    seed: int = 0
    prior_sd: float = 3.0  # Gaussian prior on log-strengths: keeps a model that won (or lost) every game finite
    scale: float = 400.0  # Elo-like display: rating = base + scale * log10(e) * log-strength
    base: float = 1000.0


@dataclass
class EvalConfig:
    out: str = "runs/eval"
    meta: list[str] = field(default_factory=list)  # seed-tts-eval meta.lst files or JSONL manifests
    language: str | None = None  # language of meta.lst rows; None: the file's directory name (en/meta.lst)
    limit: int = 0  # utterances per input file, spread evenly over it; 0: all
    wav_dir: str | None = None  # score <wav_dir>/<utt>.wav ...
    checkpoint: str | None = None  # ... or synthesize them with this SpeechLM first (into out/wavs) ...
    ground_truth: bool = False  # ... or score each utterance's gt_wav (the reference row of a benchmark)
    asr_languages: list[str] = field(default_factory=lambda: ["en"])  # what the ASR transcribes (tiny.en: en)
    buckets: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BOUNDS))  # name: chars <= bound
    chunk: int = 16  # utterances per scoring call; results are appended (and resumable) per chunk
    # how a transcript is scored against its text (evals.protocols): "ours" (Whisper's English normaliser, CER for
    # CER languages) or "seed-tts-eval" (its exact text processing and per-utterance figures, for published tables)
    protocol: str = "ours"
    # what SIM compares each rendering with: "prompt" (seed-tts-eval: the prompt recording, which instant cloning
    # copied) or "ground_truth" (the item's own recording of its text, which no system heard: one yardstick for
    # instant cloning, a LoRA voice and the model's own voice)
    sim_against: str = "prompt"
    plots: bool = True
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    arena: ArenaConfig = field(default_factory=ArenaConfig)

    def __post_init__(self) -> None:
        if self.chunk < 1 or self.limit < 0:
            raise ValueError("chunk must be >= 1 and limit >= 0")
        check_protocol(self.protocol)
        check_bounds(self.buckets)
        if self.sim_against not in SIM_AGAINST:
            raise ValueError(f"sim_against must be one of {SIM_AGAINST}; got {self.sim_against!r}")


@dataclass
class SetsConfig:
    """The embedded benchmark sets (`tts-align eval make-sets`) from a corpus manifest's test split."""

    languages: list[str] | None = None  # None: every language of the test split
    max_prompt_seconds: float = 6.0  # longest prompt utterance for the cloning and length sets
    length_language: str = "en"  # Table 7/8 are English
    length_per_bucket: int = 40
    short_chars: list[int] = field(default_factory=lambda: [3, 12])  # Table 7: short 3-12 chars (avg 7)
    long_chars: list[int] = field(default_factory=lambda: [121, 225])  # Table 7: long up to 225 chars
    sample_rate: int = 16000
    # cloning prompts of the markups set, each rendered neutral and under every tag; a goal is judged on the interval
    # over prompts, and 4 prompts moved an adapter's [whispering] voiced fraction from 0.48 (8 prompts) to 0.23
    markup_prompts: int = 8
    markup_takes: int = 1  # renderings of each prompt and tag (seeds from the ids); a prompt's takes are averaged

    def __post_init__(self) -> None:
        if self.markup_takes < 1:
            raise ValueError(f"markup_takes must be >= 1, got {self.markup_takes}")
        (s_lo, s_hi), (l_lo, l_hi) = self.short_chars, self.long_chars
        if not (1 <= s_lo <= s_hi <= DEFAULT_BOUNDS["short"] and DEFAULT_BOUNDS["medium"] < l_lo <= l_hi):
            raise ValueError(
                f"short_chars {self.short_chars} must lie in the short bucket (<= {DEFAULT_BOUNDS['short']} chars) "
                f"and long_chars {self.long_chars} in the long one (> {DEFAULT_BOUNDS['medium']})"
            )
