"""Codec round trip pieces with known answers: loudness of streamed (chunked) decoding, original scored once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals.codec_roundtrip import roundtrip, streaming_loudness
from tts.base.audio import save_audio
from tts.base.manifest import Utterance
from tts.codec import Codec

SR, HOP = 16000, 320
HALF_DB = 20 * math.log10(2)  # 0.5x amplitude is 6.02 dB quieter


def speechlike(seconds: float = 4.0) -> np.ndarray:
    """A tone whose loudness jumps every 20 ms frame: any misaligned streamed piece changes a chunk's dB."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    envelope = np.repeat(rng.uniform(0.05, 0.5, len(t) // HOP), HOP)
    return (envelope * np.sin(2 * np.pi * 150 * t)).astype(np.float32)


class FrameCodec(Codec):
    """Codes are frame numbers of a stored wave; decode plays those frames back times a per-frame gain."""

    def __init__(self, wave: np.ndarray, gain: np.ndarray | float = 1.0):
        self.wave, self.frames = wave, len(wave) // HOP
        self.gain = np.broadcast_to(np.asarray(gain, dtype=np.float32), (self.frames,))

    sample_rate = encoder_sample_rate = SR

    @property
    def codebook_size(self) -> int:
        return self.frames

    def _encode(self, wave: np.ndarray) -> np.ndarray:
        return np.arange(len(wave) // HOP)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return np.concatenate([self.wave[c * HOP : (c + 1) * HOP] * self.gain[c] for c in codes])

    def save(self, directory):
        raise NotImplementedError


def test_streaming_loudness_known_answers():
    wave = speechlike()
    codes = np.arange(len(wave) // HOP)
    assert streaming_loudness(FrameCodec(wave), codes, wave) == pytest.approx((0.0, 0.0), abs=1e-4)
    assert streaming_loudness(FrameCodec(wave, 0.5), codes, wave) == pytest.approx((HALF_DB, 0.0), abs=1e-3)
    # every other 200 ms chunk (10 frames) at half volume: errors 6.02 and 0 dB -> mean and std both 3.01
    alternate = np.where(codes // 10 % 2 == 1, 0.5, 1.0)
    assert streaming_loudness(FrameCodec(wave, alternate), codes, wave) == pytest.approx(
        (HALF_DB / 2, HALF_DB / 2), abs=1e-3
    )


def test_streaming_loudness_cuts_the_context_samples():
    """A decoder that dropped the context cut would return 3x the samples: the chunks would not line up."""
    wave = speechlike(2.0)
    codec = FrameCodec(wave)
    codes = codec.encode(wave, SR)
    err, _ = streaming_loudness(codec, codes, wave, chunk=7, context=13)
    assert err == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match="shorter than one"):
        streaming_loudness(codec, codes[:3], wave)


class CountingASR:
    def __init__(self):
        self.calls = 0

    def transcribe(self, wave: np.ndarray) -> str:
        self.calls += 1
        return "the cat"


def test_roundtrip_scores_each_original_once_across_codecs(tmp_path):
    wave = speechlike(2.0)
    save_audio(tmp_path / "a.wav", wave, SR)
    row = Utterance("a", "the cat sat", "en", "s1", "a.wav", 2.0, SR, split="test")
    asr, originals = CountingASR(), {}
    quiet = roundtrip(FrameCodec(wave, 0.5), [row], tmp_path, asr, streaming=True, originals=originals)
    same = roundtrip(FrameCodec(wave), [row], tmp_path, asr, originals=originals)
    assert asr.calls == 3  # the original once, each round trip once
    assert list(originals) == ["a"]
    s = quiet.summary()
    assert s["n"] == 1 and s["wer_original"] == s["wer_roundtrip"] == pytest.approx(1 / 3)
    assert s["chunk_db_error"] == pytest.approx(HALF_DB, abs=1e-2) and s["chunk_db_error_std"] < 1e-2
    assert "chunk_db_error" not in same.summary()  # not measured without streaming


def test_roundtrip_unreadable_row_is_a_failure(tmp_path):
    row = Utterance("gone", "x", "en", "s1", "gone.wav", 1.0, SR, split="test")
    res = roundtrip(FrameCodec(speechlike(1.0)), [row], tmp_path, streaming=True)
    assert res.n == 0 and "no such audio file" in res.failures[0]
