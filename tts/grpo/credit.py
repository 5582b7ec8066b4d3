"""Per-word credit for word-synchronous policies: which words ASR heard, and the advantage of each word's tokens.

A sequence-level advantage tells all ~200 tokens of a completion that it was good or bad, though one word
went wrong. A word-synchronous completion (docs/layout.md) is made of one segment per word, so each word can be
compared with the same word in the other completions of its group: GRPO's group baseline, per word. The
transcript and the prompt are both read through the checkpoint's front end and aligned word by word, so the
words are the ones the model writes (espeak-ng joins some, e.g. "in the" -> "ɪnðɪ") and spellings ASR may choose
("20", "twenty") read the same.
"""

from __future__ import annotations

import unicodedata

import jiwer
import numpy as np

from tts.base.layout import TokenLayout
from tts.prompts import front_end_words


def _plain(word: str) -> str:
    return "".join(ch for ch in word.lower() if not unicodedata.category(ch).startswith("P"))


def word_hits(layout: TokenLayout, text: str, transcripts: list[str | None]) -> list[list[bool]]:
    """Per transcript, per front-end word of `text`: whether the transcript has it, aligned in order (jiwer).
    A missing or empty transcript hears nothing."""
    said = [i for i, t in enumerate(transcripts) if t and any(ch.isalnum() for ch in t)]
    words = front_end_words(layout, [text, *(transcripts[i] for i in said)])
    reference = [_plain(w) for w in words[0]]
    out = [[False] * len(reference) for _ in transcripts]
    for i, heard in zip(said, words[1:]):
        hypothesis = [w for w in map(_plain, heard) if w]
        if not hypothesis:
            continue
        for chunk in jiwer.process_words(" ".join(reference), " ".join(hypothesis)).alignments[0]:
            if chunk.type == "equal":
                out[i][chunk.ref_start_idx : chunk.ref_end_idx] = [True] * (chunk.ref_end_idx - chunk.ref_start_idx)
    return out


def token_advantages(
    sequence: list[float], hits: list[list[bool]], words: list[list[int]], weight: float
) -> list[list[float]]:
    """Per completion token: its sequence's advantage plus `weight` x (hit - the group's hit rate) of the word it
    belongs to (`words`: `WordSync.word_of`, per completion); a word every completion got right, or wrong,
    adds nothing."""
    rate = np.asarray(hits, dtype=float).mean(axis=0)
    out = []
    for adv, hit, word_of in zip(sequence, hits, words):
        word = np.asarray(hit, dtype=float) - rate
        out.append((adv + weight * word[np.asarray(word_of, dtype=int)]).tolist())
    return out
