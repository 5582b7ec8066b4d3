"""Synthesized samples at evaluation steps: held-out prompts -> generate -> codec -> RUN_DIR/samples.

Pre-training has no text conditioning, so its samples continue the first second of a held-out utterance;
SFT samples read held-out transcripts (every other one voice-cloned from another utterance of the speaker
when the run trains cloning). Sampling runs under its own seed in a forked RNG, so evaluating does not
change the training run's random stream (resumed runs stay exact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tts import prompts
from tts.base.audio import save_audio
from tts.base.layout import TokenLayout
from tts.speech_sampling import SamplingSettings, WordSyncBatch
from tts.train.data import Corpus

FILE = "samples.jsonl"


@dataclass
class SamplePrompt:
    row: int
    mode: str  # "continue" | "tts" | "clone"
    input_ids: list[int]
    ref: int = -1
    words: list[list[int]] | None = None  # a word-synchronous layout's words, written by the engine


def sample_prompts(
    corpus: Corpus, layout: TokenLayout, rows: np.ndarray, job: str, count: int, clone: bool, frame_rate: int
) -> list[SamplePrompt]:
    """Prompts for the first `count` held-out rows (the same ones at every evaluation); clone references are
    other held-out utterances of the speaker."""
    rows = [int(r) for r in sorted(rows)]
    out = []
    for k, row in enumerate(rows[:count]):
        if job == "pretrain":
            head = corpus.codes(row)[: max(1, min(frame_rate, int(corpus.n_codes[row]) // 2))]
            out.append(SamplePrompt(row, "continue", [layout.speech_start_id, *layout.codes_to_ids(head).tolist()]))
            continue
        peers = [r for r in rows if r != row and corpus.speakers[r] == corpus.speakers[row]]
        words = corpus.words[row] if corpus.words is not None else None
        first = {"first_word": words[0]} if words else {}
        if clone and k % 2 and peers:
            ref = peers[0]
            p = prompts.inference(layout, corpus.text_ids[row], corpus.text_ids[ref], corpus.codes(ref), **first)
            out.append(SamplePrompt(row, "clone", p.input_ids, ref, words))
        else:
            p = prompts.inference(layout, corpus.text_ids[row], **first)
            out.append(SamplePrompt(row, "tts", p.input_ids, words=words))
    return out


def audio_prefix(layout: TokenLayout, ids: list[int], words: bool = False) -> tuple[list[int], str]:
    """Codes of the audio tokens generated before <|speech_end|>, and why generation stopped (`words`: the
    engine wrote the words between them, which are skipped)."""
    codes = []
    for t in ids:
        if t == layout.speech_end_id:
            return layout.ids_to_codes(codes), "speech_end"
        if layout.is_audio(t):
            codes.append(t)
        elif not words:
            return layout.ids_to_codes(codes), "non_audio_token"
    return layout.ids_to_codes(codes), "max_tokens"


@torch.no_grad()
def synthesize(
    model: Any,
    layout: TokenLayout,
    codec: Any,
    corpus: Corpus,
    items: list[SamplePrompt],
    out_dir: Path,
    step: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[dict]:
    """Generate, decode and write `out_dir/step_NNNNNN/*.wav`; appends one row per sample to samples.jsonl."""
    from transformers import LogitsProcessorList

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    rows = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed + step)
        for k, item in enumerate(items):
            ids = torch.tensor([item.input_ids], device=device)
            n, limits = ids.shape[1], (SamplingSettings.max_codes_per_word, SamplingSettings.max_codes_per_sound)
            sync = item.words and WordSyncBatch.of(layout, item.words, model.config.vocab_size, device, 1, n, *limits)
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                eos_token_id=layout.speech_end_id,
                pad_token_id=layout.speech_end_id,
                **sampling,
                **({"logits_processor": LogitsProcessorList([sync])} if sync else {}),
            )
            codes, stop = audio_prefix(layout, out[0, n:].tolist(), words=bool(sync))
            meta = corpus.meta[item.row]
            row = {"step": step, "index": k, "id": meta["id"], "mode": item.mode, "text": meta.get("text")}
            row |= {"ref_id": corpus.meta[item.ref]["id"] if item.ref >= 0 else None, "codes": len(codes)}
            row |= {"seconds": round(len(codes) / codec.frame_rate, 3), "stop": stop, "wav": None}
            if codes:
                path = save_audio(
                    out_dir / f"step_{step:06d}" / f"{k:02d}_{item.mode}.wav", codec.decode(codes), codec.sample_rate
                )
                row["wav"] = str(path.relative_to(out_dir))
            rows.append(row)
    model.train(was_training)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / FILE, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows
