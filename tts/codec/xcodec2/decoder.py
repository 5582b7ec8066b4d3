"""Decoder side: Vocos-style transformer backbone at 50 frames/s, optional super-resolution, iSTFT head.

Names mirror the public checkpoint (`generator.backbone.*`, `generator.head.*`, `fc_post_a`). Every layer
takes a validity mask [B, 1, T] so a ragged batch decodes exactly as its items one by one: padded frames
are zeroed before each conv, excluded from GroupNorm statistics and from attention keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tts.codec.xcodec2.config import XCodec2Config


def conv(x: torch.Tensor, layer: nn.Conv1d, mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """'same' conv on masked input; causal pads on the left only."""
    total = (layer.kernel_size[0] - 1) * layer.dilation[0]
    pad = (total, 0) if causal else (total // 2, total - total // 2)
    return layer(F.pad(x * mask, pad))


def group_norm(x: torch.Tensor, norm: nn.GroupNorm, mask: torch.Tensor, per_frame: bool) -> torch.Tensor:
    """GroupNorm over valid frames only; `per_frame` normalises each frame alone (no look-ahead)."""
    b, c, t = x.shape
    g = x.view(b, norm.num_groups, c // norm.num_groups, t)
    if per_frame:
        mean, var = g.mean(2, keepdim=True), g.var(2, unbiased=False, keepdim=True)
    else:
        m = mask.view(b, 1, 1, t)
        n = m.sum(-1, keepdim=True) * g.shape[2]
        mean = (g * m).sum((2, 3), keepdim=True) / n
        var = ((g - mean).pow(2) * m).sum((2, 3), keepdim=True) / n
    y = ((g - mean) / torch.sqrt(var + norm.eps)).view(b, c, t)
    return y * norm.weight[None, :, None] + norm.bias[None, :, None]


class ResNetBlock(nn.Module):
    def __init__(self, dim: int, groups: int, causal: bool):
        super().__init__()
        self.causal = causal
        self.norm1 = nn.GroupNorm(groups, dim, eps=1e-6)
        self.conv1 = nn.Conv1d(dim, dim, 3)
        self.norm2 = nn.GroupNorm(groups, dim, eps=1e-6)
        self.dropout = nn.Dropout(0.1)
        self.conv2 = nn.Conv1d(dim, dim, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = conv(F.silu(group_norm(x, self.norm1, mask, self.causal)), self.conv1, mask, self.causal)
        h = self.dropout(F.silu(group_norm(h, self.norm2, mask, self.causal)))
        return x + conv(h, self.conv2, mask, self.causal)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_by_head(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE on interleaved pairs, angle set by the head index.

    The public model hands torchtune's RoPE [B, heads, T, d] where it expects [B, T, heads, d], so its
    "positions" are head indices; reproduced for checkpoint fidelity. Time order comes from the convs.
    """
    b, h, t, d = x.shape
    theta = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    ang = torch.arange(h, device=x.device, dtype=torch.float32)[:, None] * theta  # [h, d/2]
    cos, sin = ang.cos()[None, :, None], ang.sin()[None, :, None]
    xr = x.float().view(b, h, t, d // 2, 2)
    out = torch.stack([xr[..., 0] * cos - xr[..., 1] * sin, xr[..., 1] * cos + xr[..., 0] * sin], -1)
    return out.flatten(-2).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(rotate_by_head(q), rotate_by_head(k), v, attn_mask=allowed)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim, bias=False)
        self.fc2 = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.att_norm = RMSNorm(dim)
        self.att = Attention(dim, heads)
        self.ffn_norm = RMSNorm(dim)
        self.mlp = MLP(dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.att(self.att_norm(x), allowed)
        return x + self.mlp(self.ffn_norm(x))


class Backbone(nn.Module):
    """[B, T, hidden] -> [B, T, hidden]: embed conv, 2 ResNet blocks, transformer, 2 ResNet blocks, LayerNorm."""

    def __init__(self, cfg: XCodec2Config):
        super().__init__()
        d = cfg.hidden
        self.cfg = cfg
        self.embed = nn.Conv1d(d, d, 7)
        self.prior_net = nn.ModuleList([ResNetBlock(d, cfg.norm_groups, cfg.causal) for _ in range(2)])
        self.transformers = nn.ModuleList([TransformerBlock(d, cfg.heads) for _ in range(cfg.depth)])
        self.final_layer_norm = nn.LayerNorm(d, eps=1e-6)
        self.post_net = nn.ModuleList([ResNetBlock(d, cfg.norm_groups, cfg.causal) for _ in range(2)])

    def attention_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """[B, 1, T, T] bool: valid keys; in a causal config only the last `attention_window` tokens."""
        t = mask.shape[-1]
        allowed = mask[:, None].bool().expand(-1, 1, t, t)
        if self.cfg.causal:
            i = torch.arange(t, device=mask.device)
            d = i[:, None] - i[None, :]
            allowed = allowed & ((d >= 0) & (d < self.cfg.attention_window))
        return allowed

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = conv(x.transpose(1, 2), self.embed, mask, self.cfg.causal)
        for block in self.prior_net:
            x = block(x, mask)
        x = x.transpose(1, 2)
        allowed = self.attention_mask(mask)
        for block in self.transformers:
            x = block(x, allowed)
        x = x.transpose(1, 2)
        for block in self.post_net:
            x = block(x, mask)
        return self.final_layer_norm(x.transpose(1, 2))


class UpsampleStage(nn.Module):
    """Super-resolution: strided transposed conv (x stride frames), then a ResNet block."""

    def __init__(self, c_in: int, c_out: int, stride: int, groups: int, causal: bool):
        super().__init__()
        self.stride, self.causal = stride, causal
        self.up = nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride)
        self.res = ResNetBlock(c_out, groups, causal)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.stride, x.shape[-1]
        y = self.up(x * mask)  # (t + 1) * s frames; keep t * s, centred (or the first: causal)
        start = 0 if self.causal else s // 2
        y = y[..., start : start + t * s]
        mask = mask.repeat_interleave(s, dim=-1)
        return self.res(y, mask), mask


class ISTFTHead(nn.Module):
    """Frames -> log-magnitude and phase of an n_fft = 4 * hop spectrum -> waveform via `torch.istft`."""

    def __init__(self, dim: int, hop: int):
        super().__init__()
        self.hop, self.n_fft = hop, 4 * hop
        self.out = nn.Linear(dim, self.n_fft + 2)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, dim] -> complex [B, n_fft/2 + 1, T]."""
        mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        return torch.polar(mag.exp().clamp(max=1e2), phase)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """complex [B, F, T] -> [B, T * hop], frame t centred on sample t * hop + hop / 2 (Vocos "same").

        torch.istft(center=True) centres frame t on sample t * hop; a zero frame before shifts everything by
        one hop, one after completes the tail, so frame t sits at output t * hop + hop and we start at hop / 2.
        Unlike Vocos the edge envelope includes the zero frames' windows: only the first/last 2 hops differ.
        """
        t = spec.shape[-1]
        y = torch.istft(F.pad(spec, (1, 1)), self.n_fft, self.hop, window=self.window, center=True)
        return y[:, self.hop // 2 : self.hop // 2 + t * self.hop]


class XCodec2Decoder(nn.Module):
    """Quantised features [B, T, vq_dim] -> per-item waveforms at `sample_rate`."""

    def __init__(self, cfg: XCodec2Config):
        super().__init__()
        self.cfg = cfg
        self.fc_post_a = nn.Linear(cfg.vq_dim, cfg.hidden)
        self.backbone = Backbone(cfg)
        chans = (cfg.hidden, *cfg.upsample_channels)
        self.upsampler = nn.ModuleList(
            UpsampleStage(chans[i], chans[i + 1], s, cfg.norm_groups, cfg.causal)
            for i, s in enumerate(cfg.upsample_strides)
        )
        self.head = ISTFTHead(chans[-1], cfg.hop_length)

    def forward(self, z: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        mask = (torch.arange(z.shape[1], device=z.device)[None] < lengths[:, None]).to(z.dtype)[:, None]
        x = self.backbone(self.fc_post_a(z), mask).transpose(1, 2)
        for stage in self.upsampler:
            x, mask = stage(x, mask)
        spec = self.head.spectrum(x.transpose(1, 2))
        frames = mask.sum(-1).long().view(-1).tolist()
        return [self.head.istft(spec[i : i + 1, :, :n])[0] for i, n in enumerate(frames)]
