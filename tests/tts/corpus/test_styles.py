"""Styles and non-verbal sounds (tts/corpus/styles.py), checked by their measured prosody (style_metrics.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tts.corpus.styles as st
from tts.base.languages import LANGUAGES
from tts.base.layout import NONVERBAL_TAGS, STYLE_TAGS
from tts.corpus.generate import speak
from tts.corpus.style_metrics import prosody
from tts.corpus.styles import STYLES, Style, nonverbal, render, ssml, styled_speaker, whisper_voice
from tts.corpus.text import generate_sentences
from tts.corpus.voices import Speaker, speakers_for

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
SR = 16000
EN = {s.id: s for s in speakers_for("en", "en-us")}


def test_every_tag_has_a_rendering():
    assert tuple(STYLES) == STYLE_TAGS
    assert sorted([*st.VOCAL_SOUNDS, *st.NOISE_SOUNDS]) == sorted(NONVERBAL_TAGS)


def test_whisper_voice_keeps_accent_and_gender():
    assert whisper_voice("en-us+m1") == "en-us+whisper"
    assert whisper_voice("en-us+f2") == "en-us+whisperf"
    assert whisper_voice("en-gb-x-rp+m7") == "en-gb-x-rp+whisper"
    assert whisper_voice("de") == "de+whisper"
    # espeak-ng drops variants after these language names; their voice files take them
    assert whisper_voice("en-gb+m3") == "en+whisper" and whisper_voice("fr-fr+f2") == "fr+whisperf"


def test_styled_speaker_settings_and_clamps():
    spk = Speaker("x", "en", "en-us+f2", pitch=90, speed=100)
    s = styled_speaker(spk, Style(pitch=20, speed=0.5, amplitude=150, pitch_range=40))
    assert (s.id, s.voice, s.pitch, s.speed, s.amplitude, s.pitch_range) == ("x", "en-us+f2", 99, 80, 150, 40)
    assert s.espeak_args() == ["-v", "en-us+f2", "-p", "99", "-s", "80", "-a", "150", "-m"]
    assert styled_speaker(spk, STYLES["[whispering]"]).voice == "en-us+whisperf"


def test_ssml_escapes_text():
    assert ssml("Tom & <Jerry>", 150) == '<speak><prosody range="150%">Tom &amp; &lt;Jerry&gt; </prosody></speak>'


def test_unknown_tags_are_rejected():
    with pytest.raises(KeyError, match="unknown style"):
        render(EN["en_00"], "hello", "[bored]", SR)
    with pytest.raises(KeyError, match="unknown non-verbal"):
        nonverbal(EN["en_00"], "[sneeze]", SR)


@pytest.fixture(scope="module")
def deltas():
    """Per style: mean change vs neutral over a male and a female speaker reading the same two sentences."""
    out: dict[str, dict[str, list[float]]] = {}
    for spk in (EN["en_00"], EN["en_01"]):
        for text in generate_sentences("en", 2, seed=1):
            base = prosody(speak(spk, text, SR), SR)
            assert base["voiced_fraction"] > 0.5
            for tag in STYLE_TAGS:
                p = prosody(render(spk, text, tag, SR), SR)
                d = out.setdefault(tag, {})
                d.setdefault("rate", []).append(base["duration"] / p["duration"])
                d.setdefault("f0", []).append(12 * np.log2(p["f0_median"] / base["f0_median"]))
                d.setdefault("range", []).append(p["f0_range"] - base["f0_range"])
                d.setdefault("db", []).append(p["rms_db"] - base["rms_db"])
                d.setdefault("voiced", []).append(p["voiced_fraction"])
    return {tag: {k: float(np.mean(v)) for k, v in d.items()} for tag, d in out.items()}


@needs_espeak
def test_styles_move_prosody_the_intended_way(deltas):
    sad, whisper, angry = deltas["[sad]"], deltas["[whispering]"], deltas["[angry]"]
    assert sad["rate"] < 0.85 and sad["f0"] < -2 and sad["range"] < -1 and sad["db"] < -2  # slow, low, flat, soft
    assert whisper["voiced"] < 0.1 and whisper["db"] < -6  # unvoiced and quiet
    assert angry["db"] > 3 and angry["rate"] > 1.05  # loud and fast
    assert deltas["[happy]"]["f0"] > 2 and deltas["[happy]"]["range"] > 1 and deltas["[happy]"]["db"] > 1
    assert deltas["[surprised]"]["f0"] > 2 and deltas["[surprised]"]["range"] > 1
    assert deltas["[fearful]"]["rate"] > 1.1 and deltas["[fearful]"]["f0"] > 2
    assert deltas["[disgusted]"]["rate"] < 0.9 and deltas["[disgusted]"]["f0"] < -1
    assert deltas["[laughing]"]["f0"] > 3 and deltas["[laughing]"]["range"] > 1


@needs_espeak
def test_whisper_is_unvoiced_for_every_corpus_voice():
    seen = set()
    for lang, language in LANGUAGES.items():
        text = " ".join(generate_sentences(lang, 1)[0].split()[:4])
        for spk in speakers_for(lang, language.espeak_voice):
            voice = whisper_voice(spk.voice)
            if voice in seen:
                continue
            seen.add(voice)
            assert prosody(render(spk, text, "[whispering]", SR), SR)["voiced_fraction"] < 0.15, voice


@needs_espeak
def test_styled_render_is_deterministic_and_keeps_the_voice():
    spk, text = EN["en_01"], "We walked to the park."
    a, b = render(spk, text, "[sad]", SR), render(spk, text, "[sad]", SR)
    assert np.array_equal(a, b)
    # range 100%, no pitch/rate change: the same female voice, within a semitone of neutral
    same = prosody(render(spk, text, Style(), SR), SR)["f0_median"]
    assert abs(12 * np.log2(same / prosody(speak(spk, text, SR), SR)["f0_median"])) < 1


@needs_espeak
@pytest.mark.parametrize("tag", NONVERBAL_TAGS)
def test_nonverbal_sounds(tag):
    a = nonverbal(EN["en_00"], tag, SR)
    assert a.dtype == np.float32 and np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0
    assert 0.15 < len(a) / SR < 2.5 and np.sqrt(np.mean(a**2)) > 1e-3
    assert np.array_equal(a, nonverbal(EN["en_00"], tag, SR))  # deterministic
    b = nonverbal(EN["en_07"], tag, SR)
    assert len(a) != len(b) or not np.allclose(a, b)  # per speaker


def test_prosody_of_a_synthetic_tone():
    t = np.arange(SR) / SR
    wave = np.concatenate([np.zeros(SR // 2), 0.5 * np.sin(2 * np.pi * 200 * t), np.zeros(SR // 2)]).astype(np.float32)
    p = prosody(wave, SR)
    assert abs(p["duration"] - 1.0) < 0.1 and abs(p["f0_median"] - 200) < 3 and p["f0_range"] < 0.2
    assert abs(p["rms_db"] - 20 * np.log10(0.5 / np.sqrt(2))) < 0.5 and p["voiced_fraction"] > 0.9
    with pytest.raises(ValueError, match="silent"):
        prosody(np.zeros(SR, np.float32), SR)
