"""Settings of the codec decoder training job (rayjobs/codec.py); every default lives here.

The defaults are the paper's recipe (section 3.2): the public X-codec2 encoder and FSQ frozen, the decoder
trained with mel (x15), RMS loudness, adversarial and feature-matching losses, progressive up-training by
the manifest's sample rates. YAMLs change only what a run needs (rayjobs/configs/codec_*.yaml).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tts.codec.xcodec2.config import CONFIGS, XCodec2Config
from tts.train.codec.losses import ADVERSARIAL


@dataclass
class Stage:
    """`steps` optimizer steps on the training rows whose manifest `sample_rate` is >= `min_sample_rate`."""

    min_sample_rate: int = 0
    steps: int = 1000


@dataclass
class CodecTrainConfig:
    job: ClassVar[str] = "codec"
    # -- model --------------------------------------------------------------------------------------------
    base_config: str = "xcodec2-48k"  # a named XCodec2Config (tts.codec.xcodec2.CONFIGS) ...
    model: dict[str, Any] = field(default_factory=dict)  # ... with these fields changed
    # A codec directory (codec.json, e.g. a run's checkpoint_*/codec) or a public X-codec2 checkpoint file
    # (.ckpt / .pt / .safetensors: encoder, FSQ and, if it fits, the decoder). None: random initialisation.
    init_from: str | None = None
    # Encoder + FSQ fixed, the decoder trained alone (the paper). None: frozen when init_from is given, trained
    # with the decoder from scratch otherwise (the embedded config: no pre-trained X-codec2 ships offline).
    freeze_encoder: bool | None = None
    # -- data ---------------------------------------------------------------------------------------------
    manifest: str = "data/corpus/manifest.jsonl"
    train_split: str = "train"
    eval_split: str = "val"
    languages: list[str] = field(default_factory=list)  # empty: all
    # Progressive up-training: stage 1 on audio recorded at >= 32 kHz, then native 48 kHz only.
    stages: list[Stage] = field(default_factory=lambda: [Stage(32000, 200_000), Stage(48000, 50_000)])
    segment_seconds: float = 1.0  # random crops, whole tokens
    batch_size: int = 16  # per worker
    # -- losses (eq. 1-4) ---------------------------------------------------------------------------------
    mel_weight: float = 15.0
    rms_weight: float = 1.0
    adv_weight: float = 1.0
    fm_weight: float = 1.0
    adversarial: str = "lsgan"  # or "hinge"
    adv_start_step: int = 0  # discriminators join at this step (reconstruction-only warm-up before)
    rms_eps: float = 1e-5  # eq. 4's stability constant: floors digital silence at -100 dB
    mel_n_ffts: list[int] = field(default_factory=lambda: [256, 512, 1024, 2048])
    mel_n_mels: list[int] = field(default_factory=lambda: [20, 40, 80, 160])
    # -- discriminators -----------------------------------------------------------------------------------
    mpd_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    mpd_channels: int = 16  # first layer; x4 per layer up to mpd_max_channels
    mpd_max_channels: int = 512
    stft_n_ffts: list[int] = field(default_factory=lambda: [2048, 1024, 512, 256, 128])
    stft_channels: int = 32
    # -- optimisation (generator and discriminators: AdamW each, one warm-up + cosine schedule) ------------
    lr: float = 2e-4
    disc_lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_fraction: float = 0.01
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    halt_at_step: int | None = None  # stop early (checkpointed) but keep the schedule; resume later
    # -- runtime ------------------------------------------------------------------------------------------
    run_dir: str = "runs/codec"
    num_workers: int = 1
    cpus_per_worker: int = 1
    use_gpu: bool = False
    seed: int = 0
    # -- reporting ----------------------------------------------------------------------------------------
    log_interval: int = 50
    eval_interval: int = 5000  # held-out mel / RMS loss and audio samples (also after the last step)
    checkpoint_interval: int = 5000  # also after the last step
    keep_checkpoints: int = 3
    eval_utterances: int = 8  # whole held-out utterances scored (rank 0)
    eval_samples: int = 2  # of those, written to RUN_DIR/samples/step_NNNNNN/
    eval_max_seconds: float = 10.0  # longer held-out utterances are cut

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        check(self.base_config in CONFIGS, f"base_config {self.base_config!r}; known: {sorted(CONFIGS)}")
        self.codec_config()  # unknown or inconsistent model fields fail here, before any worker starts
        check(bool(self.stages), "stages is empty: give at least one {min_sample_rate, steps}")
        for k, s in enumerate(self.stages):
            check(s.steps >= 1, f"stages[{k}].steps must be >= 1, got {s.steps}")
            check(s.min_sample_rate >= 0, f"stages[{k}].min_sample_rate must be >= 0, got {s.min_sample_rate}")
        check(not (self.freeze_encoder and self.init_from is None), "freeze_encoder needs init_from (a codec)")
        if self.freeze_encoder is None:
            self.freeze_encoder = self.init_from is not None
        check(self.adversarial in ADVERSARIAL, f"adversarial {self.adversarial!r}; known: {ADVERSARIAL}")
        check(len(self.mel_n_ffts) == len(self.mel_n_mels), "mel_n_ffts and mel_n_mels differ in length")
        check(len(self.betas) == 2, f"betas must be two numbers, got {self.betas}")
        check(self.segment_seconds * 50 >= 1, f"segment_seconds {self.segment_seconds} is under one token")
        check(0.0 <= self.warmup_fraction < 1.0, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        check(0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        check(self.lr > 0 and self.disc_lr > 0, "lr and disc_lr must be > 0")
        check(self.halt_at_step is None or self.halt_at_step >= 1, "halt_at_step must be >= 1")
        for name in (
            "batch_size",
            "num_workers",
            "cpus_per_worker",
            "keep_checkpoints",
            "mpd_channels",
            "mpd_max_channels",
        ):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_interval", "eval_interval", "checkpoint_interval", "stft_channels"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_utterances", "eval_samples", "adv_start_step"):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")

    def codec_config(self) -> XCodec2Config:
        known = {f.name for f in dataclasses.fields(XCodec2Config)}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ValueError(f"model: unknown XCodec2Config field(s) {unknown}")
        d = CONFIGS[self.base_config].to_dict() | self.model
        return XCodec2Config.from_dict(d)

    @property
    def max_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def stage_at(self, step: int) -> int:
        """Index of the stage that optimizer step `step` (0-based) belongs to."""
        end = 0
        for k, s in enumerate(self.stages):
            end += s.steps
            if step < end:
                return k
        return len(self.stages) - 1

    @property
    def segment_tokens(self) -> int:
        return round(self.segment_seconds * 50)
