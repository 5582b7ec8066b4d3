"""Codec deployment: decodes streaming chunks after their left context, and encodes reference audio of voices."""

from __future__ import annotations

import numpy as np

from tts.codec import load_codec


class CodecDecoding:
    """The Serve deployment class (bound in `tts.serve.app.build_app`); one codec per replica."""

    def __init__(self, codec_dir: str):
        self.codec = load_codec(codec_dir)

    def info(self) -> dict:
        c = self.codec
        return {"sample_rate": c.sample_rate, "hop_length": c.hop_length, "codebook_size": c.codebook_size}

    def decode(self, codes: np.ndarray, context: np.ndarray) -> np.ndarray:
        return self.codec.decode_with_context(codes, context)

    def encode(self, wave: np.ndarray, sr: int) -> np.ndarray:
        return self.codec.encode(wave, sr, name="reference audio")
