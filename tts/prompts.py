"""Prompt builders for the SpeechLM: one place that decides token order and which tokens are in the loss.

Layout of every TTS sequence::

    <|text_start|> text <|text_end|> <|speech_start|> [reference audio] target audio <|speech_end|>

Only target audio and the closing <|speech_end|> carry labels (the model must learn to stop);
prompt text and reference audio are conditioning, labelled IGNORE (-100).
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


def encode_texts(tokenizer: Any, layout: TokenLayout, texts: Sequence[str]) -> list[list[int]]:
    """`encode_text` for many texts at once (one phonemiser call for the batch)."""
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r}")
    read = FrontEnd.from_record(layout.front_end).apply_batch([t.strip() for t in texts])
    return [list(ids) for ids in tokenizer(read, add_special_tokens=False)["input_ids"]] if read else []


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
) -> Prompt:
    """Generation prompt, ending at <|speech_start|> (+ reference audio when cloning); labels all IGNORE."""
    if (ref_text_ids is None) != (ref_codes is None):
        raise ValueError("voice cloning needs both ref_text_ids and ref_codes (or neither)")
    text = _text(layout, text_ids, "text")
    ref_audio: list[int] = []
    if ref_text_ids is not None:
        text = _text(layout, ref_text_ids, "reference text") + text
        ref_audio = _audio(layout, ref_codes, "reference codes")
    p = _speech_prompt(layout, text, ref_audio, [], False)
    return Prompt(p.input_ids, [IGNORE] * len(p))
