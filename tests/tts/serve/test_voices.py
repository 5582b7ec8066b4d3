"""Voice store and reference-audio checks: server-made ids, persistence, clear errors for bad uploads."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile as sf

from tests.tts.serve.codecs import bursts
from tts.base.audio import AudioError
from tts.serve.voices import read_reference


def wav(seconds: float, sr: int = 16000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    wave = bursts(seconds) if seconds else np.zeros(0)
    sf.write(buf, np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave, sr, format="WAV")
    return buf.getvalue()


def test_reads_a_valid_reference():
    wave, sr = read_reference(wav(2.0), 1.0, 30.0)
    assert sr == 16000 and len(wave) == 32000


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty"),
        (b"hello, not audio", "not a readable audio"),
        (wav(2.0)[:40], "not a readable audio"),
        (wav(0.5), "0.50 s long"),
        (wav(31.0), "31.00 s long by its header"),
        (wav(2.0, channels=12), "12 channels"),
    ],
)
def test_bad_references_raise_clear_errors(data, needle):
    with pytest.raises(AudioError, match=needle):
        read_reference(data, 1.0, 30.0)


def silent_flac(seconds: int, sr: int = 8000) -> bytes:
    """`seconds` of digital silence as FLAC, written a minute at a time (3 hours compress to about 270 KB)."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(np.zeros(sr * 60, np.int16))
    return buf.getvalue()


def unknown_length(flac: bytes) -> bytes:
    """The same FLAC with STREAMINFO's total-samples field set to 0, which the format allows ("unknown")."""
    data = bytearray(flac)
    assert data[:4] == b"fLaC"
    fields = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # rate, channels, bits kept; 36-bit total := 0
    data[18:26] = fields.to_bytes(8, "big")
    return bytes(data)


def test_compressed_hours_are_refused_from_the_header_before_decoding():
    data = silent_flac(3 * 3600)
    assert len(data) < 400_000
    start = time.perf_counter()
    with pytest.raises(AudioError, match="10800.00 s long by its header"):
        read_reference(data, 1.0, 30.0)
    assert time.perf_counter() - start < 1.0  # nothing decoded


def test_a_length_the_header_does_not_give_is_refused():
    flac = io.BytesIO()
    sf.write(flac, bursts(2.0), 16000, format="FLAC")
    with pytest.raises(AudioError, match="does not say how long"):
        read_reference(unknown_length(flac.getvalue()), 1.0, 30.0)
