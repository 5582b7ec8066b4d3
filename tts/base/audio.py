"""Audio I/O shared by every job: one place that turns files into float32 mono at a known rate.

Errors are `AudioError` and always name the offending file, so batch tools can count and skip them.
"""

from __future__ import annotations

import os
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf


class AudioError(ValueError):
    """A file or waveform that cannot be used as speech (unreadable, empty, wrong rate)."""


def check_wave(wave: np.ndarray, name: str = "waveform", min_samples: int = 1) -> np.ndarray:
    """Validate a waveform and return it as float32 mono."""
    wave = np.asarray(wave)
    if wave.ndim == 2:  # (samples, channels) as soundfile returns it
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise AudioError(f"{name}: expected mono audio, got shape {wave.shape}")
    if wave.size < min_samples:
        raise AudioError(f"{name}: audio is empty ({wave.size} samples)")
    wave = wave.astype(np.float32, copy=False)
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return wave


def resample(wave: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    if sr <= 0:
        raise AudioError(f"invalid sample rate {sr}")
    if sr == target_sr:
        return wave
    return librosa.resample(wave, orig_sr=sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def load_audio(path: str | Path, target_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read any soundfile-readable file as float32 mono, optionally resampled to `target_sr`."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from exc
    wave = check_wave(wave, str(path))
    if target_sr is not None:
        wave, sr = resample(wave, sr, target_sr), target_sr
    return wave, sr


def save_audio(path: str | Path, wave: np.ndarray, sr: int) -> Path:
    """Write 16-bit PCM atomically (temp file + rename): an interrupted job never leaves a cut-off file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), np.clip(check_wave(wave, str(path)), -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return path
