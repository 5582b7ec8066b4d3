"""The audio watermark (tts/base/watermark.py) on real speech (espeak-ng voices of the embedded corpus): found in
marked speech after codecs, resampling and gain, not in unmarked speech nor under another key; streamed marking
equals whole marking; bad input gets a clear error; and the `tts-align watermark` commands."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tts.base.audio import AudioError, resample
from tts.base.watermark import (
    MIN_SECONDS,
    WatermarkConfig,
    WatermarkError,
    WatermarkFilter,
    band_residuals,
    design_filter,
    detect,
    embed,
    gain_db,
    score,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")

CFG = WatermarkConfig()
SENTENCES = {  # two held-out corpus voices and a training one, a few seconds each
    "en_08": "In the afternoon, my sister took the train to the old farm near the river.",
    "en_09": "My teacher will listen to the radio at home tomorrow morning, before the long walk.",
    "en_00": "The small dog ran across the garden and hid under the table when the storm began.",
}


def speech(speaker: str, sr: int = 16000) -> np.ndarray:
    from tts.corpus.generate import speak
    from tts.corpus.voices import find_speaker

    return speak(find_speaker("en", speaker), SENTENCES[speaker], sr)


@pytest.fixture(scope="module")
def voices() -> dict[str, np.ndarray]:
    return {s: speech(s) for s in SENTENCES}


@pytest.fixture(scope="module")
def marked(voices) -> dict[str, np.ndarray]:
    return {s: embed(w, 16000, CFG) for s, w in voices.items()}


def roundtrip(wave: np.ndarray, sr: int, fmt: str, subtype: str, **opts) -> tuple[np.ndarray, int]:
    buf = io.BytesIO()
    sf.write(buf, np.clip(wave, -1, 1), sr, format=fmt, subtype=subtype, **opts)
    buf.seek(0)
    return sf.read(buf, dtype="float32")


def test_found_in_marked_speech_not_in_unmarked_nor_under_another_key(voices, marked):
    for name, wave in voices.items():
        assert len(wave) / 16000 > 3.0
        hit = detect(marked[name], 16000, CFG)
        assert hit.watermarked and hit.score >= CFG.threshold + 2, (name, hit)
        assert not detect(wave, 16000, CFG).watermarked, name
        assert not detect(marked[name], 16000, WatermarkConfig(key="someone-else")).watermarked, name


def test_null_scores_of_unmarked_speech_look_standard_normal(voices):
    """Unmarked speech under 30 keys: the score's null is about N(0, 1), far below the threshold."""
    keys = [WatermarkConfig(key=f"k{i}") for i in range(30)]
    scores = np.array([score(band_residuals(w, 16000, CFG), k) for w in voices.values() for k in keys])
    assert abs(scores.mean()) < 0.6 and 0.5 < scores.std() < 1.6
    assert scores.max() < CFG.threshold


def test_marking_keeps_length_alignment_and_is_faint(voices, marked):
    for name, wave in voices.items():
        out = marked[name]
        assert out.dtype == np.float32 and out.shape == wave.shape
        snr = 10 * np.log10(np.sum(wave**2) / np.sum((out - wave) ** 2))
        assert 12.0 < snr < 25.0, snr  # +-1.5 dB of gain: a 15 dB "SNR" that is a faint EQ ripple
        assert np.corrcoef(wave, out)[0, 1] > 0.98  # no delay


@pytest.mark.parametrize("sr", [8000, 16000, 24000, 48000])
def test_filter_magnitude_is_the_keyed_ripple(sr):
    taps = design_filter(sr, CFG)
    n = 1 << 17
    freqs = np.fft.rfftfreq(n, 1 / sr)
    response = 20 * np.log10(np.abs(np.fft.rfft(taps, n)))
    np.testing.assert_allclose(response, gain_db(freqs, CFG, sr), atol=0.1)
    centres = CFG.centres()
    inside = centres + CFG.band_hz <= 0.45 * sr
    at = np.interp(centres[inside], freqs, response)
    np.testing.assert_allclose(at, CFG.strength_db * CFG.signs()[inside], atol=0.1)
    assert inside.sum() >= 40  # 8 kHz audio is still marked in the bands below 3.6 kHz


@pytest.mark.parametrize(
    "attack",
    ["mp3", "mp3 32 kbit/s", "opus", "opus 24 kbit/s", "8k and back", "to 44.1k", "gain -6 dB", "gain +6 dB"],
)
def test_survives_codecs_resampling_and_gain(marked, attack):
    for name, wave in marked.items():
        sr = 16000
        if attack == "mp3":
            wave, sr = roundtrip(wave, sr, "MP3", "MPEG_LAYER_III")
        elif attack == "mp3 32 kbit/s":
            wave, sr = roundtrip(wave, sr, "MP3", "MPEG_LAYER_III", compression_level=0.85, bitrate_mode="CONSTANT")
        elif attack == "opus":
            wave, sr = roundtrip(wave, sr, "OGG", "OPUS")
        elif attack == "opus 24 kbit/s":
            wave, sr = roundtrip(wave, sr, "OGG", "OPUS", compression_level=0.92)
        elif attack == "8k and back":
            wave = resample(resample(wave, sr, 8000), 8000, sr)
        elif attack == "to 44.1k":
            wave, sr = resample(wave, sr, 44100), 44100
        else:
            db = -6.0 if attack == "gain -6 dB" else 6.0
            wave = wave / np.abs(wave).max() * 0.45 * 10 ** (db / 20)  # +6 dB stays below full scale
            wave, sr = roundtrip(wave, sr, "WAV", "PCM_16")
        hit = detect(wave, sr, CFG)
        assert hit.watermarked, (name, attack, hit)


def test_marked_at_24k_found_at_16k(voices):
    wave = speech("en_08", 24000)
    out = embed(wave, 24000, CFG)
    assert detect(resample(out, 24000, 16000), 16000, CFG).watermarked
    assert not detect(resample(wave, 24000, 16000), 16000, CFG).watermarked


@pytest.mark.parametrize("sr", [16000, 48000])
def test_streamed_in_random_chunks_equals_whole(voices, sr):
    wave = resample(voices["en_09"], 16000, sr)
    whole = embed(wave, sr, CFG)
    rng = np.random.default_rng(sr)
    f = WatermarkFilter(sr, CFG)
    for _ in range(2):  # flush ends a stream: the same filter then marks the next one from a clean state
        parts, i = [], 0
        while i < len(wave):
            n = int(rng.choice([0, 1, 7, int(rng.integers(1, 3 * len(f.taps)))]))
            parts.append(f.process(wave[i : i + n]))
            i += n
        assert len(f.flush()) == 0
        streamed = np.concatenate(parts)
        assert streamed.shape == whole.shape
        np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_silence_scores_zero_and_is_not_marked():
    out = embed(np.zeros(32000, np.float32), 16000, CFG)
    assert not out.any()
    assert detect(out, 16000, CFG) == detect(np.zeros(32000), 16000, CFG)
    assert detect(out, 16000, CFG).score == 0.0


def test_bad_input_is_a_clear_error():
    with pytest.raises(WatermarkError, match=f"at least {MIN_SECONDS:.1f} s"):
        detect(np.ones(8000, np.float32) * 0.1, 16000, CFG)
    with pytest.raises(AudioError, match="empty"):
        detect(np.zeros(0, np.float32), 16000, CFG)
    with pytest.raises(AudioError, match="empty"):
        embed(np.zeros(0, np.float32), 16000, CFG)
    bad = np.zeros(32000, np.float32)
    bad[5] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        detect(bad, 16000, CFG)
    with pytest.raises(AudioError, match="NaN"):
        WatermarkFilter(16000, CFG).process(bad)
    with pytest.raises(WatermarkError, match="below 8000 Hz"):
        embed(np.zeros(4000, np.float32), 4000, CFG)


@pytest.mark.parametrize(
    "field, value, message",
    [("key", "", "empty"), ("strength_db", 0.0, "strength_db"), ("bands", 95, "even"), ("high_hz", 7500.0, "bands")],
)
def test_config_is_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        WatermarkConfig(**{field: value})


def test_pattern_is_deterministic_balanced_and_keyed():
    a, b = WatermarkConfig(key="x").signs(), WatermarkConfig(key="y").signs()
    np.testing.assert_array_equal(a, WatermarkConfig(key="x").signs())
    assert a.sum() == 0 and set(np.unique(a)) == {-1.0, 1.0}
    assert abs(a @ b) < 0.5 * len(a)


def test_cli_detect_prints_the_json_and_embed_marks(tmp_path, voices, capsys, monkeypatch):
    from rayjobs.cli import main

    monkeypatch.delenv("TTS_ALIGN_WATERMARK_KEY", raising=False)
    plain = tmp_path / "plain.wav"
    sf.write(plain, voices["en_00"], 16000)
    main(["watermark", "embed", str(plain), str(tmp_path / "marked.wav")])
    capsys.readouterr()
    for path, expected in ((tmp_path / "marked.wav", True), (plain, False)):
        main(["watermark", "detect", str(path)])
        out = json.loads(capsys.readouterr().out)
        assert list(out) == ["watermarked", "score"] and out["watermarked"] is expected
        assert isinstance(out["score"], float) and isinstance(out["watermarked"], bool)
    main(["watermark", "detect", str(tmp_path / "marked.wav"), "--key", "another"])
    assert json.loads(capsys.readouterr().out)["watermarked"] is False
    monkeypatch.setenv("TTS_ALIGN_WATERMARK_KEY", "another")  # the key from the environment
    main(["watermark", "embed", str(plain), str(tmp_path / "other.wav")])
    main(["watermark", "detect", str(tmp_path / "other.wav")])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["watermarked"] is True


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"not audio at all"), "unreadable audio"),
        (lambda p: sf.write(p, np.full(4000, 0.1, np.float32), 16000), "at least 1.0 s"),
        (lambda p: None, "no such audio file"),
    ],
)
def test_cli_bad_file_exits_with_a_message(tmp_path, capsys, make, message):
    from rayjobs.cli import main

    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(SystemExit) as exit_:
        main(["watermark", "detect", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
