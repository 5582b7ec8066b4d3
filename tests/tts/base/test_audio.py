"""Tests for audio I/O (tts/base/audio.py): resampling, down-mixing, and AudioError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tts.base.audio import AudioError, check_wave, load_audio, resample, save_audio


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[spectrum.argmax()])


def test_load_audio_native_rate(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440, 0.5, 22050), 22050, subtype="FLOAT")
    wave, sr = load_audio(path)
    assert sr == 22050
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 11025
    np.testing.assert_allclose(wave, tone(440, 0.5, 22050), atol=1e-6)


@pytest.mark.parametrize("src_sr, target_sr", [(22050, 16000), (8000, 16000), (48000, 24000)])
def test_load_audio_resamples_and_scales_length(tmp_path, src_sr, target_sr):
    path = tmp_path / f"{src_sr}.wav"
    sf.write(path, tone(440, 1.0, src_sr), src_sr, subtype="PCM_16")
    wave, sr = load_audio(path, target_sr)
    assert sr == target_sr
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - target_sr) <= 1  # 1 s of audio is still 1 s
    assert peak_hz(wave, sr) == pytest.approx(440, abs=2)  # pitch preserved, not just the length
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.02)


def test_load_audio_same_rate_is_unchanged(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(300, 0.25, 16000), 16000, subtype="FLOAT")
    wave, sr = load_audio(path, 16000)
    assert sr == 16000
    np.testing.assert_allclose(wave, tone(300, 0.25, 16000), atol=1e-6)


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(440, 0.2, 16000, 0.6), tone(440, 0.2, 16000, 0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave, sr = load_audio(path)
    assert sr == 16000 and wave.shape == (3200,)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="no such audio file") as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_directory_is_not_an_audio_file(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path)


def test_non_audio_bytes_name_the_file(tmp_path):
    path = tmp_path / "junk.wav"
    path.write_bytes(b"this is not a RIFF file at all " * 20)
    with pytest.raises(AudioError, match="unreadable audio") as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_empty_wav_names_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty") as err:
        load_audio(path, 16000)
    assert str(path) in str(err.value)


def test_nan_waveform_names_the_file(tmp_path):
    wave = tone(440, 0.1, 16000)
    wave[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_save_audio_round_trip(tmp_path):
    wave = tone(220, 0.3, 16000, 0.7)
    path = save_audio(tmp_path / "deep" / "dir" / "out.wav", wave, 16000)
    assert path == tmp_path / "deep" / "dir" / "out.wav" and path.is_file()
    info = sf.info(str(path))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, 4800, 1, "PCM_16")
    back, sr = load_audio(path)
    assert sr == 16000
    np.testing.assert_allclose(back, wave, atol=1.5 / 32768)  # PCM_16 quantisation only


def test_save_audio_clips_out_of_range(tmp_path):
    wave = np.array([0.0, 1.5, -2.0, 0.25] * 100, dtype=np.float32)
    back, _ = load_audio(save_audio(tmp_path / "clip.wav", wave, 16000))
    assert back.max() == pytest.approx(1.0, abs=1e-4)
    assert back.min() == pytest.approx(-1.0, abs=1e-4)
    assert back[3] == pytest.approx(0.25, abs=1e-4)


def test_save_audio_rejects_nan(tmp_path):
    path = tmp_path / "bad.wav"
    with pytest.raises(AudioError, match="NaN") as err:
        save_audio(path, np.array([0.0, np.nan], dtype=np.float32), 16000)
    assert str(path) in str(err.value)
    assert not path.exists()


def test_check_wave_shapes_and_minimum_length():
    assert check_wave(np.zeros((10, 2)), "x").shape == (10,)
    assert check_wave(np.zeros(10, dtype=np.float64)).dtype == np.float32
    with pytest.raises(AudioError, match="x: expected mono audio"):
        check_wave(np.zeros((2, 3, 4)), "x")
    with pytest.raises(AudioError, match="y: audio is empty"):
        check_wave(np.zeros(5), "y", min_samples=6)


def test_resample_rejects_bad_rate():
    with pytest.raises(AudioError, match="invalid sample rate 0"):
        resample(np.zeros(10, dtype=np.float32), 0, 16000)
