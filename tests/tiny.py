"""Tiny models and codecs shared by the tests: the real code paths, built in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tts.codec.world_vq import WorldVQCodec, WorldVQConfig
from tts.speechlm import TinySpeechLMConfig

TINY_LM = TinySpeechLMConfig(
    text_vocab_size=300,
    hidden_size=64,
    num_layers=1,
    num_heads=2,
    num_kv_heads=1,
    intermediate_size=128,
    max_positions=512,
)


def random_codec(directory: Path, env_clusters: int = 16, f0_bins: int = 4) -> Path:
    """A WORLD-VQ codec with random centroids (codebook f0_bins x env_clusters): fast, deterministic, unintelligible."""
    cfg = WorldVQConfig(env_clusters=env_clusters, f0_bins=f0_bins)
    centroids = np.random.default_rng(0).normal(size=(env_clusters, cfg.subframes * (cfg.envelope_dims + 1)))
    WorldVQCodec(cfg, centroids).save(directory)
    return Path(directory)
