"""Per-word credit (tts/grpo/credit.py): what ASR heard, word by word, through the embedded model's front end."""

from __future__ import annotations

import shutil

import pytest

from tts.grpo.credit import token_advantages, word_hits
from tts.speechlm import EMBEDDED_SPEECHLM, load_layout

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")


@pytest.fixture(scope="module")
def layout():
    return load_layout(EMBEDDED_SPEECHLM)  # the phoneme front end: espeak-ng joins "in the"


@needs_espeak
def test_words_heard_are_aligned_through_the_front_end(layout):
    text = "In the afternoon, my sister took 20 trains."
    heard = word_hits(
        layout,
        text,
        [
            "in the afternoon my sister took twenty trains",  # spelled otherwise, read the same
            "In the afternoon, my brother took 20 trains.",  # one word wrong
            "afternoon my sister took trains",  # words dropped
            "",
            None,  # no transcript (unscorable audio)
        ],
    )
    assert heard[0] == [True] * 7  # "in the" is one front-end word: ɪnðɪ æftɚnuːn maɪ sɪstɚ tʊk twɛnti tɹeɪnz
    assert heard[1] == [True, True, True, False, True, True, True]
    assert heard[2] == [False, True, True, True, True, False, True]
    assert heard[3] == heard[4] == [False] * 7


def test_token_advantages_add_each_words_group_baseline():
    # two completions of a two-word prompt; word 0 both heard, word 1 only by the first
    hits = [[True, True], [True, False]]
    words = [[0, 0, 1, 1], [0, 1, 1]]
    out = token_advantages([0.1, -0.1], hits, words, weight=0.5)
    assert out[0] == pytest.approx([0.1, 0.1, 0.1 + 0.25, 0.1 + 0.25])  # word 1: 1 - 0.5
    assert out[1] == pytest.approx([-0.1, -0.1 - 0.25, -0.1 - 0.25])
