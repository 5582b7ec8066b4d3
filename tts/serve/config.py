"""Settings of the Serve application (`rayjobs/serve.py --config C`); defaults live only here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tts.base.languages import LANGUAGES
from tts.base.watermark import KEY_ENV, WatermarkConfig, env_key
from tts.serve.streaming import StreamingConfig
from tts.speech_sampling import EngineSettings, SamplingSettings
from tts.speechlm import EMBEDDED_SPEECHLM


@dataclass
class DeploymentSettings:
    """Ray Serve options of one deployment; `autoscaling` (min_replicas, max_replicas, target_ongoing_requests,
    ...) replaces the fixed `num_replicas` when given."""

    num_replicas: int = 1
    autoscaling: dict[str, Any] | None = None
    max_ongoing_requests: int = 8
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
        }
        if self.autoscaling:
            opts["autoscaling_config"] = dict(self.autoscaling)
        else:
            opts["num_replicas"] = self.num_replicas
        return opts


BACKENDS = ("auto", "vllm", "hf")


@dataclass
class GenerationSettings(EngineSettings, SamplingSettings):
    """The generation deployment: the shared engine and sampling settings (request defaults: a request may override
    temperature, top_p and seed) with Serve's own defaults, its backend choice, LoRA capacity and placement."""

    # "vllm" (AsyncLLM, continuous batching) | "hf" (transformers generate, one request at a time per replica) |
    # "auto" (vllm when importable and able to load every LoRA voice, else hf)
    backend: str = "auto"
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 1500  # 30 s at 50 codes/s
    # 2.0 codes per character is below every embedded corpus utterance (2.35 to 13.9 codes/char at 50 codes/s), so
    # the model cannot end speech before it has said anything; scale it by frame rate / 50 for another codec
    min_codes_per_char: float = 2.0
    max_model_len: int = 2048
    gpu_memory_utilization: float = 0.5
    max_loras: int = 4  # vLLM: LoRA voices resident at once
    max_lora_rank: int = 16
    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend not in BACKENDS:
            raise ValueError(f"generation.backend must be one of {BACKENDS}, got {self.backend!r}")


@dataclass
class VoiceSpec:
    """A preset voice: reference audio + transcript (instant cloning) or a LoRA adapter directory
    (professional cloning), optionally both. `speaker` (an embedded corpus speaker id such as "en_08") renders
    `text` with that espeak-ng voice instead of reading `audio`: reference voices without shipping audio."""

    name: str
    audio: str | None = None
    text: str | None = None
    lora: str | None = None
    speaker: str | None = None

    def __post_init__(self) -> None:
        if self.audio and self.speaker:
            raise ValueError(f"voice {self.name!r}: give audio or speaker, not both")
        if (self.audio or self.speaker) and not (self.text or "").strip():
            raise ValueError(f"voice {self.name!r}: a reference (audio or speaker) needs its transcript in text")


API_KEY_ENV = "TTS_ALIGN_API_KEY"  # the API key, when neither api_key_file nor api_key gives it
ARENA_SECRET_ENV = "TTS_ALIGN_ARENA_SECRET"
WATERMARK_KEY_ENV = KEY_ENV  # TTS_ALIGN_WATERMARK_KEY: the watermark key, over watermark.key
# values the example configs and docs use: a server that starts with one of them is open to anyone who read them
PLACEHOLDERS = frozenset({"change-me", "change-me-too", "changeme", "secret", "password", "your-key-here"})
MAX_INPUT_CHARS = 16384  # schema bound of `input` (limits.max_input_chars may only lower it)


@dataclass
class Limits:
    max_input_chars: int = 4096
    max_body_bytes: int = 65536  # JSON request bodies; larger ones get 413 from their Content-Length, unread
    min_reference_s: float = 1.0
    max_reference_s: float = 30.0
    max_upload_bytes: int = 10_000_000
    max_voices_per_key: int = 100  # uploaded voices each API key may keep
    max_concurrent: int = 4  # streams synthesised at once per API replica
    max_queue: int = 16  # requests waiting for a slot; beyond that: 503 with Retry-After
    retry_after_s: int = 2
    min_speed: float = 0.25  # OpenAI's range
    max_speed: float = 4.0


@dataclass
class ArenaSettings:
    """The blind A/B page at /arena (paper section 4.2). A contender is "<model>/<voice>": the served model's
    directory name and a preset voice, e.g. "speechlm-embedded/alice"."""

    votes: str = "runs/arena/votes.sqlite"  # SQLite file of tts.serve.votes.VoteStore
    contenders: list[str] = field(default_factory=list)  # empty: the served model with each preset voice
    # key of pair tokens (or $TTS_ALIGN_ARENA_SECRET); None: a random one per deployment, shared by its API replicas,
    # so pairs made before a redeploy can no longer be voted on
    secret: str | None = None
    pair_ttl_s: int = 3600  # a pair can be listened to and voted on for this long
    seed: int | None = None  # sampling seed of every pair (None: a random one per pair); both sides share it


@dataclass
class ServeConfig:
    model: str = EMBEDDED_SPEECHLM  # a SpeechLM directory, or a training/GRPO run or checkpoint directory
    codec: str | None = None  # None: the codec the model records (tts.speechlm.open_speechlm)
    model_names: list[str] = field(default_factory=lambda: ["tts-align", "tts-1", "tts-1-hd"])  # accepted `model`
    # languages the model was trained on (tts.corpus.text codes); a request's `language` must be one, the first is
    # the default. The embedded SpeechLM learnt English only.
    languages: list[str] = field(default_factory=lambda: ["en"])
    default_voice: str = "default"  # no reference audio: the model's own voice
    voices: list[VoiceSpec] = field(default_factory=list)
    voices_dir: str | None = None  # where uploaded voices persist (None: memory only)
    # when keys are given, requests need `Authorization: Bearer <key>`; they come from api_key_file (one key per
    # line: each key owns the voices it uploads), else the environment variable TTS_ALIGN_API_KEY, else api_key
    # (visible in configs and `ps`). `with_secrets` resolves them into api_keys.
    api_key: str | None = None
    api_key_file: str | None = None
    api_keys: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    app_name: str = "tts"
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    decoding: DeploymentSettings = field(default_factory=DeploymentSettings)
    api: DeploymentSettings = field(default_factory=lambda: DeploymentSettings(num_cpus=0.5, max_ongoing_requests=64))
    limits: Limits = field(default_factory=Limits)
    arena: ArenaSettings = field(default_factory=ArenaSettings)
    # every served audio (streamed or whole, every format, the arena's too) carries an inaudible watermark that
    # `tts-align watermark detect FILE` finds; its key from $TTS_ALIGN_WATERMARK_KEY, else watermark.key
    watermark: WatermarkConfig = field(default_factory=WatermarkConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.limits.max_input_chars <= MAX_INPUT_CHARS:
            raise ValueError(
                f"limits.max_input_chars must be in [1, {MAX_INPUT_CHARS}], got {self.limits.max_input_chars}"
            )
        unknown = [lang for lang in self.languages if lang not in LANGUAGES]
        if not self.languages or unknown:
            raise ValueError(f"languages must be a non-empty subset of {sorted(LANGUAGES)}, got {self.languages}")


def _secret(name: str, value: str | None) -> str | None:
    if value is not None and (value.strip().lower() in PLACEHOLDERS or not value.strip()):
        raise ValueError(f"{name} is a placeholder ({value!r}): set a real secret before serving")
    return value


def with_secrets(cfg: ServeConfig) -> ServeConfig:
    """`cfg` with its API keys and arena secret resolved: the keys from api_key_file (one per line; blank lines and
    '#' comments skipped), else $TTS_ALIGN_API_KEY, else api_key; the arena secret from $TTS_ALIGN_ARENA_SECRET over
    arena.secret; the watermark key from $TTS_ALIGN_WATERMARK_KEY over watermark.key. A placeholder value is
    refused, so an example config never goes on the internet with its example key."""
    keys = [cfg.api_key] if cfg.api_key is not None else []
    if cfg.api_key_file:
        path = Path(cfg.api_key_file)
        if not path.is_file():
            raise FileNotFoundError(f"api_key_file {path} not found")
        keys = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        if not keys:
            raise ValueError(f"api_key_file {path} is empty")
    elif os.environ.get(API_KEY_ENV):
        keys = [os.environ[API_KEY_ENV].strip()]
    keys = [_secret("the API key", k) for k in keys]
    secret = os.environ.get(ARENA_SECRET_ENV) or cfg.arena.secret
    arena = replace(cfg.arena, secret=_secret("arena.secret", secret))
    watermark = replace(cfg.watermark, key=_secret("watermark.key", env_key(cfg.watermark.key)))
    return replace(cfg, api_key=None, api_key_file=None, api_keys=keys, arena=arena, watermark=watermark)
