"""Audio response formats: incremental encoders for the streamed response body.

wav (0xFFFFFFFF sizes while streaming), pcm and Ogg Opus stream as the audio arrives. libsndfile rewrites the
header of FLAC and MP3 (sample / frame counts) when the file closes, so those are sent once complete.

Every response's audio becomes bytes here, so this is where the watermark is embedded (tts/base/watermark.py): an
encoder given an enabled `WatermarkConfig` passes each chunk through its own causal watermark filter, whose state
carries across chunks (no seams, no delay, the same samples as marking the whole audio).
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from tts.base.watermark import WatermarkConfig, WatermarkFilter

# response_format -> (media type, libsndfile format, subtype); wav and pcm are written by hand (streamable header)
FORMATS: dict[str, tuple[str, str | None, str | None]] = {
    "wav": ("audio/wav", None, None),
    "pcm": ("audio/pcm", None, None),
    "flac": ("audio/flac", "FLAC", "PCM_16"),
    "mp3": ("audio/mpeg", "MP3", "MPEG_LAYER_III"),
    "opus": ("audio/ogg", "OGG", "OPUS"),
}
STREAMABLE = {"wav", "pcm", "opus"}
STREAM_SIZE = 0xFFFFFFFF  # RIFF/data size of a WAV whose length is unknown while it streams


def supported_formats() -> list[str]:
    """The formats this libsndfile build can write (wav and pcm always)."""
    return [f for f, (_, fmt, sub) in FORMATS.items() if fmt is None or sf.check_format(fmt, sub)]


def pcm16(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_header(sample_rate: int, data_bytes: int = STREAM_SIZE) -> bytes:
    """A 16-bit mono PCM WAV header; `data_bytes` unknown (streaming) gives the conventional 0xFFFFFFFF sizes."""
    riff = STREAM_SIZE if data_bytes == STREAM_SIZE else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


class AudioEncoder:
    """`add(chunk)` returns the bytes ready to send, `close()` the rest; `media_type` for the response. With an
    enabled `watermark`, the audio is marked on its way in."""

    def __init__(
        self,
        fmt: str,
        sample_rate: int,
        known_samples: int | None = None,
        watermark: WatermarkConfig | None = None,
    ):
        if fmt not in supported_formats():
            raise ValueError(f"unsupported response_format {fmt!r}; supported: {supported_formats()}")
        self.fmt, self.sample_rate, self.watermark = fmt, sample_rate, watermark
        self.mark = WatermarkFilter(sample_rate, watermark) if watermark is not None and watermark.enabled else None
        self.media_type, sf_format, subtype = FORMATS[fmt]
        self.head = b""
        if fmt == "wav":
            self.head = wav_header(sample_rate, STREAM_SIZE if known_samples is None else 2 * known_samples)
        self.file = None
        if sf_format is not None:
            self.buffer, self.sent = io.BytesIO(), 0
            self.file = sf.SoundFile(self.buffer, "w", sample_rate, 1, subtype, format=sf_format)

    def add(self, wave: np.ndarray) -> bytes:
        if self.mark is not None:
            wave = self.mark.process(wave)
        if self.file is None:
            out, self.head = self.head + pcm16(wave), b""
            return out
        self.file.write(np.clip(wave, -1.0, 1.0))
        return self._new_bytes() if self.fmt in STREAMABLE else b""

    def close(self) -> bytes:
        if self.mark is not None:
            self.mark.flush()  # causal: nothing held back
        if self.file is None:
            out, self.head = self.head, b""
            return out
        self.file.close()
        return self._new_bytes()

    def _new_bytes(self) -> bytes:
        """Bytes written since the last call (all of the file for formats sent whole)."""
        data = self.buffer.getvalue()
        out, self.sent = data[self.sent :], len(data)
        return out


def encode_whole(fmt: str, wave: np.ndarray, sample_rate: int, watermark: WatermarkConfig | None = None) -> bytes:
    """The complete file (non-streamed responses: exact WAV sizes), marked when `watermark` is enabled."""
    enc = AudioEncoder(fmt, sample_rate, known_samples=len(wave), watermark=watermark)
    return enc.add(wave) + enc.close()
