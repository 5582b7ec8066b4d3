"""Known answers of the decoder losses: loudness in dB (eq. 3-4), mel L1, LSGAN / hinge, feature matching."""

from __future__ import annotations

import math

import pytest
import torch

from tts.train.codec.losses import (
    MelLoss,
    chunk_loudness_error,
    discriminator_loss,
    feature_matching,
    generator_loss,
    rms_db,
    rms_loss,
)


def speechlike(n: int = 8000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    return 0.3 * torch.sin(2 * math.pi * 220 * t)[None] + 0.05 * torch.randn(2, n, generator=g)


def test_rms_db_of_a_sine():
    t = torch.arange(16000) / 16000
    wave = 0.5 * torch.sin(2 * math.pi * 100 * t)
    assert rms_db(wave, eps=0).item() == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=1e-4)


def test_rms_loss_is_zero_for_identical_audio_and_the_squared_db_gap_for_a_scaled_copy():
    x = speechlike()
    assert rms_loss(x, x).item() == 0.0
    for gain in (0.5, 2.0, 0.1):
        gap = 20 * math.log10(gain)
        assert (rms_db(gain * x, eps=0) - rms_db(x, eps=0)).tolist() == pytest.approx([gap, gap], abs=1e-4)
        assert rms_loss(gain * x, x, eps=0).item() == pytest.approx(gap**2, rel=1e-4)
        assert rms_loss(gain * x, x).item() == pytest.approx(gap**2, rel=1e-3)  # eps 1e-5 << RMS 0.2


def test_rms_eps_floors_digital_silence():
    silence = torch.zeros(1, 1000)
    assert rms_db(silence, eps=1e-5).item() == pytest.approx(-100.0)
    assert rms_loss(silence, silence).item() == 0.0


def test_mel_loss_is_zero_for_identical_audio_and_log10_gain_for_a_scaled_copy():
    x = speechlike(16000)
    mel = MelLoss(16000, n_ffts=(256, 1024), n_mels=(20, 80))
    assert mel(x, x).item() == 0.0
    # magnitudes scale by the gain, so every mel bin above the floor moves by log10(gain)
    assert mel(0.5 * x, x).item() == pytest.approx(abs(math.log10(0.5)), rel=1e-3)
    assert mel(torch.randn_like(x) * 0.1, x).item() > 0.2


def test_mel_loss_needs_matching_resolutions():
    with pytest.raises(ValueError, match="2 FFT sizes but 1 mel band counts"):
        MelLoss(16000, n_ffts=(256, 512), n_mels=(20,))


def outputs(*logits: float) -> list[list[torch.Tensor]]:
    return [[torch.ones(2, 3), torch.full((2, 5), v)] for v in logits]


def test_chunk_loudness_error_skips_pauses_and_measures_db():
    real = torch.cat([0.2 * torch.ones(3200), torch.zeros(3200)])  # a loud 200 ms chunk, then a pause
    fake = torch.cat([0.1 * torch.ones(3200), 0.05 * torch.ones(3200)])
    assert chunk_loudness_error(fake, real, 16000) == pytest.approx(20 * math.log10(2), abs=1e-3)
    assert chunk_loudness_error(real, real, 16000) == 0.0
    with pytest.raises(ValueError, match="shorter than one"):
        chunk_loudness_error(real[:100], real[:100], 16000)


def test_lsgan_known_answers():
    assert discriminator_loss(outputs(1.0, 1.0), outputs(0.0, 0.0)).item() == 0.0
    assert discriminator_loss(outputs(0.0), outputs(1.0)).item() == pytest.approx(2.0)
    assert generator_loss(outputs(1.0, 1.0)).item() == 0.0
    assert generator_loss(outputs(0.0, 0.5)).item() == pytest.approx(1.0 + 0.25)


def test_hinge_known_answers():
    assert discriminator_loss(outputs(2.0), outputs(-3.0), "hinge").item() == 0.0
    assert discriminator_loss(outputs(0.0), outputs(0.0), "hinge").item() == pytest.approx(2.0)
    assert generator_loss(outputs(0.5, -1.5), "hinge").item() == pytest.approx(1.0)


def test_unknown_adversarial_loss_is_named():
    with pytest.raises(ValueError, match="'wgan'"):
        discriminator_loss(outputs(0.0), outputs(0.0), "wgan")
    with pytest.raises(ValueError, match="'wgan'"):
        generator_loss(outputs(0.0), "wgan")


def test_feature_matching_sums_layer_l1_and_ignores_logits():
    real = [[torch.zeros(2, 4), torch.zeros(2, 6), torch.zeros(2, 1)] for _ in range(3)]
    fake = [[torch.full((2, 4), 0.5), torch.full((2, 6), -0.5), torch.full((2, 1), 9.0)] for _ in range(3)]
    assert feature_matching(real, real).item() == 0.0
    assert feature_matching(real, fake).item() == pytest.approx(3 * 2 * 0.5)
    fake[0][0].requires_grad_(True)
    real[0][0].requires_grad_(True)
    feature_matching(real, fake).backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None  # real features are targets only
