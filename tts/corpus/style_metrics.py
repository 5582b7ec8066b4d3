"""Prosody measurements that make a speaking style checkable: rate, pitch, pitch range, level, voicing; and a
fingerprint of a short sound (`sound_features`) that tells one non-verbal from another and from speech.

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
    speech = speech_span(wave)
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


def speech_span(wave: np.ndarray) -> np.ndarray:
    """`wave` between its first and last non-silent frame (what `prosody` measures)."""
    return librosa.effects.trim(wave, top_db=TOP_DB, frame_length=FRAME, hop_length=HOP)[0]


def sound_features(wave: np.ndarray, sr: int) -> np.ndarray:
    """A fixed-length fingerprint of a short sound: timbre (MFCC 1-19 mean and spread; c0, the level, left out),
    how fast it changes (mean |delta MFCC|), noisiness (spectral flatness, zero-crossing rate), pulsing (spread
    of the level envelope, e.g. laughter), log duration and voiced fraction."""
    wave = speech_span(check_wave(wave, "sound", min_samples=1))
    wave = np.pad(wave, (0, max(0, 2 * FRAME - len(wave))))
    mfcc = librosa.feature.mfcc(y=wave, sr=sr, n_mfcc=20, n_fft=FRAME, hop_length=HOP)[1:]
    delta = librosa.feature.delta(mfcc, width=3)
    flatness = librosa.feature.spectral_flatness(y=wave, n_fft=FRAME, hop_length=HOP)[0]
    zcr = librosa.feature.zero_crossing_rate(wave, frame_length=FRAME, hop_length=HOP)[0]
    rms = librosa.feature.rms(y=wave, frame_length=FRAME, hop_length=HOP)[0]
    _, voiced, _ = librosa.pyin(wave, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=FRAME, hop_length=HOP)
    scalars = [
        np.log(flatness + 1e-6).mean(),
        zcr.mean(),
        (rms / (rms.mean() + 1e-9)).std(),
        np.log(len(wave) / sr),
        voiced.mean(),
    ]
    return np.concatenate([mfcc.mean(1), mfcc.std(1), np.abs(delta).mean(1), scalars]).astype(np.float64)
