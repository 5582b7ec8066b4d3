"""Voice store and reference-audio checks: server-made ids, persistence, clear errors for bad uploads."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.tts.serve.codecs import bursts
from tts.base.audio import AudioError
from tts.serve.config import VoiceSpec
from tts.serve.voices import VoiceStore, corpus_speaker, read_reference, render_reference


def wav(seconds: float, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, bursts(seconds) if seconds else np.zeros(0), sr, format="WAV")
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
        (wav(31.0), "31.00 s long"),
    ],
)
def test_bad_references_raise_clear_errors(data, needle):
    with pytest.raises(AudioError, match=needle):
        read_reference(data, 1.0, 30.0)


def test_clones_persist_under_server_ids(tmp_path):
    store = VoiceStore(str(tmp_path))
    voice = store.create_clone("Anna", "a transcript", np.arange(10))
    assert voice.id.startswith("voice_") and (tmp_path / f"{voice.id}.npz").is_file()
    again = VoiceStore(str(tmp_path)).get(voice.id)  # another replica
    assert again.text == "a transcript" and again.codes.tolist() == list(range(10))
    assert [v.id for v in VoiceStore(str(tmp_path)).list()] == [voice.id]
    for hostile in ["../x", "voice_../../etc", "voice_a/b", "/etc/passwd"]:
        assert store.get(hostile) is None
    assert store.delete(voice.id) and not (tmp_path / f"{voice.id}.npz").exists()


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
