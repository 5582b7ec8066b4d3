"""Encoder side: X-codec2's acoustic CodecEnc (Snake, anti-aliased), the semantic adapter and their fusion.

Module and attribute names mirror the public checkpoint (`CodecEnc.block.*`, `SemanticEncoder_module.*`,
`fc_prior`) so that `checkpoint.py` maps keys by prefix alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tts.codec.xcodec2.config import XCodec2Config


class SnakeBeta(nn.Module):
    """x + sin^2(a x) / b with log-scale a, b: periodic inductive bias for waveforms."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.alpha.exp()[None, :, None], self.beta.exp()[None, :, None]
        return x + torch.sin(x * a).pow(2) / (b + 1e-9)


def kaiser_sinc(cutoff: float, half_width: float, size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass (even `size`), normalised to unit DC gain."""
    half = size // 2
    a = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    beta = 0.1102 * (a - 8.7) if a > 50 else (0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21) if a >= 21 else 0.0)
    t = torch.arange(-half, half) + 0.5
    f = 2 * cutoff * torch.kaiser_window(size, periodic=False, beta=beta) * torch.sinc(2 * cutoff * t)
    return (f / f.sum()).view(1, 1, size)


class AntiAliasedSnake(nn.Module):
    """Snake at twice the rate (upsample, act, low-pass downsample): limits aliasing of its harmonics."""

    def __init__(self, dim: int, kernel: int = 12):
        super().__init__()
        self.act = SnakeBeta(dim)
        self.kernel = kernel
        self.register_buffer("filter", kaiser_sinc(0.25, 0.3, kernel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, k = x.shape[1], self.kernel
        w = self.filter.expand(c, -1, -1)
        pad = k // 2 - 1
        y = 2 * F.conv_transpose1d(F.pad(x, (pad, pad), mode="replicate"), w, stride=2, groups=c)
        trim = pad * 2 + (k - 2) // 2
        y = self.act(y[..., trim : y.shape[-1] - trim])
        return F.conv1d(F.pad(y, (k // 2 - 1, k // 2), mode="replicate"), w, stride=2, groups=c)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            AntiAliasedSnake(dim),
            nn.Conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation),
            AntiAliasedSnake(dim),
            nn.Conv1d(dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def encoder_block(dim: int, stride: int, dilations: tuple[int, ...]) -> nn.Sequential:
    """Residual units at dim/2, then a strided conv to dim (downsample by `stride`)."""
    return nn.Sequential(
        *[ResidualUnit(dim // 2, d) for d in dilations],
        AntiAliasedSnake(dim // 2),
        nn.Conv1d(dim // 2, dim, 2 * stride, stride=stride, padding=stride // 2 + stride % 2),
    )


class AcousticEncoder(nn.Module):
    """wave [B, 1, N] (16 kHz, N a multiple of 320) -> [B, encoder_dim, N / 320]."""

    def __init__(self, cfg: XCodec2Config):
        super().__init__()
        d = cfg.encoder_channels
        layers: list[nn.Module] = [nn.Conv1d(1, d, 7, padding=3)]
        for s in cfg.encoder_strides:
            d *= 2
            layers.append(encoder_block(d, s, cfg.encoder_dilations))
        layers += [AntiAliasedSnake(d), nn.Conv1d(d, cfg.encoder_dim, 3, padding=1)]
        self.block = nn.Sequential(*layers)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.block(wave)


class SemanticAdapter(nn.Module):
    """w2v-BERT 2.0 hidden states [B, 1024, T] -> semantic features (conv, residual conv pair, conv)."""

    def __init__(self, dim: int):
        super().__init__()
        self.initial_conv = nn.Conv1d(dim, dim, 3, padding=1, bias=False)
        self.residual_blocks = nn.Sequential(
            nn.ReLU(), nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv1d(dim, dim, 3, padding=1)
        )
        self.final_conv = nn.Conv1d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial_conv(x)
        return self.final_conv(x + self.residual_blocks(x))


class XCodec2Encoder(nn.Module):
    """Acoustic (+ semantic) features fused by concatenation and `fc_prior` -> [B, T, vq_dim]."""

    def __init__(self, cfg: XCodec2Config):
        super().__init__()
        self.cfg = cfg
        self.acoustic = AcousticEncoder(cfg)
        self.semantic = SemanticAdapter(cfg.semantic_dim) if cfg.semantic else None
        self.fc_prior = nn.Linear(cfg.fused_dim, cfg.vq_dim)

    def forward(self, wave: torch.Tensor, semantic_hidden: torch.Tensor | None = None) -> torch.Tensor:
        """wave [B, N] at 16 kHz; semantic_hidden [B, T', semantic_dim] (w2v-BERT layer) when semantic."""
        x = self.acoustic(wave.unsqueeze(1))
        if self.semantic is not None:
            if semantic_hidden is None:
                raise ValueError("this config fuses w2v-BERT 2.0 features: pass semantic_hidden")
            s = self.semantic(semantic_hidden.transpose(1, 2))
            t = min(x.shape[-1], s.shape[-1])
            x = torch.cat([s[..., :t], x[..., :t]], dim=1)  # semantic first, as in the public model
        return self.fc_prior(x.transpose(1, 2))


class W2VBertFeatures(nn.Module):
    """The frozen w2v-BERT 2.0 (transformers `Wav2Vec2BertModel`) from a local directory: hidden layer `layer`.

    Loaded only when a semantic config encodes; never part of the codec's weights or parameter counts.
    """

    def __init__(self, path: str, layer: int = 16):
        super().__init__()
        from transformers import AutoFeatureExtractor, Wav2Vec2BertModel

        self.extractor = AutoFeatureExtractor.from_pretrained(path)
        self.model = Wav2Vec2BertModel.from_pretrained(path).eval().requires_grad_(False)
        self.layer = layer

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave [B, N] at 16 kHz -> [B, ~N/320, 1024]; padded by 160 each side as the public inference does."""
        padded = F.pad(wave, (160, 160)).cpu().numpy()
        feats = self.extractor(list(padded), sampling_rate=16000, return_tensors="pt")
        feats = feats["input_features"].to(wave.device)
        return self.model(feats, output_hidden_states=True).hidden_states[self.layer]
