"""Half-prompt continuation (paper section 3.3, Figure 4): each test utterance is bisected; the first half (text
and audio) is the prompt, the second half the target, scored against the ground-truth second half.

The text is cut at the word boundary nearest half its letters (characters for scripts written without spaces).
Where the word start times are known (the espeak-ng corpus: `evals.espeak_words`), the audio is cut at the start
of the first target word; otherwise at the time the speech has said that fraction of its letters. Either way the
cut moves to the quietest point just before (the non-voicing test of streaming, eq. 13), a pause if there is one.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from tts.serve.streaming import window_peak


def letters(text: str) -> int:
    return sum(unicodedata.category(ch)[0] in "LN" for ch in text)


def word_offsets(text: str) -> list[int]:
    """Character offsets where a unit starts: words, or characters for a script written without spaces
    (a single 'word' of Chinese or Japanese letters)."""
    if len(text.split()) == 1 and any(unicodedata.category(ch) == "Lo" for ch in text):
        return [i for i, ch in enumerate(text) if not ch.isspace()]
    return [i for i, ch in enumerate(text) if not ch.isspace() and (i == 0 or text[i - 1].isspace())]


def split_text(text: str, offsets: list[int] | None = None) -> tuple[str, str, int]:
    """(first half, second half, character offset of the cut) at the allowed unit start (default: every word)
    nearest half the letters. Raises when no cut leaves letters on both sides."""
    total = letters(text)
    candidates = [o for o in (offsets if offsets is not None else word_offsets(text)) if 0 < letters(text[:o]) < total]
    if not candidates:
        raise ValueError(f"cannot bisect {text!r}: no word boundary leaves letters on both sides")
    cut = min(candidates, key=lambda o: (abs(letters(text[:o]) - total / 2), o))
    return text[:cut].strip(), text[cut:].strip(), cut


def quiet_point(wave: np.ndarray, sr: int, at: float, before_s: float, after_s: float, radius_s: float = 0.01) -> int:
    """Sample index of the quietest point in [at - before_s, at + after_s] (the middle of the quietest stretch,
    the one nearest `at` when several are equally quiet)."""
    step = max(1, int(0.005 * sr))
    lo, hi = max(1, int((at - before_s) * sr)), min(len(wave) - 1, int((at + after_s) * sr))
    positions = np.arange(lo, hi + 1, step)
    if positions.size == 0:
        return int(np.clip(round(at * sr), 1, len(wave) - 1))
    peaks = window_peak(wave, positions, max(1, int(radius_s * sr)))
    quiet = peaks <= peaks.min() + 1e-6
    best = int(np.argmin(np.where(quiet, np.abs(positions - at * sr), np.inf)))
    left, right = best, best
    while left > 0 and quiet[left - 1]:
        left -= 1
    while right < quiet.size - 1 and quiet[right + 1]:
        right += 1
    return int(positions[(left + right) // 2])


def speech_span(wave: np.ndarray, top_db: float = 40.0, frame: int = 2048, hop: int = 512) -> tuple[int, int]:
    """(first, last) sample of the frames within `top_db` of the loudest one (librosa.effects.trim's rule, without
    its 5 s first-call cost)."""
    if len(wave) < frame:
        return 0, len(wave)
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop]
    db = 10 * np.log10(np.maximum(np.mean(np.square(frames, dtype=np.float64), axis=1), 1e-20))
    loud = np.flatnonzero(db > db.max() - top_db)
    return int(loud[0] * hop), int(min(len(wave), loud[-1] * hop + frame))


def estimated_time(wave: np.ndarray, sr: int, fraction: float) -> float:
    """Seconds at which `fraction` of the non-silent span has passed (speech at an even rate)."""
    start, end = speech_span(wave)
    return (start + fraction * (end - start)) / sr


def bisect(
    text: str, wave: np.ndarray, sr: int, word_starts: list[tuple[int, float]] | None = None
) -> tuple[str, str, np.ndarray, np.ndarray]:
    """(prompt text, target text, prompt audio, target audio) of one utterance. `word_starts`: (character
    offset, seconds) of every word as spoken in `wave`; without it the cut time is estimated from letters."""
    if word_starts:
        times = {o: t for o, t in word_starts if 0 <= o < len(text) and text[o].isalnum()}
        first, second, offset = split_text(text, sorted(times))
        cut = quiet_point(wave, sr, times[offset], before_s=0.06, after_s=0.005)
    else:
        first, second, offset = split_text(text)
        fraction = letters(first) / (letters(first) + letters(second))
        cut = quiet_point(wave, sr, estimated_time(wave, sr, fraction), before_s=0.25, after_s=0.25)
    return first, second, wave[:cut], wave[cut:]
