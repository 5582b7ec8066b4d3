"""Embedded benchmark sets from a corpus manifest's test split (held-out speakers reading held-out sentences),
written in seed-tts-eval's layout so `rayjobs/eval.py` runs on them offline:

    OUT/cloning/<lang>/       every test utterance, prompted by another utterance of its speaker (Figure 8, Table 10)
    OUT/open/<lang>/          the cloning items whose sentence is outside the corpus grammar (open vocabulary)
    OUT/continuation/<lang>/  every test utterance bisected: first half prompt, second half target (Figure 4)
    OUT/length/<lang>/        Short / Medium / Long English targets (Tables 7 and 8)
    OUT/markups/<lang>/       a few cloning prompts, each neutral and under every markup tag (paper 3.6)
    OUT/sets.json             what was written: counts, Table 7 statistics, skipped rows

Each set directory holds `meta.lst` (`utt|prompt_text|prompt-wavs/P.wav|target_text|wavs/utt.wav`),
`prompt-wavs/` and `wavs/` (the ground truth as `<utt>.wav`, so `--wav-dir OUT/<set>/<lang>/wavs` scores it).
Short phrases and Long multi-sentence targets are new texts made from test sentences; their ground truth is
rendered with the held-out speaker's espeak-ng voice, as the corpus was. Re-running rewrites the meta files and
the continuation halves, and reuses the copied and rendered audio.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from evals.buckets import DEFAULT_BOUNDS, bucket_of, table7
from evals.config import SetsConfig
from evals.continuation import bisect
from evals.espeak_words import word_starts
from evals.markups import markup_items
from evals.meta import EvalItem, by_speaker, cloning_items, pick_prompt, spread, write_meta_lst
from tts.base.audio import AudioError, load_audio, save_audio
from tts.base.manifest import Utterance, read_manifest
from tts.corpus.generate import outside_grammar, speak
from tts.corpus.voices import Speaker, find_speaker

log = logging.getLogger(__name__)
TIMING_TOLERANCE_S = 0.01  # the espeak-ng word timing must be of this very audio


def corpus_speaker(row: Utterance) -> Speaker | None:
    """The espeak-ng voice that rendered a row of the embedded corpus (None for other corpora)."""
    return find_speaker(row.language, row.speaker)


def _place(src: str, dst: Path) -> str:
    """Copy (hard-link where possible) `src` to `dst` unless it is there; returns dst."""
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    return str(dst)


def write_set(directory: Path, items: list[EvalItem]) -> list[EvalItem]:
    """seed-tts-eval layout: prompts into prompt-wavs/ (by their file name), ground truth into wavs/<utt>.wav."""
    placed = []
    for it in items:
        prompt = _place(it.prompt_wav, directory / "prompt-wavs" / Path(it.prompt_wav).name)
        gt = _place(it.gt_wav, directory / "wavs" / f"{it.id}.wav") if it.gt_wav else None
        placed.append(replace(it, prompt_wav=prompt, gt_wav=gt))
    write_meta_lst(directory / "meta.lst", placed)
    return placed


def continuation_item(row: Utterance, root: Path, directory: Path) -> tuple[EvalItem | None, str]:
    """Bisect one utterance into directory/prompt-wavs/<id>.wav and wavs/<id>.wav; (item, how it was cut) or
    (None, why not)."""
    try:
        wave, sr = load_audio(row.wav_path(root))
    except AudioError as exc:
        return None, str(exc)
    speaker, starts = corpus_speaker(row), None
    if speaker is not None:
        try:
            timing = word_starts(speaker, row.text)
        except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:  # then the letters estimate the cut
            log.warning("%s: no espeak-ng word timing (%s)", row.id, exc)
        else:
            if abs(timing["duration"] - len(wave) / sr) <= TIMING_TOLERANCE_S:  # else: not this rendering
                starts = [(int(o), float(t)) for o, t in timing["words"]]
    try:
        first, second, prompt_audio, target_audio = bisect(row.text, wave, sr, starts)
    except ValueError as exc:  # a single word
        return None, str(exc)
    prompt = save_audio(directory / "prompt-wavs" / f"{row.id}.wav", prompt_audio, sr)
    gt = save_audio(directory / "wavs" / f"{row.id}.wav", target_audio, sr)
    item = EvalItem(row.id, first, str(prompt), second, row.language, str(gt))
    return item, "word timing" if starts else "estimate"


def short_phrase(text: str, bounds: list[int]) -> str | None:
    """The longest word prefix of `text` that, as a sentence, has bounds[0]..bounds[1] characters."""
    words = [re.sub(r"[^\w'-]", "", w) for w in text.split()]
    best = None
    for k in range(1, len(words) + 1):
        phrase = " ".join(w for w in words[:k] if w) + "."
        if len(phrase) > bounds[1]:
            break
        if len(phrase) >= bounds[0]:
            best = phrase
    return best


def long_texts(rows: list[Utterance], bounds: list[int]) -> list[list[Utterance]]:
    """Runs of consecutive utterances (one speaker, by id) whose joined text has bounds[0]..bounds[1] chars."""
    runs, run = [], []
    for r in rows:
        run.append(r)
        n = len(" ".join(x.text for x in run))
        if n > bounds[1]:
            run = [r] if len(r.text) <= bounds[1] else []
        elif n >= bounds[0]:
            runs.append(run)
            run = []
    return runs


def _rendered(directory: Path, uid: str, speaker: Speaker, text: str, sr: int) -> str:
    path = directory / "wavs" / f"{uid}.wav"
    if not path.is_file():
        save_audio(path, speak(speaker, text, sr), sr)
    return str(path)


def length_items(rows: list[Utterance], root: Path, directory: Path, cfg: SetsConfig) -> list[EvalItem]:
    """Up to `length_per_bucket` Short phrases, Medium single sentences and Long multi-sentence texts, spread
    over the speakers' sentences; each prompted by an utterance of its speaker that the target does not use."""
    groups: dict[str, list[tuple]] = {"short": [], "medium": [], "long": []}
    for speaker_rows in by_speaker(rows).values():
        speaker = corpus_speaker(speaker_rows[0])
        if speaker is None:
            raise ValueError(
                f"speaker {speaker_rows[0].speaker} is not an embedded corpus voice: the length set renders new "
                "texts with espeak-ng"
            )
        seen: set[str] = set()
        for r in speaker_rows:
            phrase = short_phrase(r.text, cfg.short_chars)
            if phrase and phrase not in seen:
                seen.add(phrase)
                groups["short"].append((f"{r.id}-short", phrase, {r.id}, None, speaker_rows, speaker))
            if bucket_of(r.text) == "medium":
                groups["medium"].append(
                    (f"{r.id}-medium", r.text, {r.id}, str(r.wav_path(root)), speaker_rows, speaker)
                )
        for run in long_texts(speaker_rows, cfg.long_chars):
            text = " ".join(r.text for r in run)
            groups["long"].append((f"{run[0].id}-long", text, {r.id for r in run}, None, speaker_rows, speaker))
    out = []
    for group in groups.values():
        for i in spread(len(group), cfg.length_per_bucket):
            uid, text, used, gt, speaker_rows, speaker = group[i]
            p = pick_prompt(speaker_rows, min(used), used, cfg.max_prompt_seconds)
            if p is not None:
                gt = gt or _rendered(directory, uid, speaker, text, cfg.sample_rate)
                out.append(EvalItem(uid, p.text, str(p.wav_path(root)), text, p.language, gt))
    return out


def make_sets(manifest: str | Path, out: str | Path, cfg: SetsConfig = SetsConfig()) -> dict:
    manifest, out = Path(manifest), Path(out)
    rows = read_manifest(manifest, split="test")
    if not rows:
        raise ValueError(f"{manifest}: no test-split rows")
    root = manifest.parent
    languages = cfg.languages or sorted({r.language for r in rows})
    unknown = sorted(set(languages) - {r.language for r in rows})
    if unknown:
        raise ValueError(f"{manifest}: no test-split rows in language(s) {unknown}")
    summary: dict = {"manifest": str(manifest), "config": asdict(cfg), "sets": {}}
    for lang in languages:
        lang_rows = [r for r in rows if r.language == lang]
        cloning = cloning_items(lang_rows, root, cfg.max_prompt_seconds)
        items = write_set(out / "cloning" / lang, cloning)
        summary["sets"][f"cloning/{lang}"] = _describe(items, len(lang_rows))
        outside = [it for it in cloning if outside_grammar(it.id)]
        if outside:
            summary["sets"][f"open/{lang}"] = _describe(write_set(out / "open" / lang, outside), len(lang_rows))
        if cfg.markup_prompts:
            marked = markup_items(items, cfg.markup_prompts, takes=cfg.markup_takes)
            write_set(out / "markups" / lang, marked)
            summary["sets"][f"markups/{lang}"] = _describe(marked, len(lang_rows))
        directory = out / "continuation" / lang
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(continuation_item, lang_rows, [root] * len(lang_rows), [directory] * len(lang_rows))
            )
        done = [it for it, _ in results if it is not None]
        write_meta_lst(directory / "meta.lst", done)
        entry = _describe(done, len(lang_rows))
        entry["cut_by"] = {k: sum(how == k for it, how in results if it) for k in ("word timing", "estimate")}
        entry["skipped"] = [f"{r.id}: {how}" for r, (it, how) in zip(lang_rows, results) if it is None]
        summary["sets"][f"continuation/{lang}"] = entry
    if cfg.length_language in languages:
        lang_rows = [r for r in rows if r.language == cfg.length_language]
        directory = out / "length" / cfg.length_language
        items = write_set(directory, length_items(lang_rows, root, directory, cfg))
        summary["sets"][f"length/{cfg.length_language}"] = _describe(items, len(lang_rows))
    out.mkdir(parents=True, exist_ok=True)
    (out / "sets.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _describe(items: list[EvalItem], source_rows: int) -> dict:
    return {
        "n": len(items),
        "source_rows": source_rows,
        "table7": table7([it.target_text for it in items], DEFAULT_BOUNDS),
    }
