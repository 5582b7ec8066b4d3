"""Settings of the pre-training and SFT jobs; every default lives here (YAML and `key=value` overrides change them).

One dataclass holds what both jobs share; `PretrainConfig` and `SFTConfig` only change the defaults the paper
sets apart (warm-up 10% vs 5%) and add their own data mix. A resolved copy is written to `RUN_DIR/config.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tts.lora import LoraSettings
from tts.speechlm import TinySpeechLMConfig


@dataclass
class TrainConfig:
    job: ClassVar[str] = ""
    # -- model --------------------------------------------------------------------------------------------
    # A SpeechLM directory (layout.json or a Llasa vocabulary), a run directory (its latest checkpoint), or a
    # plain HF causal LM, which is expanded with the codec's codebook (tts.base.layout.expand). None: create the
    # embedded tiny SpeechLM from `tiny` into RUN_DIR/init.
    init_from: str | None = None
    tiny: TinySpeechLMConfig = field(default_factory=TinySpeechLMConfig)
    codec_dir: str | None = None  # None: the embedded codec; sets the codebook and decodes samples
    attn_implementation: str = "sdpa"  # "flash_attention_2" on GPUs that have flash-attn
    # -- data ---------------------------------------------------------------------------------------------
    shards: list[str] = field(default_factory=lambda: ["runs/tokens"])  # rayjobs/tokenize_corpus.py outputs
    val_speakers: list[str] = field(default_factory=list)  # held out: these speakers, these ids, and a
    val_ids: list[str] = field(default_factory=list)  # fraction of the rest picked by a hash of (seed, id)
    val_fraction: float = 0.02
    max_len: int = 2048  # tokens per packed sequence
    # -- optimisation -------------------------------------------------------------------------------------
    batch_size: int = 1  # packed sequences per worker per micro-batch
    grad_accum: int = 1
    lr: float = 1e-4  # peak
    warmup_fraction: float = 0.10
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.1  # matrices only; norms and biases are not decayed
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float = 1.0
    max_steps: int | None = 1000  # optimizer steps; or set `epochs` (and max_steps: null)
    epochs: float | None = None
    halt_at_step: int | None = None  # stop early (checkpointed) but keep the max_steps schedule; resume later
    # -- runtime ------------------------------------------------------------------------------------------
    run_dir: str = "runs/train"  # Ray storage_path/name: checkpoints, samples/, metrics.jsonl, config.yaml
    num_workers: int = 1
    cpus_per_worker: int = 1  # Ray sets each worker's OMP threads to this
    use_gpu: bool = False
    bf16: bool | None = None  # None: on with GPUs, off on CPU (fp32)
    # CPU: fp32 weights and optimizer, matmuls in bf16 under torch.autocast (x1.17-1.76 tokens/s for the embedded
    # model on an AVX512-BF16 machine: docs/training.md); ignored when bf16 training is on
    cpu_autocast: bool = False
    zero_stage: int = 2
    seed: int = 0
    # -- reporting ----------------------------------------------------------------------------------------
    log_interval: int = 10  # steps between ray.train.report calls (metrics)
    eval_interval: int = 500  # held-out loss and samples (also after the last step)
    checkpoint_interval: int = 500  # also after the last step
    keep_checkpoints: int = 3
    eval_batches: int = 20  # held-out micro-batches per worker
    eval_samples: int = 2  # utterances synthesized at each evaluation (rank 0)
    sample_max_seconds: float = 10.0
    sample_temperature: float = 0.8  # 0: greedy

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        check((self.max_steps is None) != (self.epochs is None), "set exactly one of max_steps and epochs")
        check(self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}")
        check(self.epochs is None or self.epochs > 0, f"epochs must be > 0, got {self.epochs}")
        check(
            self.halt_at_step is None or self.halt_at_step >= 1, f"halt_at_step must be >= 1, got {self.halt_at_step}"
        )
        check(0.0 <= self.val_fraction < 1.0, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        check(0.0 <= self.warmup_fraction < 1.0, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        check(0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(len(self.betas) == 2, f"betas must be two numbers, got {self.betas}")
        check(
            self.zero_stage in (0, 1, 2),
            f"zero_stage must be 0, 1 or 2 (ZeRO-3 shards the weights), got {self.zero_stage}",
        )
        check(bool(self.shards), "shards is empty: give at least one rayjobs/tokenize_corpus.py output directory")
        for name in ("max_len", "batch_size", "grad_accum", "num_workers", "cpus_per_worker", "keep_checkpoints"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_interval", "eval_interval", "checkpoint_interval"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_batches", "eval_samples"):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def use_bf16(self) -> bool:
        return self.use_gpu if self.bf16 is None else self.bf16


@dataclass
class PretrainConfig(TrainConfig):
    """Speech segments up to `max_segment_seconds`, each <|speech_start|> codes <|speech_end|>, with a
    `text_fraction` share of text-only examples (transcripts) so the LM keeps its language ability."""

    job: ClassVar[str] = "pretrain"
    run_dir: str = "runs/pretrain"
    warmup_fraction: float = 0.10
    max_segment_seconds: float = 40.0  # longer utterances are cut into near-equal segments
    text_fraction: float = 0.1  # share of examples (not tokens) that are text-only

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.text_fraction < 1.0:
            raise ValueError(f"text_fraction must be in [0, 1), got {self.text_fraction}")
        if self.max_segment_seconds <= 0:
            raise ValueError(f"max_segment_seconds must be > 0, got {self.max_segment_seconds}")


@dataclass
class SFTConfig(TrainConfig):
    """TTS prompts (loss on target audio and <|speech_end|> only); a `clone_fraction` share are voice-cloning
    prompts whose reference is another utterance of the same speaker."""

    job: ClassVar[str] = "sft"
    run_dir: str = "runs/sft"
    lr: float = 5e-5
    warmup_fraction: float = 0.05
    clone_fraction: float = 0.5
    # A pre-training checkpoint or run directory: its final learning rate becomes this run's peak `lr` (the
    # paper found starting SFT there, rather than at a fresh peak, crucial).
    start_lr_from: str | None = None
    # LoRA instead of full fine-tuning (paper 3.6: markups, professional voice cloning): peft adapters on
    # init_from, which stays frozen; checkpoints hold the merged SpeechLM plus adapter/ (a Serve LoRA voice)
    lora: LoraSettings | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.clone_fraction <= 1.0:
            raise ValueError(f"clone_fraction must be in [0, 1], got {self.clone_fraction}")


CONFIGS: dict[str, type[TrainConfig]] = {"pretrain": PretrainConfig, "sft": SFTConfig}
