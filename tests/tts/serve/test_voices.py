"""Voice store and reference-audio checks: server-made ids, persistence, clear errors for bad uploads."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile as sf

from tests.tts.serve.codecs import bursts
from tts.base.audio import AudioError
from tts.serve.config import VoiceSpec
from tts.serve.voices import Voice, VoiceRegistry, corpus_speaker, read_reference, render_reference


def wav(seconds: float, sr: int = 16000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    wave = bursts(seconds) if seconds else np.zeros(0)
    sf.write(buf, np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave, sr, format="WAV")
    return buf.getvalue()


def test_reads_a_valid_reference():
    wave, sr = read_reference(wav(2.0), 1.0, 30.0)
    assert sr == 16000 and len(wave) == 32000


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty"),
        (b"hello, not audio", "not a readable audio"),
        (wav(2.0)[:40], "not a readable audio"),
        (wav(0.5), "0.50 s long"),
        (wav(31.0), "31.00 s long by its header"),
        (wav(2.0, channels=12), "12 channels"),
    ],
)
def test_bad_references_raise_clear_errors(data, needle):
    with pytest.raises(AudioError, match=needle):
        read_reference(data, 1.0, 30.0)


def silent_flac(seconds: int, sr: int = 8000) -> bytes:
    """`seconds` of digital silence as FLAC, written a minute at a time (3 hours compress to about 270 KB)."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(np.zeros(sr * 60, np.int16))
    return buf.getvalue()


def unknown_length(flac: bytes) -> bytes:
    """The same FLAC with STREAMINFO's total-samples field set to 0, which the format allows ("unknown")."""
    data = bytearray(flac)
    assert data[:4] == b"fLaC"
    fields = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # rate, channels, bits kept; 36-bit total := 0
    data[18:26] = fields.to_bytes(8, "big")
    return bytes(data)


def test_compressed_hours_are_refused_from_the_header_before_decoding():
    data = silent_flac(3 * 3600)
    assert len(data) < 400_000
    start = time.perf_counter()
    with pytest.raises(AudioError, match="10800.00 s long by its header"):
        read_reference(data, 1.0, 30.0)
    assert time.perf_counter() - start < 1.0  # nothing decoded


def test_a_length_the_header_does_not_give_is_refused():
    flac = io.BytesIO()
    sf.write(flac, bursts(2.0), 16000, format="FLAC")
    with pytest.raises(AudioError, match="does not say how long"):
        read_reference(unknown_length(flac.getvalue()), 1.0, 30.0)


def test_registry_voices_persist_under_server_ids_and_belong_to_their_key(tmp_path):
    reg = VoiceRegistry(str(tmp_path), max_per_owner=2)
    voice = reg.create("ann", "Anna", "a transcript", np.arange(10))
    assert voice.id.startswith("voice_") and (tmp_path / f"{voice.id}.npz").is_file()
    again = VoiceRegistry(str(tmp_path)).get("ann", voice.id)  # after a restart
    assert again.text == "a transcript" and again.codes.tolist() == list(range(10)) and again.owner == "ann"
    assert reg.get("bob", voice.id) is None and reg.list("bob") == []  # another key sees nothing of it
    assert not reg.delete("bob", voice.id) and reg.get("ann", voice.id) is not None
    for hostile in ["../x", "voice_../../etc", "voice_a/b", "/etc/passwd"]:
        assert reg.get("ann", hostile) is None
    reg.create("ann", "Anna 2", "t", np.arange(3))
    refused = reg.create("ann", "Anna 3", "t", np.arange(3))
    assert isinstance(refused, str) and "keeps 2 voices" in refused  # the per-key cap
    assert isinstance(reg.create("bob", "Bob", "t", np.arange(3)), Voice)  # other keys are not held back
    assert [v.name for v in reg.list("ann")] == ["Anna", "Anna 2"]
    assert reg.delete("ann", voice.id) and not (tmp_path / f"{voice.id}.npz").exists()
    assert reg.get("ann", voice.id) is None


def test_registry_spends_a_token_once():
    reg = VoiceRegistry()
    assert reg.spend("n1", time.time() + 60) and not reg.spend("n1", time.time() + 60)
    assert reg.spend("n2", time.time() - 1) and reg.spend("n2", time.time() + 60)  # forgotten once expired


def test_preset_voices_render_corpus_speakers():
    # at espeak-ng's own 22,050 Hz: no resampling, so the test does not pay librosa's import (seconds)
    wave = render_reference("en_08", "A small red boat.", 22050)
    assert wave.dtype == np.float32 and 0.5 < len(wave) / 22050 < 5 and np.abs(wave).max() > 0.05
    for bad in ["xx_01", "en_99", "../en_01"]:
        with pytest.raises(ValueError, match="unknown corpus speaker"):
            corpus_speaker(bad)


@pytest.mark.parametrize(
    "spec, needle",
    [({"audio": "a.wav", "speaker": "en_08", "text": "t"}, "not both"), ({"speaker": "en_08"}, "transcript")],
)
def test_voice_specs_are_checked(spec, needle):
    with pytest.raises(ValueError, match=needle):
        VoiceSpec(name="v", **spec)
