"""XCodec2: 16 kHz wave -> 50 codes/s (FSQ, 65,536 codes) -> wave at 16/24/48 kHz; chunked and batched decoding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tts.codec.xcodec2.config import XCodec2Config
from tts.codec.xcodec2.decoder import XCodec2Decoder
from tts.codec.xcodec2.encoder import XCodec2Encoder
from tts.codec.xcodec2.fsq import FSQ


class XCodec2(nn.Module):
    def __init__(self, cfg: XCodec2Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = XCodec2Encoder(cfg)
        self.quantizer = FSQ(cfg.fsq_levels, cfg.vq_dim)
        self.decoder = XCodec2Decoder(cfg)

    @property
    def samples_per_token(self) -> int:
        return self.cfg.samples_per_token

    @property
    def receptive_field(self) -> tuple[int, int] | None:
        """(left, right) context in codes that can change a code's samples; None: unbounded (global attention
        and GroupNorm over the whole utterance in the non-causal configs).

        Causal configs: left = 6 (embed conv) + 2 per ResNet conv (8 convs) + (window - 1) per layer + the upsampler's
        transposed convs and ResNet blocks (at most 1 + 2 codes per stage) + 2 (iSTFT frames overlap +-2 hops);
        right = the iSTFT's 2 frames of look-ahead, in codes, rounded up: the latency of exact streaming.
        """
        cfg = self.cfg
        if not cfg.causal:
            return None
        up = 1
        left = 6 + 2 * 2 * 4 + cfg.depth * (cfg.attention_window - 1)
        for s in cfg.upsample_strides:
            up *= s
            left += 1 + -(-4 // up)
        return left + -(-2 // up), -(-2 // up)

    @torch.no_grad()
    def encode(self, wave: torch.Tensor, semantic_hidden: torch.Tensor | None = None) -> torch.Tensor:
        """wave [B, N] at 16 kHz -> codes [B, ceil(N / 320)] (right-padded to whole tokens)."""
        hop = 16000 // 50
        wave = F.pad(wave, (0, -wave.shape[-1] % hop))
        _, codes = self.quantizer.quantize(self.encoder(wave, semantic_hidden))
        return codes[:, : wave.shape[-1] // hop]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, left_context: torch.Tensor | None = None) -> torch.Tensor:
        """codes [B, T] -> wave [B, T * samples_per_token].

        With `left_context` [B, C] the decoder runs on context + codes and returns only the new codes'
        samples. A causal config reproduces one-shot decoding of the same prefix exactly when C covers
        `receptive_field[0]`; against the whole utterance, the last `receptive_field[1]` codes of a chunk are
        provisional (the iSTFT overlaps the next frames), so exact streaming holds those codes back. The
        non-causal public configs attend globally: a chunk only approximates one-shot decoding.
        """
        n_ctx = 0 if left_context is None else left_context.shape[1]
        if left_context is not None:
            codes = torch.cat([left_context, codes], dim=1)
        wave = torch.stack(self.decode_batch(list(codes)))
        return wave[:, n_ctx * self.samples_per_token :]

    @torch.no_grad()
    def decode_batch(self, codes: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Ragged 1-D code sequences -> their waves, in one padded forward pass with per-item lengths."""
        if not codes or any(c.ndim != 1 or c.numel() == 0 for c in codes):
            raise ValueError("decode_batch needs non-empty 1-D code sequences")
        lengths = torch.tensor([len(c) for c in codes], device=codes[0].device)
        padded = torch.zeros(len(codes), int(lengths.max()), dtype=torch.long, device=codes[0].device)
        for i, c in enumerate(codes):
            padded[i, : len(c)] = c
        return self.decoder(self.quantizer.indices_to_codes(padded), lengths)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def info(config_name: str) -> dict:
    """Parameter counts (meta device, nothing allocated) and rates of a named config.

    encoder_params = acoustic CodecEnc + semantic adapter + fc_prior + FSQ project_in (w2v-BERT 2.0 excluded:
    frozen, not codec weights); decoder_params = FSQ project_out + fc_post_a + backbone + upsampler + head.
    """
    from tts.codec.xcodec2.config import get_config

    cfg = get_config(config_name)
    with torch.device("meta"):
        m = XCodec2(cfg)
    q = m.quantizer
    return {
        "encoder_params": count_params(m.encoder) + count_params(q.project_in),
        "decoder_params": count_params(m.decoder) + count_params(q.project_out),
        "sample_rate": cfg.sample_rate,
        "hop_length": cfg.hop_length,
        "samples_per_token": cfg.samples_per_token,
        "codebook_size": cfg.codebook_size,
    }
