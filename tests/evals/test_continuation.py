"""Bisection of an utterance for the half-prompt continuation protocol: text halves and audio cut points with
known answers on constructed signals."""

from __future__ import annotations

import numpy as np
import pytest

from evals.continuation import bisect, letters, quiet_point, speech_span, split_text, word_offsets

SR = 16000


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ("aa bb cc dd", "aa bb", "cc dd"),
        ("In the afternoon, my sister took the train.", "In the afternoon, my", "sister took the train."),
        ("abcdefgh ij kl", "abcdefgh", "ij kl"),  # 8 of 12 letters vs 4: the nearest boundary, not the middle word
        ("一二三四五六", "一二三", "四五六"),  # no spaces: characters are the units
        ("下午，我的父母在湖边", "下午，我的", "父母在湖边"),  # punctuation has no weight
    ],
)
def test_split_text_at_the_boundary_nearest_half_the_letters(text, first, second):
    a, b, offset = split_text(text)
    assert (a, b) == (first, second)
    assert text[offset:].strip() == b


def test_split_text_respects_allowed_offsets_and_refuses_single_words():
    text = "one two three four"
    assert split_text(text, [0, 4])[:2] == ("one", "two three four")  # only the boundary before "two" is allowed
    assert word_offsets(text) == [0, 4, 8, 14]
    for bad in ("word", "word!", "  x  "):
        with pytest.raises(ValueError, match="cannot bisect"):
            split_text(bad)
    assert letters("a-b, c!") == 3


def bursts(lengths_s: list[float], gaps_s: list[float]) -> tuple[np.ndarray, list[float]]:
    """Tone bursts separated by silences; returns the audio and each burst's start time."""
    parts, starts, t = [np.zeros(int(0.2 * SR), np.float32)], [], 0.2
    for k, length in enumerate(lengths_s):
        starts.append(t)
        n = int(length * SR)
        parts.append((0.5 * np.sin(2 * np.pi * 200 * np.arange(n) / SR)).astype(np.float32))
        t += length
        if k < len(gaps_s):
            parts.append(np.zeros(int(gaps_s[k] * SR), np.float32))
            t += gaps_s[k]
    parts.append(np.zeros(int(0.2 * SR), np.float32))
    return np.concatenate(parts), starts


def test_estimated_cut_lands_in_the_pause_between_the_halves():
    # four equal words spoken at an even rate; the middle pause (after word 2) is at 50% of the speech span
    wave, starts = bursts([0.4, 0.4, 0.4, 0.4], [0.08, 0.08, 0.08])
    first, second, prompt, target = bisect("aaaa bbbb cccc dddd", wave, SR)
    assert (first, second) == ("aaaa bbbb", "cccc dddd")
    cut = len(prompt) / SR
    assert starts[2] - 0.08 < cut < starts[2]  # inside the silence before the third burst
    np.testing.assert_array_equal(np.concatenate([prompt, target]), wave)


def test_word_starts_move_the_cut_to_the_pause_before_that_word():
    # uneven words: letters would put the boundary elsewhere; the word timing is trusted
    wave, starts = bursts([0.2, 0.9, 0.3, 0.3], [0.05, 0.05, 0.05])
    text = "aa bbbbbbbbbbb cc dd"
    timing = [(0, starts[0]), (3, starts[1]), (15, starts[2]), (18, starts[3])]
    first, second, prompt, _ = bisect(text, wave, SR, timing)
    assert (first, second) == ("aa bbbbbbbbbbb", "cc dd")  # boundary nearest half the letters: before "cc"
    assert starts[2] - 0.05 < len(prompt) / SR < starts[2]


def test_quiet_point_prefers_silence_near_the_target_time():
    wave, starts = bursts([0.3, 0.3, 0.3], [0.1, 0.1])
    gap1, gap2 = starts[1] - 0.05, starts[2] - 0.05  # gap centres
    assert quiet_point(wave, SR, gap2 + 0.03, 0.25, 0.25) / SR == pytest.approx(gap2, abs=0.015)
    assert quiet_point(wave, SR, gap1 - 0.02, 0.25, 0.25) / SR == pytest.approx(gap1, abs=0.015)


def test_speech_span_skips_leading_and_trailing_silence():
    wave, starts = bursts([0.5], [])
    start, end = speech_span(wave)
    assert abs(start / SR - starts[0]) < 0.13 and abs(end / SR - (starts[0] + 0.5)) < 0.13  # frame resolution
    assert speech_span(np.zeros(100, np.float32)) == (0, 100)
