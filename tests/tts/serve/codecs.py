"""Codecs for the serving tests: an exactly local tone codec and a WORLD-VQ codec fitted on speech-like bursts."""

from __future__ import annotations

import numpy as np

from tts.codec.base import Codec
from tts.codec.world_vq import WorldVQCodec, WorldVQConfig, analyse

SR = 16000


class ToneCodec(Codec):
    """Code c = a 250 Hz tone at amplitude c / (levels - 1), interpolated between frame centres: each frame's
    audio depends on its neighbours on both sides (like a real decoder's receptive field), code 0 is silence."""

    def __init__(self, levels: int = 8):
        self.levels = levels

    sample_rate = SR
    encoder_sample_rate = SR

    @property
    def codebook_size(self) -> int:
        return self.levels

    def _encode(self, wave: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        hop = self.hop_length
        n = np.arange(len(codes) * hop)
        amp = np.interp(n, np.arange(len(codes)) * hop + hop / 2, codes / (self.levels - 1))
        return amp * np.sin(2 * np.pi * 250 * (n % hop) / SR)  # 5 whole periods per frame: no phase jumps

    def save(self, directory):
        raise NotImplementedError


def bursts(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Voiced harmonic bursts (120-220 Hz, 150-500 ms) separated by 60-200 ms of silence: word-like audio."""
    rng = np.random.default_rng(seed)
    out, total = [], int(seconds * SR)
    while sum(map(len, out)) < total:
        n = int(rng.uniform(0.15, 0.5) * SR)
        t = np.arange(n) / SR
        f0 = rng.uniform(120, 220)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * np.hanning(n) * 0.3
        out += [voiced, np.zeros(int(rng.uniform(0.06, 0.2) * SR))]
    return np.concatenate(out)[:total].astype(np.float32)


def burst_codec(clusters: int = 16) -> WorldVQCodec:
    """A WORLD-VQ codec whose envelope codebook is `clusters` evenly spaced frames of `bursts()` (silence
    included): realistic decoded speech-like audio in about a second, without a k-means fit."""
    cfg = WorldVQConfig(env_clusters=clusters, f0_bins=8)
    _, feats = analyse(bursts(2.0, seed=1), cfg)
    return WorldVQCodec(cfg, feats[np.linspace(0, len(feats) - 1, clusters).astype(int)])
