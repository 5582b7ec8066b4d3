"""Settings of the GRPO job; every default lives here (`rayjobs/configs/grpo_*.yaml` and `key=value` overrides
change them). The defaults are the embedded CPU run; `grpo_production.yaml` shows the GPU-cluster shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rewards.router import RewardsConfig
from tts.base.actors import check_strategy
from tts.codec.decoders import DecoderConfig
from tts.grpo.math import GRPOLossConfig
from tts.grpo.weight_transfer import GPU_SYNCS, resolve_weight_sync
from tts.lora import LoraSettings
from tts.rollout import RolloutConfig
from tts.speechlm import EMBEDDED_SPEECHLM

GROUP_FILTERS = ("keep", "drop", "resample")


@dataclass
class DataConfig:
    manifest: str = "data/corpus/manifest.jsonl"  # prompts: texts of its train split; held-out: its test split
    languages: list[str] = field(default_factory=lambda: ["en"])  # the embedded ASR is English-only
    eval_prompts: int = 16  # held-out prompts scored before and after training
    refs_per_speaker: int = 4  # reference utterances per speaker (encoded once by the codec at start)
    max_ref_seconds: float = 4.0  # longest reference utterance (its codes precede the target in the prompt)
    min_chars: int = 10
    # benchmark sets scored with the held-out prompts (before, every eval_interval steps, after), each its own
    # figures in metrics.jsonl and report.json: name -> seed-tts-eval meta.lst or eval JSONL (`rayjobs/eval.py
    # make-sets` writes cloning/<lang>, continuation/<lang>, length/en), e.g. {cloning/en: data/evalsets/...}
    eval_sets: dict[str, str] = field(default_factory=dict)
    eval_set_items: int = 8  # rows per set, spread evenly over it (0: all)


@dataclass
class LearnerConfig:
    ranks: int = 1  # DeepSpeed data-parallel ranks, one Ray actor each
    placement: str = "pack"  # ranks on as few nodes as possible (collectives); the rendezvous is on rank 0's node
    num_cpus: float = 1.0  # per rank
    num_gpus: float = 0.0  # per rank
    lr: float = 2e-5
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    eps: float = 1e-8
    grad_clip: float = 1.0
    warmup_steps: int = 0  # updates over which the learning rate rises linearly to lr (then constant)
    micro_batch_size: int = 8  # sequences per forward/backward
    # optimizer steps per GRPO step, each on its share of the step's groups (verl's ppo_mini_batch_size): more
    # learning from each rollout when rollout and scoring cost more than the update
    mini_batches: int = 1
    zero_stage: int = 2
    bf16: bool | None = None  # None: on with GPUs
    scale_by_std: bool = False  # the paper keeps advantages unscaled
    # word-synchronous policies: each word's tokens also get word_credit x (heard by ASR - the group's rate for
    # that word), so the tokens of the word that went wrong learn it, not the whole completion (tts/grpo/credit.py)
    word_credit: float = 0.0
    loss: GRPOLossConfig = field(default_factory=GRPOLossConfig)
    threads: int = 1
    # LoRA adapters instead of full fine-tuning: each update confined to a few directions (an episode carries
    # few bits; Adam's normalised steps on every weight of a small model mostly add drift). Weight sync and
    # checkpoints carry the merged model (checkpoints also the adapter). Dropout must be 0: the learner's
    # log-probs must equal the rollout engine's
    lora: LoraSettings | None = None

    def __post_init__(self) -> None:
        if self.lora is None:
            return
        if self.lora.dropout:
            raise ValueError(
                f"learner.lora.dropout must be 0 in GRPO (got {self.lora.dropout}): with dropout the learner's "
                "log-probs differ from the rollout's and every importance ratio is noise"
            )
        if self.lora.train_embeddings:
            raise ValueError("learner.lora.train_embeddings is for markup SFT; GRPO trains adapters only")
        if self.zero_stage == 3:
            raise ValueError("learner.lora with zero_stage 3 is not supported: adapters are small, use zero_stage 2")


@dataclass
class GRPOConfig:
    name: str = "grpo_embedded"  # runs/<name>
    runs_dir: str = "runs"
    policy: str = EMBEDDED_SPEECHLM  # SpeechLM directory or a training run directory
    codec_dir: str | None = None  # None: the codec the policy records (tts.speechlm.open_speechlm)
    steps: int = 20
    prompts_per_step: int = 4
    seed: int = 0
    start_timeout_s: float = 900.0  # actors not placed/loaded by then fail the job with the cluster's free resources
    off_policy: bool = False  # generate step k+1 while the learner trains on step k (one step stale)
    # DAPO's dynamic sampling: a group whose samples all scored the same has zero advantages (no signal) and only
    # dilutes the token mean. "drop" trains without such groups; "resample" replaces them with groups of new
    # prompts (up to resample_rounds extra rollouts per step), then drops what is still all-equal
    group_filter: str = "keep"  # "keep" | "drop" | "resample"
    resample_rounds: int = 2
    mask_truncated: bool = False  # completions cut at max_new_tokens stay out of the loss (DAPO's overlong filter)
    checkpoint_interval: int = 10  # steps; also after the last step
    keep_checkpoints: int = 2
    eval_before: bool = True
    eval_after: bool = True
    # also evaluate the held-out prompts every eval_interval steps (0: before and after only), as verl's test_freq:
    # eval_wer / eval_sim / eval_dnsmos_ovrl / eval_reward in that step's metrics.jsonl row, wandb and the gauges
    eval_interval: int = 0
    eval_temperature: float = 0.7
    eval_samples: int = 2  # completions per held-out prompt (same seeds before and after)
    wandb_mode: str = "offline"  # "offline" | "online" | "disabled"
    wandb_project: str = "tts-align"
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)

    def __post_init__(self) -> None:
        check_strategy(self.learner.placement, "learner.placement")
        self.rollout.weight_sync = resolve_weight_sync(
            self.rollout.weight_sync, self.rollout.backend, self.rollout.num_gpus, self.learner.num_gpus
        )
        if self.steps < 1 or self.prompts_per_step < 1 or self.checkpoint_interval < 1:
            raise ValueError("steps, prompts_per_step and checkpoint_interval must be >= 1")
        if self.learner.lora is not None and self.rollout.weight_sync in GPU_SYNCS:
            raise ValueError(
                f"learner.lora with rollout.weight_sync={self.rollout.weight_sync!r} is not supported yet (the GPU "
                "transfer sends the learner's own parameters, not the merged ones): use weight_sync=object_store"
            )
        batch = self.prompts_per_step * self.rollout.group_size
        if self.learner.mini_batches < 1 or batch % (self.learner.ranks * self.learner.mini_batches):
            raise ValueError(
                f"prompts_per_step x group_size = {batch} sequences must split evenly over "
                f"learner.mini_batches ({self.learner.mini_batches}) x learner.ranks ({self.learner.ranks})"
            )
        if self.group_filter not in GROUP_FILTERS:
            raise ValueError(f"group_filter must be one of {GROUP_FILTERS}, got {self.group_filter!r}")
        if self.wandb_mode not in ("offline", "online", "disabled"):
            raise ValueError(f"wandb_mode must be offline, online or disabled, got {self.wandb_mode!r}")
