"""Decoder training losses (paper section 3.2, eq. 1-4): multi-resolution mel L1, RMS loudness in dB,
adversarial (LSGAN or hinge) and feature matching.

The paper's equations 3-4 (their symbols were lost in our text copy; the released Inworld trainer computes
the same): V = 20 log10(sqrt(1/N sum x_n^2) + eps) per waveform, L_RMS = mean over the batch of
(V_gen - V_orig)^2.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import torch
import torch.nn.functional as F
from torch import nn

from tts.train.codec.discriminators import Features


class MelLoss(nn.Module):
    """Mean over resolutions of L1 between log10 mel spectrograms (hop = n_fft / 4, Hann window)."""

    def __init__(
        self,
        sample_rate: int,
        n_ffts: Sequence[int] = (256, 512, 1024, 2048),
        n_mels: Sequence[int] = (20, 40, 80, 160),
        floor: float = 1e-5,
    ):
        super().__init__()
        if len(n_ffts) != len(n_mels):
            raise ValueError(f"mel loss: {len(n_ffts)} FFT sizes but {len(n_mels)} mel band counts")
        self.n_ffts, self.floor = tuple(n_ffts), floor
        for n_fft, mels in zip(n_ffts, n_mels):
            fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=mels, fmin=0.0, fmax=sample_rate / 2)
            self.register_buffer(f"fb_{n_fft}", torch.from_numpy(fb).float(), persistent=False)
            self.register_buffer(f"win_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def log_mel(self, wave: torch.Tensor, n_fft: int) -> torch.Tensor:
        spec = torch.stft(wave, n_fft, n_fft // 4, window=getattr(self, f"win_{n_fft}"), return_complex=True).abs()
        return torch.log10((getattr(self, f"fb_{n_fft}") @ spec).clamp(min=self.floor))

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        losses = [F.l1_loss(self.log_mel(fake, n), self.log_mel(real, n)) for n in self.n_ffts]
        return torch.stack(losses).mean()


def rms_db(wave: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 4: loudness of each waveform [..., N] in dB, 20 log10(RMS + eps); eps floors digital silence."""
    return 20 * torch.log10(wave.pow(2).mean(-1).sqrt() + eps)


def rms_loss(fake: torch.Tensor, real: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 3: mean squared difference of the generated and original loudness in dB."""
    return (rms_db(fake, eps) - rms_db(real, eps)).pow(2).mean()


ADVERSARIAL = ("lsgan", "hinge")


def discriminator_loss(real: list[Features], fake: list[Features], kind: str = "lsgan") -> torch.Tensor:
    """Sum over sub-discriminators: LSGAN (D(real) - 1)^2 + D(fake)^2, or hinge relu(1 - D(real)) +
    relu(1 + D(fake)), each averaged over its logits."""
    total = 0.0
    for r, f in zip(real, fake):
        if kind == "lsgan":
            total = total + (r[-1] - 1).pow(2).mean() + f[-1].pow(2).mean()
        elif kind == "hinge":
            total = total + F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean()
        else:
            raise ValueError(f"adversarial loss {kind!r}; known: {ADVERSARIAL}")
    return total


def generator_loss(fake: list[Features], kind: str = "lsgan") -> torch.Tensor:
    """Sum over sub-discriminators: LSGAN (D(fake) - 1)^2, or hinge -D(fake)."""
    if kind not in ADVERSARIAL:
        raise ValueError(f"adversarial loss {kind!r}; known: {ADVERSARIAL}")
    terms = [(f[-1] - 1).pow(2).mean() if kind == "lsgan" else -f[-1].mean() for f in fake]
    return torch.stack(terms).sum()


def feature_matching(real: list[Features], fake: list[Features]) -> torch.Tensor:
    """Sum over sub-discriminators and layers (logits excluded) of L1 between real and generated features."""
    terms = [F.l1_loss(g, t.detach()) for r, f in zip(real, fake) for t, g in zip(r[:-1], f[:-1])]
    return torch.stack(terms).sum()


def chunk_db_differences(
    fake: torch.Tensor, real: torch.Tensor, sample_rate: int, chunk_seconds: float = 0.2, floor_db: float = -50.0
) -> torch.Tensor:
    """Signed loudness (eq. 4) difference in dB, fake minus real, of aligned `chunk_seconds` chunks of two 1-D
    waves, for the chunks where the original is above `floor_db` (speech, not pauses)."""
    n = int(chunk_seconds * sample_rate)
    length = min(len(fake), len(real)) // n * n
    if length == 0:
        raise ValueError(f"waves of {min(len(fake), len(real))} samples are shorter than one {chunk_seconds} s chunk")
    a, b = rms_db(fake[:length].reshape(-1, n)), rms_db(real[:length].reshape(-1, n))
    return (a - b)[b > floor_db]


def chunk_loudness_error(
    fake: torch.Tensor, real: torch.Tensor, sample_rate: int, chunk_seconds: float = 0.2, floor_db: float = -50.0
) -> float:
    """Mean |dB difference| of `chunk_db_differences`: the volume steadiness streaming needs, where a
    whole-utterance RMS can hide a quiet chunk behind a loud one (0.0 when every chunk is a pause)."""
    diff = chunk_db_differences(fake, real, sample_rate, chunk_seconds, floor_db)
    return float(diff.abs().mean()) if len(diff) else 0.0
