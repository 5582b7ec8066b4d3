"""Scoring protocols for an utterance's transcript against its target text.

`ours` (the default): Whisper's text normaliser for English (numbers spelled out, spellings standardised), basic
normalisation elsewhere, CER for CER languages (rewards.asr.error_rate).

`seed-tts-eval`: exactly the text processing and scoring of BytedanceSpeech/seed-tts-eval (run_wer.py,
average_wer.py), so a WER can stand next to a published table: every character of Python's `string.punctuation`
and of zhon's Chinese punctuation is deleted except the apostrophe, double spaces are collapsed once, English is
lower-cased, Chinese is split into characters (one "word" each); WER from jiwer's word alignment, and the
substitution, deletion and insertion rates per reference word (the reference split on single spaces). The
reported WER is the mean of per-utterance WER, with the mean below 50% and the share above 50% beside it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import jiwer
from zhon.hanzi import punctuation as chinese_punctuation

PROTOCOLS = ("ours", "seed-tts-eval")
SEED_LANGUAGES = ("en", "zh")  # the languages seed-tts-eval scores
_PUNCTUATION = frozenset(chinese_punctuation + string.punctuation)  # what it deletes (but the apostrophe)


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return name


@dataclass(frozen=True)
class SeedScore:
    wer: float
    substitutions: float  # per reference word
    deletions: float
    insertions: float
    edits: int  # substitutions + deletions + insertions
    ref_len: int  # reference words (characters for Chinese) in jiwer's alignment


def seed_tts_eval_text(text: str, language: str) -> str:
    """One side of a pair as seed-tts-eval processes it before scoring."""
    if language not in SEED_LANGUAGES:
        raise ValueError(f"seed-tts-eval scores {SEED_LANGUAGES} only, not {language!r}")
    kept = "".join(c for c in text if c == "'" or c not in _PUNCTUATION)
    kept = kept.replace("  ", " ")
    return " ".join(kept) if language == "zh" else kept.lower()


def seed_tts_eval_score(transcript: str, target: str, language: str) -> SeedScore:
    """seed-tts-eval's per-utterance figures for `transcript` (the ASR output) against `target`."""
    truth, hypo = seed_tts_eval_text(target, language), seed_tts_eval_text(transcript, language)
    if not truth.strip():
        raise ValueError(f"empty reference after seed-tts-eval's text processing: {target!r}")
    out = jiwer.process_words(truth, hypo)
    ref_words = len(truth.split(" "))
    edits = out.substitutions + out.deletions + out.insertions
    return SeedScore(
        wer=out.wer,
        substitutions=out.substitutions / ref_words,
        deletions=out.deletions / ref_words,
        insertions=out.insertions / ref_words,
        edits=edits,
        ref_len=out.hits + out.substitutions + out.deletions,
    )
