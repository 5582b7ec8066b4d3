"""Codec-decoder actors: generated codes -> waveforms, with the prompt audio as left context.

They run as a `tts.base.actors.ActorGroup` (method `decode_batch`), so a decoder that dies mid-step is replaced
and its chunk retried like a reward model's. A chunk's items that share a left context (a GRPO group: one
prompt, many completions) are decoded in one padded batch on the actor's device (`device`: a GPU when the actor
has one). One bad item (empty codes, an out-of-range code) becomes an `error` on that item, never an exception
that would fail the whole chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tts.base.actors import ActorGroup, PoolConfig

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class DecoderConfig(PoolConfig):
    prompt_context: bool = True  # decode after the reference audio's codes and cut them off (clone prompts)
    device: str = "auto"  # "auto": cuda when the actor was given a GPU (num_gpus > 0), else cpu

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"decoder.device must be one of {DEVICES}, got {self.device!r}")


@dataclass
class DecodeItem:
    codes: np.ndarray
    context: np.ndarray | None = None  # codes of the prompt audio, decoded first and cut off


@dataclass
class Decoded:
    wave: np.ndarray | None
    sr: int
    error: str | None = None


def _context_key(item: DecodeItem) -> bytes:
    return b"" if item.context is None else np.asarray(item.context, dtype=np.int64).tobytes()


class DecoderActor:
    def __init__(self, codec_dir: str | None, kwargs: dict[str, Any]):
        import torch

        from tts.codec import EMBEDDED_CODEC, load_codec

        device = kwargs.get("device", "auto")
        if device == "auto":
            device = "cuda" if kwargs.get("num_gpus", 0) > 0 and torch.cuda.is_available() else "cpu"
        if device == "cpu":
            torch.set_num_threads(int(kwargs.get("threads", 1)))
        self.device = device
        self.codec = load_codec(codec_dir or EMBEDDED_CODEC).to(device)

    def ping(self) -> bool:
        return True

    def info(self) -> dict:
        return {"sample_rate": self.codec.sample_rate, "codebook_size": self.codec.codebook_size, "device": self.device}

    def decode_batch(self, items: list[DecodeItem]) -> list[Decoded]:
        out: list[Decoded | None] = [None] * len(items)
        groups: dict[bytes, list[int]] = {}
        for i, item in enumerate(items):
            try:
                self.codec.check_codes(item.codes)
                if item.context is not None and len(item.context):
                    self.codec.check_codes(item.context)
            except Exception as exc:  # noqa: BLE001  one bad sample must not fail its chunk
                out[i] = self._failed(exc)
                continue
            groups.setdefault(_context_key(item), []).append(i)
        for members in groups.values():
            context = items[members[0]].context
            try:
                waves = self.codec.decode_batch_with_context([items[i].codes for i in members], context)
            except Exception as exc:  # noqa: BLE001
                waves = [exc] * len(members)
            for i, wave in zip(members, waves):
                out[i] = self._failed(wave) if isinstance(wave, Exception) else Decoded(wave, self.codec.sample_rate)
        return out

    def _failed(self, exc: Exception) -> Decoded:
        return Decoded(None, self.codec.sample_rate, f"decode: {type(exc).__name__}: {exc}")

    def encode_files(self, paths: list[str]) -> list[np.ndarray]:
        return [self.codec.encode_file(p) for p in paths]


def decoder_pool(codec_dir: str | None, cfg: DecoderConfig) -> ActorGroup:
    kwargs = {"threads": cfg.threads, "device": cfg.device, "num_gpus": cfg.num_gpus}
    return ActorGroup(DecoderActor, lambda _: (codec_dir, kwargs), cfg, "decoder", "decode_batch")
