"""Discriminator output structure: feature maps per sub-discriminator, logits last, gradients reach the wave."""

from __future__ import annotations

import pytest
import torch

from tts.train.codec.discriminators import Discriminators, MultiPeriodDiscriminator, MultiScaleSTFTDiscriminator


def test_period_discriminators_fold_by_their_period():
    mpd = MultiPeriodDiscriminator((2, 3, 5, 7, 11), channels=4)
    outs = mpd(torch.randn(2, 1000))
    assert len(outs) == 5
    for period, feats in zip((2, 3, 5, 7, 11), outs):
        assert len(feats) == 6  # 5 strided convs + logits
        rows = -(-1000 // period)
        assert feats[0].shape == (2, 4, -(-rows // 3), period)  # time / 3, period columns kept
        assert feats[-1].ndim == 2 and feats[-1].shape[0] == 2


def test_stft_discriminators_one_per_resolution():
    msd = MultiScaleSTFTDiscriminator((512, 256, 128), channels=8)
    outs = msd(torch.randn(3, 4000))
    assert len(outs) == 3
    for n_fft, feats in zip((512, 256, 128), outs):
        frames, bins = 4000 // (n_fft // 4) + 1, n_fft // 2 + 1
        assert feats[0].shape == (3, 8, frames, bins)
        assert feats[1].shape == (3, 8, frames, -(-bins // 2))  # frequency strided by 2
        assert len(feats) == 6 and feats[-1].shape[0] == 3


def test_combined_discriminators_pass_gradients_to_the_wave():
    d = Discriminators(periods=(2, 3), mpd_channels=4, stft_n_ffts=(256,), stft_channels=4)
    wave = torch.randn(2, 2000, requires_grad=True)
    outs = d(wave)
    assert len(outs) == 3
    sum(f[-1].mean() for f in outs).backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0


@pytest.mark.parametrize("n", [1, 7, 11])
def test_short_waves_fold_with_reflection_padding(n):
    d = MultiPeriodDiscriminator((11,), channels=2)
    assert d(torch.randn(1, 64 + n))[0][-1].isfinite().all()
