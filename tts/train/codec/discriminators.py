"""GAN discriminators of decoder training (paper section 3.2): multi-period (HiFi-GAN MPD) and multi-scale
STFT (EnCodec-style MS-STFTD on the complex spectrogram).

Every discriminator returns, per sub-discriminator, its list of feature maps with the logits last: the
adversarial losses read `[-1]`, feature matching the rest (`losses.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

Features = list[torch.Tensor]


def conv_stack(convs: nn.ModuleList, out: nn.Module, x: torch.Tensor, slope: float) -> Features:
    """Each conv's leaky-ReLU output, then the flattened logits of `out`."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), slope)
        feats.append(x)
    return [*feats, out(x).flatten(1)]


class PeriodDiscriminator(nn.Module):
    """Wave [B, T] folded to [B, 1, T/p, p]: 2-D convs over time only see samples `period` apart."""

    def __init__(
        self, period: int, channels: int = 16, growth: int = 4, max_channels: int = 512, strides=(3, 3, 3, 3, 1)
    ):
        super().__init__()
        self.period = period
        layers, c_in, c_out = [], 1, channels
        for s in strides:
            layers.append(weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (s, 1), padding=(2, 0))))
            c_in, c_out = c_out, min(c_out * growth, max_channels)
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> Features:
        b, t = wave.shape
        x = F.pad(wave, (0, -t % self.period), mode="reflect").view(b, 1, -1, self.period)
        return conv_stack(self.convs, self.out, x, 0.1)


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), channels: int = 16, max_channels: int = 512):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels, 4, max_channels) for p in periods)

    def forward(self, wave: torch.Tensor) -> list[Features]:
        return [d(wave) for d in self.discriminators]


class STFTDiscriminator(nn.Module):
    """Complex STFT (real, imag as 2 channels) [B, 2, frames, bins] -> 2-D convs dilated in time, strided in
    frequency."""

    def __init__(self, n_fft: int, channels: int = 32, dilations: Sequence[int] = (1, 2, 4)):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [weight_norm(nn.Conv2d(2, channels, (3, 9), padding=(1, 4)))]
        for d in dilations:
            layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), dilation=(d, 1), padding=(d, 4))))
        layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> Features:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        return conv_stack(self.convs, self.out, torch.view_as_real(spec).permute(0, 3, 2, 1), 0.2)  # [B, 2, T, F]


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, n_ffts: Sequence[int] = (2048, 1024, 512, 256, 128), channels: int = 32):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, channels) for n in n_ffts)

    def forward(self, wave: torch.Tensor) -> list[Features]:
        return [d(wave) for d in self.discriminators]


class Discriminators(nn.Module):
    """MPD + MS-STFTD as one module (one optimizer, one DDP wrapper): outputs of both, concatenated."""

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        mpd_channels: int = 16,
        stft_n_ffts: Sequence[int] = (2048, 1024, 512, 256, 128),
        stft_channels: int = 32,
        mpd_max_channels: int = 512,
    ):
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(periods, mpd_channels, mpd_max_channels)
        self.msd = MultiScaleSTFTDiscriminator(stft_n_ffts, stft_channels)

    def forward(self, wave: torch.Tensor) -> list[Features]:
        return self.mpd(wave) + self.msd(wave)
