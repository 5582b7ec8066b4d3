"""The codec interface every SpeechLM job talks to: waveform <-> one stream of integer codes."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tts.base.audio import AudioError, check_wave, load_audio, resample
from tts.base.checksum import sha256

MANIFEST = "codec.json"


class Codec(ABC):
    """A single-codebook audio codec at `frame_rate` codes per second.

    `encode` takes audio at any rate >= `min_input_sample_rate` (it resamples); `decode` returns audio at
    `sample_rate`, `hop_length` samples per code.
    """

    frame_rate: int = 50
    min_input_sample_rate: int = 8000

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def encoder_sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def codebook_size(self) -> int: ...

    @property
    def hop_length(self) -> int:
        return self.sample_rate // self.frame_rate

    @abstractmethod
    def _encode(self, wave: np.ndarray) -> np.ndarray:
        """Codes for a validated float32 mono wave at `encoder_sample_rate`."""

    @abstractmethod
    def _decode(self, codes: np.ndarray) -> np.ndarray:
        """Exactly len(codes) * hop_length samples for validated codes."""

    def encode(self, wave: np.ndarray, sr: int, name: str = "waveform") -> np.ndarray:
        if sr < self.min_input_sample_rate:
            raise AudioError(
                f"{name}: sample rate {sr} Hz is below the {self.min_input_sample_rate} Hz this codec accepts"
            )
        wave = check_wave(wave, name, min_samples=sr // self.frame_rate)
        wave = resample(wave, sr, self.encoder_sample_rate)
        return self._encode(wave).astype(np.int64)

    def encode_file(self, path: str | Path) -> np.ndarray:
        wave, sr = load_audio(path)
        return self.encode(wave, sr, name=str(path))

    def decode(self, codes: np.ndarray | Sequence[int]) -> np.ndarray:
        return self._decode(self.check_codes(codes)).astype(np.float32)

    def decode_with_context(
        self, codes: np.ndarray | Sequence[int], left_context: np.ndarray | Sequence[int] | None = None
    ) -> np.ndarray:
        """Samples of `codes` only, decoded after `left_context` codes (e.g. the prompt audio) so the decoder
        sees where the voice comes from; the context's own samples are cut off."""
        return self.decode_batch_with_context([codes], left_context)[0]

    def decode_batch_with_context(
        self, codes: Sequence[np.ndarray], left_context: np.ndarray | Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """`decode_with_context` for several code sequences after one shared left context (a GRPO group: one
        prompt, many completions) in one `decode_batch` call: one padded forward pass for a neural codec."""
        checked = [self.check_codes(c) for c in codes]
        if left_context is None or len(left_context) == 0:
            return self.decode_batch(checked)
        left = self.check_codes(left_context)
        cut = len(left) * self.hop_length
        return [w[cut:] for w in self.decode_batch([np.concatenate([left, c]) for c in checked])]

    def to(self, device: str) -> Codec:
        """Run on `device`. Signal-processing codecs (numpy) run on the CPU only; neural ones override this."""
        if device != "cpu":
            raise ValueError(f"{type(self).__name__} runs on the CPU only, not on {device!r}")
        return self

    def encode_batch(self, waves: Sequence[np.ndarray], srs: int | Sequence[int]) -> list[np.ndarray]:
        srs = [srs] * len(waves) if isinstance(srs, int) else list(srs)
        return [self.encode(w, sr, name=f"batch item {i}") for i, (w, sr) in enumerate(zip(waves, srs))]

    def decode_batch(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.decode(c) for c in codes]

    def check_codes(self, codes: np.ndarray | Sequence[int]) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 1 or codes.size == 0:
            raise ValueError(f"codes must be a non-empty 1-D array, got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be integers, got {codes.dtype}")
        bad = (codes < 0) | (codes >= self.codebook_size)
        if bad.any():
            raise ValueError(
                f"code {int(codes[bad][0])} at position {int(np.argmax(bad))} is outside [0, {self.codebook_size})"
            )
        return codes

    @abstractmethod
    def save(self, directory: str | Path) -> Path: ...

    @classmethod
    def codebook_size_of(cls, config: dict) -> int:
        """The codebook size a codec.json `config` describes, without loading weights (checkpoint classes)."""
        raise NotImplementedError(f"{cls.__name__} has no codec.json checkpoints")


def write_manifest(directory: Path, kind: str, weights: str, config: dict) -> Path:
    """codec.json: which class loads the directory, its settings and the weights' checksum."""
    manifest = {"type": kind, "weights": weights, "sha256": sha256(directory / weights), "config": config}
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def codec_manifest(directory: str | Path) -> dict:
    """codec.json as recorded (no checksum work: the class's `load` verifies the weights)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory}: not a codec checkpoint (no {MANIFEST}); fit one with `tts-align codec fit`"
        )
    return json.loads(path.read_text())


def read_codec_manifest(directory: str | Path, kind: str | None = None) -> tuple[dict, Path]:
    """Read codec.json (of codec type `kind`, if given) and verify the weights' checksum; returns (manifest,
    weights path)."""
    directory = Path(directory)
    manifest = codec_manifest(directory)
    if kind is not None and manifest["type"] != kind:
        raise ValueError(f"{directory}: codec type {manifest['type']!r}, expected {kind!r}")
    weights = directory / manifest["weights"]
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: codec weights missing")
    digest = sha256(weights)
    if digest != manifest["sha256"]:
        raise ValueError(
            f"{weights}: checksum {digest[:12]}... does not match {MANIFEST} ({manifest['sha256'][:12]}...)"
        )
    return manifest, weights
