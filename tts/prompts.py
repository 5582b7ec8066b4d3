"""Prompt builders for the SpeechLM: one place that decides token order and which tokens are in the loss.

Layout of every TTS sequence::

    <|text_start|> text <|text_end|> <|speech_start|> [reference audio] target audio <|speech_end|>

Only target audio and the closing <|speech_end|> carry labels (the model must learn to stop);
prompt text and reference audio are conditioning, labelled IGNORE (-100).

A word-synchronous layout (`TokenLayout.interleave == "words"`) writes each target word's tokens before its
audio::

    <|text_start|> text <|text_end|> <|speech_start|> [reference audio] w1 audio(w1) w2 audio(w2) ... <|speech_end|>

At inference the engine writes the words (tts.speech_sampling.WordSync) and the model decides where each starts,
so of a word's tokens only the first (that decision) carries a label; w1 ends the inference prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tts.base.layout import TokenLayout
from tts.front_end import FrontEnd

IGNORE = -100
Codes = Sequence[int] | np.ndarray | torch.Tensor


@dataclass
class Prompt:
    input_ids: list[int]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(f"{len(self.input_ids)} input_ids vs {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_text(tokenizer: Any, layout: TokenLayout, text: str) -> list[int]:
    """Tokenize prompt text without BOS/EOS (the layout markers frame it), through the checkpoint's front end
    (raw text or phonemes, tts.front_end); empty text is an error."""
    return encode_texts(tokenizer, layout, [text])[0]


def _read(layout: TokenLayout, texts: Sequence[str]) -> list[str]:
    """The texts as the model reads them (the checkpoint's front end, one call for the batch); empty is an error."""
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r}")
    return FrontEnd.from_record(layout.front_end).apply_batch([t.strip() for t in texts])


def encode_texts(tokenizer: Any, layout: TokenLayout, texts: Sequence[str]) -> list[list[int]]:
    """`encode_text` for many texts at once (one phonemiser call for the batch)."""
    read = _read(layout, texts)
    return [list(ids) for ids in tokenizer(read, add_special_tokens=False)["input_ids"]] if read else []


def front_end_words(layout: TokenLayout, texts: Sequence[str]) -> list[list[str]]:
    """Each text's words as the model reads them."""
    return [read.split() for read in _read(layout, texts)]


def tokenize_words(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """Each word tokenized on its own with its leading space (but the first): flattened they are the text block
    of a word-synchronous prompt."""
    return [list(tokenizer((" " if i else "") + w, add_special_tokens=False)["input_ids"]) for i, w in enumerate(words)]


def encode_words(tokenizer: Any, layout: TokenLayout, text: str) -> list[list[int]]:
    """The words of `text` as token lists (`front_end_words`, `tokenize_words`)."""
    words = front_end_words(layout, [text])[0]
    if not words:
        raise ValueError(f"nothing to say in {text!r} after the front end")
    return tokenize_words(tokenizer, words)


def _text(layout: TokenLayout, ids: Sequence[int], what: str) -> list[int]:
    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError(f"{what} is empty")
    a = np.asarray(ids)
    bad = (a < 0) | (a >= layout.vocab_size) | layout.is_audio(a)
    if bad.any():
        raise ValueError(f"{what} contains id {a[bad][0]}, which is not a text/special token")
    return ids


def _audio(layout: TokenLayout, codes: Codes, what: str) -> list[int]:
    a = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of codec codes, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must be integer codec codes, got dtype {a.dtype}")
    if a.min() < 0 or a.max() >= layout.codebook_size:
        bad = a[(a < 0) | (a >= layout.codebook_size)][0]
        raise ValueError(f"{what} has code {bad} outside [0, {layout.codebook_size})")
    return layout.codes_to_ids(a).tolist()


def _speech_prompt(layout: TokenLayout, text: list[int], ref_audio: list[int], target: list[int], end: bool) -> Prompt:
    head = [layout.text_start_id, *text, layout.text_end_id, layout.speech_start_id, *ref_audio]
    tail = target + ([layout.speech_end_id] if end else [])
    return Prompt(head + tail, [IGNORE] * len(head) + tail)


def tts(layout: TokenLayout, text_ids: Sequence[int], target_codes: Codes) -> Prompt:
    """Plain TTS training example: loss on target audio and <|speech_end|>."""
    target = _audio(layout, target_codes, "target codes")
    return _speech_prompt(layout, _text(layout, text_ids, "text"), [], target, True)


def clone(
    layout: TokenLayout,
    ref_text_ids: Sequence[int],
    target_text_ids: Sequence[int],
    ref_codes: Codes,
    target_codes: Codes,
) -> Prompt:
    """Voice-cloning example: the reference continues into the target, so the text block holds both
    transcripts in order and the reference audio precedes the target audio (not in the loss)."""
    text = _text(layout, ref_text_ids, "reference text") + _text(layout, target_text_ids, "target text")
    ref_audio = _audio(layout, ref_codes, "reference codes")
    return _speech_prompt(layout, text, ref_audio, _audio(layout, target_codes, "target codes"), True)


def _words_target(
    layout: TokenLayout, words: Sequence[Sequence[int]], target: list[int], starts: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Each word's tokens, then its audio (from its start frame to the next word's), and their labels."""
    if layout.interleave != "words":
        raise ValueError(f"word-synchronous sequences need a layout with interleave='words', not {layout.interleave!r}")
    if len(starts) != len(words) or not words:
        raise ValueError(f"{len(words)} words but {len(starts)} start frames")
    bounds = [0, *np.maximum.accumulate(np.clip(np.asarray(starts[1:], dtype=np.int64), 0, len(target)))]
    bounds = [int(b) for b in bounds] + [len(target)]
    ids, labels = [], []
    for k, w in enumerate(words):
        w = _text(layout, w, f"word {k}")
        audio = target[bounds[k] : bounds[k + 1]]
        ids += w + audio
        labels += ([IGNORE] * len(w) if k == 0 else [w[0]] + [IGNORE] * (len(w) - 1)) + audio
    return ids + [layout.speech_end_id], labels + [layout.speech_end_id]


def words_tts(
    layout: TokenLayout,
    words: Sequence[Sequence[int]],
    target_codes: Codes,
    starts: Sequence[int],
    ref_text_ids: Sequence[int] | None = None,
    ref_codes: Codes | None = None,
) -> Prompt:
    """Word-synchronous training example (`starts`: the frame each word starts at), voice cloning when given the
    reference's text and codes (plain, before the target's first word; not in the loss)."""
    if (ref_text_ids is None) != (ref_codes is None):
        raise ValueError("voice cloning needs both ref_text_ids and ref_codes (or neither)")
    text = [int(t) for w in words for t in w]
    ref_text = _text(layout, ref_text_ids, "reference text") if ref_text_ids is not None else []
    ref_audio = _audio(layout, ref_codes, "reference codes") if ref_codes is not None else []
    tail, tail_labels = _words_target(layout, words, _audio(layout, target_codes, "target codes"), starts)
    head = [layout.text_start_id, *ref_text, *_text(layout, text, "text"), layout.text_end_id]
    head += [layout.speech_start_id, *ref_audio]
    return Prompt(head + tail, [IGNORE] * len(head) + tail_labels)


def pretrain_speech(layout: TokenLayout, codes: Codes) -> Prompt:
    """Audio-only pretraining: <|speech_start|> codes <|speech_end|>, loss on everything but the opener."""
    ids = _audio(layout, codes, "codes") + [layout.speech_end_id]
    return Prompt([layout.speech_start_id, *ids], [IGNORE, *ids])


def pretrain_text(text_ids: Sequence[int]) -> Prompt:
    """Text-only pretraining (keeps the LM's language ability): loss on every token."""
    ids = [int(i) for i in text_ids]
    if not ids:
        raise ValueError("text is empty")
    return Prompt(ids, list(ids))


def inference(
    layout: TokenLayout,
    text_ids: Sequence[int],
    ref_text_ids: Sequence[int] | None = None,
    ref_codes: Codes | None = None,
    first_word: Sequence[int] = (),
) -> Prompt:
    """Generation prompt, ending at <|speech_start|> (+ reference audio when cloning; + the first word's tokens
    for a word-synchronous layout, which needs them); labels all IGNORE."""
    if (ref_text_ids is None) != (ref_codes is None):
        raise ValueError("voice cloning needs both ref_text_ids and ref_codes (or neither)")
    if (layout.interleave == "words") != bool(first_word):
        raise ValueError("a word-synchronous layout's prompt ends with its first word (and only such a layout's)")
    text = _text(layout, text_ids, "text")
    ref_audio: list[int] = []
    if ref_text_ids is not None:
        text = _text(layout, ref_text_ids, "reference text") + text
        ref_audio = _audio(layout, ref_codes, "reference codes")
    p = _speech_prompt(layout, text, ref_audio + [int(t) for t in first_word], [], False)
    return Prompt(p.input_ids, [IGNORE] * len(p))


@dataclass
class SpeechRequest:
    """What an engine needs to speak a text: the prompt ids and, for a word-synchronous layout, the words it writes
    (tts.speech_sampling.WordSync; None otherwise)."""

    input_ids: list[int]
    words: list[list[int]] | None = None


def speech_request(
    tokenizer: Any, layout: TokenLayout, text: str, ref_text: str | None = None, ref_codes: Codes | None = None
) -> SpeechRequest:
    """The one way to turn a text (and a reference to clone) into an engine request, whatever the layout."""
    ref_ids = encode_text(tokenizer, layout, ref_text) if ref_text is not None else None
    if layout.interleave == "words":
        words = encode_words(tokenizer, layout, text)
        flat = [t for w in words for t in w]
        return SpeechRequest(inference(layout, flat, ref_ids, ref_codes, first_word=words[0]).input_ids, words)
    return SpeechRequest(inference(layout, encode_text(tokenizer, layout, text), ref_ids, ref_codes).input_ids)
