"""Prosody measurements that make a speaking style checkable: rate, pitch, pitch range, level, voicing.

Measured on the speech between the first and last non-silent frame, so the silence espeak-ng (or a corpus
builder) puts around an utterance does not count as slower speech or a lower level.
"""

from __future__ import annotations

import librosa
import numpy as np

from tts.base.audio import check_wave

FMIN, FMAX = 50.0, 600.0  # Hz: covers espeak-ng voices from a lowered male to a raised female
FRAME, HOP = 1024, 256
TOP_DB = 40.0  # frames more than this below the loudest count as silence
SILENT = 1e-4  # peak below -80 dBFS: nothing to measure


def prosody(wave: np.ndarray, sr: int) -> dict[str, float]:
    """{duration (s of speech), f0_median (Hz), f0_range (semitones, 5th-95th percentile), rms_db (dBFS of the
    speech), voiced_fraction (of speech frames)}; the f0 values are NaN when nothing is voiced (whisper)."""
    wave = check_wave(wave, "prosody input", min_samples=FRAME)
    if np.abs(wave).max() < SILENT:
        raise ValueError("prosody input is silent")
    speech, _ = librosa.effects.trim(wave, top_db=TOP_DB, frame_length=FRAME, hop_length=HOP)
    f0, voiced, _ = librosa.pyin(speech, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=FRAME, hop_length=HOP)
    rms = librosa.feature.rms(y=speech, frame_length=FRAME, hop_length=HOP)[0]
    f0 = f0[voiced]
    lo, median, hi = np.percentile(f0, [5, 50, 95]) if f0.size else (np.nan,) * 3
    return {
        "duration": len(speech) / sr,
        "f0_median": float(median),
        "f0_range": float(12 * np.log2(hi / lo)),
        "rms_db": float(20 * np.log10(np.sqrt(np.mean(rms**2)) + 1e-10)),
        "voiced_fraction": float(voiced.mean()),
    }
