"""The map_batches callables run directly on numpy batches: reading, DNSMOS annotation, codec encoding."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.tts.tokenize.tiny_corpus import small_codec
from tts.base.audio import load_audio
from tts.codec import load_codec
from tts.tokenize.stages import CodecEncoder, DnsmosAnnotator, ragged, read_audio

SR = 16000


def vowel(seconds: float, sr: int = SR, f0: float = 120.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 20))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture
def files(tmp_path):
    sf.write(tmp_path / "ok.wav", vowel(1.0), SR)
    sf.write(tmp_path / "rate8k.wav", vowel(1.0, 8000), 8000)
    sf.write(tmp_path / "rate4k.wav", vowel(1.0, 4000), 4000)
    sf.write(tmp_path / "long.wav", vowel(3.0), SR)
    (tmp_path / "corrupt.wav").write_bytes(np.random.default_rng(1).bytes(4000))
    (tmp_path / "empty.wav").write_bytes(b"")
    return tmp_path


def batch_of(*paths) -> dict[str, np.ndarray]:
    return {
        "id": np.array([p.stem for p in paths], dtype=object),
        "wav": np.array([str(p) for p in paths], dtype=object),
    }


def test_read_audio_resamples_and_names_every_failure(files):
    names = ["ok", "rate8k", "rate4k", "long", "corrupt", "empty", "missing"]
    out = read_audio(batch_of(*(files / f"{n}.wav" for n in names)), SR, 8000, max_wave_seconds=2.0)
    assert list(out["reason"]) == [
        "",
        "",
        "unsupported_sample_rate",
        "",
        "unreadable_audio",
        "unreadable_audio",
        "missing_file",
    ]
    assert list(out["sample_rate"]) == [SR, 8000, 4000, SR, 0, 0, 0]
    assert list(out["num_samples"]) == [SR, 8000, 4000, 3 * SR, 0, 0, 0]
    assert list(out["duration"][:4]) == [1.0, 1.0, 1.0, 3.0]
    assert [len(w) for w in out["wave"]] == [SR, SR, 0, 0, 0, 0, 0]  # 8 kHz resampled; long one not kept
    assert "sample rate 4000 Hz is below the 8000 Hz" in out["message"][2]
    assert all(str(files) in m for m in out["message"][4:]) and out["wave"][1].dtype == np.float32


def test_codec_encoder_matches_codec_encode(files, tmp_path):
    codec_dir = small_codec(tmp_path / "codec")
    batch = read_audio(batch_of(files / "ok.wav", files / "rate8k.wav", files / "missing.wav"), SR, 8000)
    out = CodecEncoder(str(codec_dir))(batch)
    codec = load_codec(codec_dir)
    for i, name in enumerate(["ok", "rate8k"]):
        np.testing.assert_array_equal(out["codes"][i], codec.encode(*load_audio(files / f"{name}.wav")))
    assert len(out["codes"][2]) == 0 and out["reason"][2] == "missing_file" and "wave" not in out


def test_codec_encoder_turns_codec_errors_into_rows(tmp_path):
    codec_dir = small_codec(tmp_path / "codec")
    batch = {
        "wav": np.array(["tiny.wav"], dtype=object),
        "reason": np.array([""]),  # a fixed-width <U0 column, as numpy would build it from empty strings
        "message": np.array([""]),
        "wave": ragged([np.zeros(10, np.float32)]),  # shorter than one codec frame
    }
    out = CodecEncoder(str(codec_dir))(batch)
    assert out["reason"][0] == "encode_failed" and "tiny.wav" in out["message"][0] and len(out["codes"][0]) == 0


def test_dnsmos_annotator_scores_waves_and_skips_empty_ones(files):
    batch = read_audio(batch_of(files / "ok.wav", files / "missing.wav"), SR, 8000)
    out = DnsmosAnnotator(SR)(batch)
    assert "wave" not in out and 1.0 < out["ovrl"][0] < 5.0 and 1.0 < out["p808"][0] < 5.0
    assert all(np.isnan(out[k][1]) for k in ("ovrl", "sig", "bak", "p808"))
    assert list(out["reason"]) == ["", "missing_file"]
