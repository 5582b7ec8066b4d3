"""GRPO prompts: voice-cloning requests built from a corpus manifest.

Every prompt clones a reference utterance of a speaker (its transcript and codes precede the target text), so
the SIM reward always has the reference audio to compare against. Training prompts read train-split texts;
held-out prompts read the test split (held-out speakers and sentences). Which prompts a step uses is a pure
function of (seed, step): resuming at step k replays exactly the prompts an uninterrupted run would see.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tts import prompts
from tts.base.layout import TokenLayout
from tts.base.manifest import Utterance, iter_manifest
from tts.grpo.config import DataConfig


@dataclass
class Reference:
    id: str
    text: str
    wav: str  # absolute path (SIM reference)
    codes: np.ndarray


@dataclass
class Prompt:
    id: str  # "<target id>@<reference id>"
    text: str
    language: str
    input_ids: list[int]
    ref: Reference
    words: list[list[int]] | None = None  # a word-synchronous policy's words (tts.prompts.encode_words)


class HeldOutItem(Protocol):
    """A benchmark row (seed-tts-eval's meta.lst: `evals.meta.EvalItem`): clone `prompt_wav` saying `target_text`."""

    id: str
    prompt_text: str
    prompt_wav: str  # absolute path
    target_text: str
    language: str


def build_prompt(tokenizer: Any, layout: TokenLayout, pid: str, text: str, language: str, ref: Reference) -> Prompt:
    """The voice-cloning inference prompt (tts/prompts.py): the reference's text and codes, then the target text
    (and the words, for a word-synchronous policy)."""
    req = prompts.speech_request(tokenizer, layout, text, ref.text, ref.codes)
    return Prompt(pid, text, language, req.input_ids, ref, req.words)


def _rows(cfg: DataConfig, split: str) -> list[Utterance]:
    errors: list[str] = []
    rows = [
        r
        for r in iter_manifest(cfg.manifest, split=split, errors=errors)
        if r.language in cfg.languages and len(r.text.strip()) >= cfg.min_chars
    ]
    if not rows:
        raise ValueError(f"{cfg.manifest}: no {split}-split rows in languages {cfg.languages}")
    return sorted(rows, key=lambda r: r.id)


def pick_references(rows: list[Utterance], cfg: DataConfig) -> dict[str, list[Utterance]]:
    """Per speaker, its `refs_per_speaker` shortest utterances no longer than max_ref_seconds."""
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for r in rows:
        if r.duration <= cfg.max_ref_seconds:
            by_speaker[r.speaker].append(r)
    return {s: sorted(rs, key=lambda r: (r.duration, r.id))[: cfg.refs_per_speaker] for s, rs in by_speaker.items()}


class PromptSet:
    """The prompts of one split; `references()` lists the audio the codec must encode first (`attach`)."""

    def __init__(self, cfg: DataConfig, split: str, tokenizer: Any, layout: TokenLayout):
        self.cfg, self.tokenizer, self.layout = cfg, tokenizer, layout
        self.root = Path(cfg.manifest).parent
        rows = _rows(cfg, split)
        self.refs = pick_references(rows, cfg)
        self.targets = [r for r in rows if self.refs.get(r.speaker)]
        if not self.targets:
            raise ValueError(f"{cfg.manifest}: no {split}-split speaker has a reference of <= {cfg.max_ref_seconds} s")
        self.codes: dict[str, np.ndarray] = {}

    def references(self) -> list[tuple[str, str]]:
        """(id, wav path) of every reference utterance."""
        return sorted({(u.id, str(u.wav_path(self.root))) for us in self.refs.values() for u in us})

    def attach(self, codes: dict[str, np.ndarray]) -> None:
        missing = [i for i, _ in self.references() if i not in codes]
        if missing:
            raise ValueError(f"no codes for reference utterances {missing[:5]}")
        self.codes = codes

    def build(self, target: Utterance, ref: Utterance) -> Prompt:
        reference = Reference(ref.id, ref.text, str(ref.wav_path(self.root)), self.codes[ref.id])
        pid = f"{target.id}@{ref.id}"
        return build_prompt(self.tokenizer, self.layout, pid, target.text, target.language, reference)

    def _ref_for(self, target: Utterance, rng: np.random.Generator) -> Utterance:
        choices = [u for u in self.refs[target.speaker] if u.id != target.id] or self.refs[target.speaker]
        return choices[int(rng.integers(len(choices)))]

    def for_step(self, step: int, count: int, seed: int, draw: int = 0) -> list[Prompt]:
        """The step's prompts; `draw` > 0 gives further prompts for the same step (group resampling)."""
        rng = np.random.default_rng([seed, 0, step] + ([draw] if draw else []))
        picks = rng.choice(len(self.targets), size=count, replace=count > len(self.targets))
        return [self.build(self.targets[i], self._ref_for(self.targets[i], rng)) for i in picks]

    def held_out(self, count: int, seed: int) -> list[Prompt]:
        """`count` prompts spread evenly over the split (the same ones before and after training)."""
        rng = np.random.default_rng([seed, 1, 0])
        idx = np.linspace(0, len(self.targets) - 1, num=min(count, len(self.targets))).round().astype(int)
        return [self.build(self.targets[i], self._ref_for(self.targets[i], rng)) for i in idx]


class ItemSet:
    """Held-out prompts from benchmark rows (the evals/ sets: cloning, continuation, length), so that GRPO scores
    its policy on the same items `rayjobs/eval.py` does. Prompt ids are `<set>:<row id>`; a row whose prompt would
    not leave `max_new_tokens` of room in the engine's context is left out (counted in `skipped`)."""

    def __init__(self, name: str, items: list[HeldOutItem], tokenizer: Any, layout: TokenLayout):
        if not items:
            raise ValueError(f"evaluation set {name!r} has no rows")
        self.name, self.items, self.tokenizer, self.layout = name, items, tokenizer, layout
        self.prompts: list[Prompt] = []
        self.skipped: list[str] = []

    def references(self) -> list[tuple[str, str]]:
        """(id, wav path) of every prompt audio; the path is the id (one encoding per file)."""
        return sorted({(it.prompt_wav, it.prompt_wav) for it in self.items})

    def attach(self, codes: dict[str, np.ndarray], max_prompt_tokens: int) -> None:
        self.prompts, self.skipped = [], []
        for it in self.items:
            ref = Reference(it.prompt_wav, it.prompt_text, it.prompt_wav, codes[it.prompt_wav])
            p = build_prompt(self.tokenizer, self.layout, f"{self.name}:{it.id}", it.target_text, it.language, ref)
            (self.prompts if len(p.input_ids) <= max_prompt_tokens else self.skipped).append(p)
        if not self.prompts:
            raise ValueError(
                f"evaluation set {self.name!r}: every prompt is longer than {max_prompt_tokens} tokens "
                "(rollout.max_model_len - rollout.max_new_tokens)"
            )
