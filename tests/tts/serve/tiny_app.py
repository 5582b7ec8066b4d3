"""A tiny SpeechLM + random 64-code codec served on a fresh local Ray: the real app, built in seconds."""

from __future__ import annotations

from pathlib import Path

from tests.tiny import TINY_LM, random_codec
from tts.base.cluster import free_port
from tts.serve.config import DeploymentSettings, Limits, ServeConfig
from tts.speechlm import create_tiny_speechlm

KEY = "sekret-0123456789"  # the bearer keys of the end-to-end tests' server (each owns its voices)
KEY2 = "sekret-abcdefghij"


def tiny_config(directory: Path, **overrides) -> ServeConfig:
    """ServeConfig of a tiny random policy (1 layer, 64 codes): random audio, real code paths. Deployments ask
    for no CPUs, so they fit any local Ray."""
    model, codec = directory / "lm", directory / "codec"
    if not model.exists():
        create_tiny_speechlm(model, TINY_LM, codebook_size=64)
        random_codec(codec)
    cfg = ServeConfig(model=str(model), codec=str(codec), port=free_port(), **overrides)
    cfg.generation.max_new_tokens = 40  # 0.8 s of audio: above the code floor of every test text
    cfg.generation.max_model_len = TINY_LM.max_positions
    for dep in (cfg.generation.deployment, cfg.decoding, cfg.api):
        dep.num_cpus = 0
    cfg.api = DeploymentSettings(num_cpus=0, max_ongoing_requests=64)
    cfg.limits = Limits(max_concurrent=2, max_queue=2, max_input_chars=200)
    return cfg


def save_lora(model_dir: str, out: Path) -> Path:
    """A peft adapter for `model_dir` whose lora_B weights are all 1: a LoRA voice that differs from the base
    model (zero-initialised B would leave it unchanged)."""
    from tts.lora import LoraSettings, add_lora, save_adapter
    from tts.speechlm import load_speechlm

    model, _, _ = load_speechlm(model_dir)
    lora = add_lora(model, LoraSettings(rank=2, alpha=4, target_modules=["q_proj", "v_proj", "down_proj"]))
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            p.data.fill_(1.0)
    return save_adapter(lora, out)
