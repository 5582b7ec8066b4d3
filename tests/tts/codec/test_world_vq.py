"""The embedded WORLD-VQ codec: interface contract, fitting, checksum-verified loading, bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tts.base.audio import AudioError
from tts.codec import load_codec
from tts.codec.world_vq import (
    WorldVQCodec,
    WorldVQConfig,
    analyse,
    fit,
    nearest_frames,
    warp_envelope,
    warped_copies,
)

SR = 16000


def _vowelish(seconds: float, f0: float = 120.0, sr: int = SR) -> np.ndarray:
    """A harmonic 'vowel' with a formant-like spectral tilt and a pitch glide: voiced speech-like audio."""
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 * (1 + 0.2 * t / max(seconds, 1e-9))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 30))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture(scope="module")
def fit_paths(tmp_path_factory) -> list:
    """Six voiced files with an unvoiced stretch each, and one broken file."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("fit")
    paths = []
    for i in range(6):
        w = _vowelish(1.0, 90 + 30 * i)
        w[: SR // 4] = 0.05 * rng.standard_normal(SR // 4)  # an unvoiced stretch
        p = d / f"{i}.wav"
        sf.write(p, w, SR)
        paths.append(p)
    (d / "broken.wav").write_bytes(b"not audio at all")
    return paths + [d / "broken.wav"]


@pytest.fixture(scope="module")
def codec(fit_paths) -> WorldVQCodec:
    codec, stats = fit(fit_paths, WorldVQConfig(f0_bins=8, env_clusters=16), workers=1)
    assert stats["files"] == 6 and len(stats["bad_files"]) == 1 and "broken.wav" in stats["bad_files"][0]
    return codec


def test_properties_and_frame_rate(codec):
    assert codec.codebook_size == 8 * 16
    assert codec.sample_rate == SR and codec.hop_length == 320 and codec.frame_rate == 50
    codes = codec.encode(_vowelish(1.0), SR)
    assert codes.dtype == np.int64 and len(codes) == 50
    assert codes.min() >= 0 and codes.max() < codec.codebook_size


def test_runs_on_the_cpu_only(codec):
    assert codec.to("cpu") is codec
    with pytest.raises(ValueError, match="CPU only"):
        codec.to("cuda")


def test_decode_length_and_level(codec):
    wave = _vowelish(0.8)
    out = codec.decode(codec.encode(wave, SR))
    assert len(out) == 40 * 320
    rms_in, rms_out = np.sqrt(np.mean(wave**2)), np.sqrt(np.mean(out**2))
    assert 0.3 < rms_out / rms_in < 3.0  # same loudness ballpark, not silence or clipping


def test_pitch_is_coded(codec):
    low = codec.encode(_vowelish(0.6, 90), SR) // codec.cfg.env_clusters
    high = codec.encode(_vowelish(0.6, 250), SR) // codec.cfg.env_clusters
    assert np.median(high) > np.median(low) > 0  # f0 bin rises with pitch; 0 would mean unvoiced


def test_encode_resamples_other_rates(codec):
    import librosa

    wave = _vowelish(1.0)
    codes_22k = codec.encode(librosa.resample(wave, orig_sr=SR, target_sr=22050), 22050)
    assert len(codes_22k) == len(codec.encode(wave, SR))


def test_batch_variants(codec):
    waves = [_vowelish(0.5), _vowelish(0.3, 200)]
    codes = codec.encode_batch(waves, SR)
    assert [len(c) for c in codes] == [25, 15]
    assert [len(w) for w in codec.decode_batch(codes)] == [25 * 320, 15 * 320]


@pytest.mark.parametrize(
    "wave,sr,match",
    [
        (np.zeros(0, np.float32), SR, "empty"),
        (np.zeros(SR, np.float32), 4000, "below"),
        (np.full(SR, np.nan, np.float32), SR, "NaN"),
        (np.zeros((2, 2, 2)), SR, "mono"),
    ],
)
def test_bad_audio(codec, wave, sr, match):
    with pytest.raises(AudioError, match=match):
        codec.encode(wave, sr)


@pytest.mark.parametrize(
    "codes,match", [([], "non-empty"), ([0, 10**6], "outside"), ([-1], "outside"), ([0.5], "integers")]
)
def test_bad_codes(codec, codes, match):
    with pytest.raises(ValueError, match=match):
        codec.decode(np.asarray(codes))


def test_save_load_roundtrip_and_checksum(codec, tmp_path):
    codec.save(tmp_path / "c")
    loaded = load_codec(tmp_path / "c")
    wave = _vowelish(0.5)
    np.testing.assert_array_equal(loaded.encode(wave, SR), codec.encode(wave, SR))
    weights = tmp_path / "c" / json.loads((tmp_path / "c" / "codec.json").read_text())["weights"]
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(ValueError, match="checksum"):
        load_codec(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="codec.json"):
        load_codec(tmp_path / "nowhere")


def test_load_codec_opens_a_training_checkpoint(codec, tmp_path):
    codec.save(tmp_path / "checkpoint_000100" / "codec")  # the layout of a codec training checkpoint
    wave = _vowelish(0.5)
    np.testing.assert_array_equal(load_codec(tmp_path / "checkpoint_000100").encode(wave, SR), codec.encode(wave, SR))


@pytest.mark.parametrize("subframes", [2, 4])
def test_analysis_sub_frames_shape(subframes):
    cfg = WorldVQConfig(subframes=subframes)
    f0, feats = analyse(_vowelish(1.0), cfg)
    assert cfg.analysis_period_ms == 20 / subframes
    assert f0.shape == (50,) and feats.shape == (50, subframes * (cfg.envelope_dims + 1)) == (50, cfg.code_dims)


def test_codebook_of_another_shape_is_refused():
    cfg = WorldVQConfig(env_clusters=8, f0_bins=4, subframes=4)
    with pytest.raises(ValueError, match=r"shape \(8, 82\) does not fit.*8 clusters x 164 features \(4 sub-frames"):
        WorldVQCodec(cfg, np.zeros((8, 82)))
    with pytest.raises(ValueError, match=r"shape \(7, 164\)"):
        WorldVQCodec(cfg, np.zeros((7, 164)))


def test_default_codebook_is_papers():
    assert WorldVQConfig().codebook_size == 65536


def test_load_checks_codec_type(codec, tmp_path):
    from tts.codec.xcodec2 import XCodec2Codec

    codec.save(tmp_path / "c")
    with pytest.raises(ValueError, match="codec type 'world_vq', expected 'xcodec2'"):
        XCodec2Codec.load(tmp_path / "c")


def test_nearest_frames_known_answer():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.9, 0.1], [5.0, 5.0], [4.0, 4.0]])
    centres = np.array([[0.95, 0.1], [4.4, 4.4], [0.1, 0.0]])
    np.testing.assert_array_equal(nearest_frames(centres, x), x[[2, 4, 0]])


def test_codebook_rows_are_real_training_frames(codec, fit_paths):
    """Not the k-means centres (averages that blur formants) but the frames nearest them: the training
    frames or their warped copies (the same seeded copies as the fit's)."""
    from tts.base.audio import load_audio

    per_file = [analyse(load_audio(p, SR)[0], codec.cfg)[1] for p in fit_paths[:-1]]
    frames = np.concatenate(per_file + warped_copies(per_file, codec.cfg, 1, (0.88, 1.15), seed=0))
    gaps = ((codec.centroids[:, None, :] - frames[None, :, :]) ** 2).sum(-1).min(1)
    assert gaps.max() < 1e-8 and len(np.unique(codec.centroids, axis=0)) == codec.cfg.env_clusters


def _formant_peak_hz(coded: np.ndarray, cfg: WorldVQConfig) -> float:
    import pyworld as pw

    sp = pw.decode_spectral_envelope(np.ascontiguousarray(coded, dtype=np.float64), cfg.sample_rate, cfg.fft_size)
    return float(sp[0].argmax() * cfg.sample_rate / cfg.fft_size)


@pytest.mark.parametrize("alpha", [0.88, 1.0, 1.15])
def test_warp_moves_a_formant_by_alpha(alpha):
    import pyworld as pw

    cfg = WorldVQConfig()
    hz = np.arange(cfg.fft_size // 2 + 1) * cfg.sample_rate / cfg.fft_size
    sp = np.exp(3.0 * np.exp(-(((hz - 1000.0) / 150.0) ** 2)))[None] * 1e-4  # one formant at 1 kHz
    coded = pw.code_spectral_envelope(sp, cfg.sample_rate, cfg.envelope_dims)
    assert _formant_peak_hz(coded, cfg) == pytest.approx(1000.0, abs=20)
    assert _formant_peak_hz(warp_envelope(coded, alpha, cfg), cfg) == pytest.approx(1000.0 * alpha, abs=20)


def test_fit_adds_one_warped_copy_per_file_and_keeps_aperiodicity(fit_paths):
    from tts.base.audio import load_audio

    cfg = WorldVQConfig(f0_bins=8, env_clusters=16)
    plain = fit(fit_paths[:-1], cfg, workers=1, warps=0)[1]
    warped = fit(fit_paths[:-1], cfg, workers=1, warps=2)[1]
    assert warped["frames"] == 3 * plain["frames"] and warped["warps"] == 2
    per_file = [analyse(load_audio(p, SR)[0], cfg)[1] for p in fit_paths[:2]]
    copies = warped_copies(per_file, cfg, 1, (0.88, 1.15), seed=0)
    d = cfg.envelope_dims
    for orig, copy in zip(per_file, copies):
        np.testing.assert_array_equal(copy[:, d :: d + 1], orig[:, d :: d + 1])  # aperiodicity columns
        assert not np.allclose(copy[:, :d], orig[:, :d])


def _bare(cfg: WorldVQConfig) -> WorldVQCodec:
    return WorldVQCodec(cfg, np.zeros((cfg.env_clusters, cfg.code_dims)))


def test_dithered_f0_bins_follow_a_glide_that_plain_bins_flatten():
    """A 100 -> 160 Hz glide across two wide bins: plain bins step once; error diffusion plus the
    decoder's smoothing track the glide."""
    f0 = np.geomspace(100, 160, 60)
    cfg = WorldVQConfig(f0_bins=4, env_clusters=2)
    plain = _bare(replace(cfg, f0_error_diffusion=False, f0_smoothing=1))
    dithered = _bare(cfg)
    err = {}
    for name, c in (("plain", plain), ("dithered", dithered)):
        decoded = c.decoded_f0(c.f0_codes(f0) * cfg.env_clusters)
        err[name] = np.abs(np.log(decoded[5:-5] / f0[5:-5])).mean()
    assert len(np.unique(plain.f0_codes(f0))) <= 2 and len(np.unique(dithered.f0_codes(f0))) >= 2
    assert err["dithered"] < 0.05 < err["plain"]


def test_error_diffusion_restarts_at_each_voiced_run_and_keeps_unvoiced_codes():
    c = _bare(WorldVQConfig(f0_bins=4, env_clusters=2))
    f0 = np.array([0.0, 130, 130, 130, 0, 0, 130, 300, 0])
    bins = c.f0_codes(f0)
    assert (bins[f0 == 0] == 0).all() and (bins[f0 > 0] > 0).all()
    assert bins[1] == bins[6]  # the first code of each voiced run rounds its own f0, with no carried error
    decoded = c.decoded_f0(bins * 2)
    assert (decoded[f0 == 0] == 0).all() and (decoded[f0 > 0] > 0).all()


def test_checkpoints_without_the_f0_fields_load_with_plain_bins(codec, tmp_path):
    codec.save(tmp_path / "c")
    manifest = tmp_path / "c" / "codec.json"
    meta = json.loads(manifest.read_text())
    assert meta["config"]["f0_error_diffusion"] is True and meta["config"]["f0_smoothing"] == 5
    for key in ("f0_error_diffusion", "f0_smoothing"):
        del meta["config"][key]
    manifest.write_text(json.dumps(meta))
    cfg = load_codec(tmp_path / "c").cfg
    assert (cfg.f0_error_diffusion, cfg.f0_smoothing) == (False, 1)


@pytest.mark.parametrize("n", [1, 2, 4, 5, 6])
def test_smoothing_decodes_sequences_shorter_than_its_window(n):
    c = _bare(WorldVQConfig(f0_bins=4, env_clusters=2, f0_smoothing=5))
    codes = np.full(n, 2 * 2 + 1)  # bin 2, voiced
    np.testing.assert_allclose(c.decoded_f0(codes), c._f0_centres[2])
    assert len(c.decode(codes)) == n * c.hop_length
