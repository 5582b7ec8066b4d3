"""Codec-decoder actors: generated codes -> waveforms, with the prompt audio as left context.

They run as a `tts.base.actors.ActorGroup` (method `decode_batch`), so a decoder that dies mid-step is replaced
and its chunk retried like a reward model's. A chunk's items that share a left context (a GRPO group: one
prompt, many completions) are decoded in one padded batch on the actor's device (`device`: a GPU when the actor
has one). Only the tail of a left context is decoded (`prompt_context` codes, as Serve's streaming decoder does):
the tail is what shapes the completion's first frames, and a full reference (3-10 s) would otherwise cost more
than the completion itself, for every completion of the group. One bad item (empty codes, an out-of-range code)
becomes an `error` on that item, never an exception that would fail the whole chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tts.base.actors import ActorGroup, PoolConfig

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class DecoderConfig(PoolConfig):
    # codes of the reference audio's tail decoded before each completion and cut off (clone prompts); 0: no
    # context; None: the whole reference. 25 codes = 0.5 s at 50 codes/s, Serve's streaming prompt_context.
    prompt_context: int | None = 25
    device: str = "auto"  # "auto": cuda when the actor was given a GPU (num_gpus > 0), else cpu

    def __post_init__(self) -> None:
        if self.prompt_context is not None and (isinstance(self.prompt_context, bool) or self.prompt_context < 0):
            raise ValueError(
                f"decoder.prompt_context must be a number of codes >= 0 or null, got {self.prompt_context!r}"
            )
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


def _context_key(context: np.ndarray | None) -> bytes:
    return b"" if context is None else np.asarray(context, dtype=np.int64).tobytes()


def context_tail(context: np.ndarray | None, keep: int | None) -> np.ndarray | None:
    """The last `keep` codes of `context` (None: all of it); None when nothing is left."""
    if context is None or keep == 0 or len(context) == 0:
        return None
    return np.asarray(context)[-keep:] if keep is not None else np.asarray(context)


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
        self.prompt_context = kwargs.get("prompt_context")
        self.codec = load_codec(codec_dir or EMBEDDED_CODEC).to(device)

    def ping(self) -> bool:
        return True

    def info(self) -> dict:
        return {"sample_rate": self.codec.sample_rate, "codebook_size": self.codec.codebook_size, "device": self.device}

    def decode_batch(self, items: list[DecodeItem]) -> list[Decoded]:
        out: list[Decoded | None] = [None] * len(items)
        groups: dict[bytes, tuple[np.ndarray | None, list[int]]] = {}
        for i, item in enumerate(items):
            context = context_tail(item.context, self.prompt_context)
            try:
                self.codec.check_codes(item.codes)
                if context is not None:
                    self.codec.check_codes(context)
            except Exception as exc:  # noqa: BLE001  one bad sample must not fail its chunk
                out[i] = self._failed(exc)
                continue
            groups.setdefault(_context_key(context), (context, []))[1].append(i)
        for context, members in groups.values():
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
    kwargs = {
        "threads": cfg.threads,
        "device": cfg.device,
        "num_gpus": cfg.num_gpus,
        "prompt_context": cfg.prompt_context,
    }
    return ActorGroup(DecoderActor, lambda _: (codec_dir, kwargs), cfg, "decoder", "decode_batch")
