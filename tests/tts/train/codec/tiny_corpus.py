"""A tiny audio manifest for the codec training tests: voiced-like tones at several recording rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tts.base.audio import save_audio
from tts.base.manifest import Utterance, write_manifest

# the test model: the embedded architecture at its smallest (fast on 2 cores, same code paths)
TINY = [
    "base_config=xcodec2-tiny",
    "model.encoder_dilations=[1]",
    "model.hidden=32",
    "model.heads=2",
    "model.depth=1",
    "model.upsample_channels=[16]",
    "segment_seconds=0.2",
    "batch_size=2",
    "mpd_channels=2",
    "mpd_max_channels=8",
    "stft_n_ffts=[128]",
    "stft_channels=4",
    "mel_n_ffts=[128,256]",
    "mel_n_mels=[10,20]",
]


def tone(seconds: float, sr: int, f0: float, seed: int) -> np.ndarray:
    """Harmonics of a gliding f0 under a syllable-like envelope, a little noise, silence at the end."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 - 0.5 * np.cos(2 * np.pi * 4 * t))
    wave = 0.2 * wave + 0.01 * rng.standard_normal(len(t))
    wave[int(0.85 * len(t)) :] = 0.0
    return wave.astype(np.float32)


def write_tiny_corpus(root: Path, rates: dict[str, list[int]]) -> Path:
    """manifest.jsonl with one utterance per rate per split: rates = {"train": [16000, 48000], ...}."""
    rows = []
    for split, split_rates in rates.items():
        for k, sr in enumerate(split_rates):
            uid = f"{split}_{k:02d}_{sr}"
            seconds = 0.6 + 0.1 * (k % 5)
            save_audio(root / "wavs" / f"{uid}.wav", tone(seconds, sr, 110 + 20 * k, k), sr)
            rows.append(Utterance(uid, "a tone", "en", f"spk{k % 2}", f"wavs/{uid}.wav", seconds, sr, split))
    return write_manifest(root / "manifest.jsonl", rows)
