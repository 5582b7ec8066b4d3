"""Codec-decoder actors: generated codes -> waveforms, with the prompt audio as left context.

They run as a `tts.base.actors.ActorGroup` (method `decode_batch`), so a decoder that dies mid-step is replaced
and its chunk retried like a reward model's. One bad item (empty codes, an out-of-range code) becomes an
`error` on that item, never an exception that would fail the whole chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tts.base.actors import ActorGroup, PoolConfig


@dataclass
class DecoderConfig(PoolConfig):
    prompt_context: bool = True  # decode after the reference audio's codes and cut them off (clone prompts)


@dataclass
class DecodeItem:
    codes: np.ndarray
    context: np.ndarray | None = None  # codes of the prompt audio, decoded first and cut off


@dataclass
class Decoded:
    wave: np.ndarray | None
    sr: int
    error: str | None = None


class DecoderActor:
    def __init__(self, codec_dir: str | None, kwargs: dict[str, Any]):
        import torch

        from tts.codec import EMBEDDED_CODEC, load_codec

        torch.set_num_threads(int(kwargs.get("threads", 1)))
        self.codec = load_codec(codec_dir or EMBEDDED_CODEC)

    def ping(self) -> bool:
        return True

    def info(self) -> dict:
        return {"sample_rate": self.codec.sample_rate, "codebook_size": self.codec.codebook_size}

    def decode_batch(self, items: list[DecodeItem]) -> list[Decoded]:
        out = []
        for item in items:
            try:
                wave = self.codec.decode_with_context(item.codes, item.context)
                out.append(Decoded(wave, self.codec.sample_rate))
            except Exception as exc:  # noqa: BLE001  one bad sample must not fail its chunk
                out.append(Decoded(None, self.codec.sample_rate, f"decode: {type(exc).__name__}: {exc}"))
        return out

    def encode_files(self, paths: list[str]) -> list[np.ndarray]:
        return [self.codec.encode_file(p) for p in paths]


def decoder_pool(codec_dir: str | None, cfg: DecoderConfig) -> ActorGroup:
    return ActorGroup(DecoderActor, lambda _: (codec_dir, {"threads": cfg.threads}), cfg, "decoder", "decode_batch")
