"""Word timing from libespeak-ng equals the corpus rendering: same duration as `espeak-ng` (tts.corpus.generate),
word offsets at word starts, times increasing."""

from __future__ import annotations

import shutil

import pytest

from evals.espeak_words import word_starts
from tts.corpus.generate import speak
from tts.corpus.voices import Speaker

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
SPEAKER = Speaker("en_09", "en", "en-us+f3", 60, 155)


def test_word_starts_match_the_cli_rendering():
    text = "My teacher will listen to the radio at home."
    timing = word_starts(SPEAKER, text)
    assert timing["duration"] == pytest.approx(len(speak(SPEAKER, text, 22050)) / 22050, abs=1e-3)
    offsets = [o for o, _ in timing["words"]]
    times = [t for _, t in timing["words"]]
    assert offsets[0] == 0 and times[0] == 0.0
    assert all(text[o - 1] == " " for o in offsets[1:])  # each event starts a word
    assert {text[o:].split()[0] for o in offsets} >= {"teacher", "listen", "radio", "home."}
    assert times == sorted(times) and times[-1] < timing["duration"]


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no voice 'xx-nope'"):
        word_starts(Speaker("x", "en", "xx-nope"), "Hello there.")
