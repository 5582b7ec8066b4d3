"""`build_markup_corpus`: the paired markup dataset of paper section 3.6, rendered with espeak-ng.

Neutral and stylised utterances of one speaker are paired: the transcripts are joined with the style tag as the
delimiter ("We ate soup. [sad] The boys ran home.") and the audio with 0.5-1.5 s of silence. Each neutral utterance
is paired with 1-5 stylised utterances (distinct sentences and styles, one sample per pair), 20% of the samples are
unpaired neutral utterances, 40% are stylised utterances alone with their tag first (what follows a voice-cloning
prompt at inference), and 50% carry a non-verbal sound whose tag sits in the text where the sound is in the
audio. Sentences come from the base corpus' own splits (`tts.corpus.generate.plan`) and test samples are spoken by
its held-out speakers, so neither a test sentence nor a test voice reaches training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tts.base.languages import LANGUAGES
from tts.base.layout import NONVERBAL_TAGS, STYLE_TAGS
from tts.base.manifest import SPLITS, Utterance, read_manifest, write_manifest
from tts.corpus.generate import CorpusConfig, plan, render_utterance
from tts.corpus.styles import STYLES, VOCAL_SOUNDS, nonverbal, render_timed, trim_bounds
from tts.corpus.voices import Speaker, speakers_for

NONVERBAL_GAP = (0.1, 0.3)  # s of silence between a non-verbal sound and the speech next to it
EDGE_SILENCE = 0.1  # s of silence at both ends of every sample (segments are trimmed before joining)
RENDERER = "libespeak-ng, timed"  # how speech parts are rendered (in the wav names: a change renders anew)


@dataclass
class MarkupCorpusConfig:
    out_dir: str = "data/markup_corpus"
    language: str = "en"
    # 4,500 train samples (7.2 h) against 1,500: [whispering] voiced 0.16 instead of 0.48 and non-verbals named right
    # 29 of 56 times instead of 23 after 900 LoRA steps (docs/results.md)
    samples: dict[str, int] = field(default_factory=lambda: {"train": 4500, "val": 80, "test": 80})
    min_pairs: int = 1  # stylised utterances per neutral utterance, uniform in [min_pairs, max_pairs]
    max_pairs: int = 5
    # shares measured on the LoRA markups (docs/results.md): against 0.3 / 0.2 / 0.2, [whispering] voiced fraction
    # 0.23 instead of 0.60 after a neutral cloning prompt, non-verbals named right 9 of 28 times instead of 4, and
    # [sad] slower and lower-pitched
    unpaired_fraction: float = 0.2  # neutral alone; untagged ones are SFT's cloning references
    # stylised utterances alone, their tag first ("[sad] The boys ran home."): what a voice-cloning prompt followed
    # by a tagged text is at inference, where the style starts right after the reference's neutral speech
    alone_fraction: float = 0.4
    # 0.7 and whispering x3 against 0.5 and equal weights (4,500 samples, 900 LoRA steps, 8 held-out prompts):
    # [whispering] voiced 0.11 instead of 0.16 (7 of 8 prompts whisper), non-verbals named right 31 of 56 times
    # instead of 28, WER 48.3% instead of 46.1% (docs/results.md)
    nonverbal_fraction: float = 0.7
    # relative weight of a tag among the styled-alone samples' styles or among the sounds (unlisted tags: 1): more
    # of what held-out prompts get wrong; the styles of paired samples stay uniform
    tag_weights: dict[str, float] = field(default_factory=lambda: {"[whispering]": 3.0})
    min_gap: float = 0.5  # s of silence between the two utterances of a pair
    max_gap: float = 1.5
    seed: int = 0
    workers: int = 2
    # the base corpus whose sentence splits, speakers and sample rate this corpus follows
    corpus: CorpusConfig = field(default_factory=CorpusConfig)


@dataclass(frozen=True)
class Part:
    """A piece of a sample's audio: speech (`text` in style `tag`, '' = neutral), a non-verbal `tag`, silence, or
    where a style `tag` starts (no audio; its place in the text)."""

    kind: str  # "speech" | "sound" | "silence" | "style"
    text: str = ""
    tag: str = ""
    seconds: float = 0.0


@dataclass
class MarkupJob:
    utt: Utterance
    speaker: Speaker
    parts: list[Part]
    group: int  # index of the neutral utterance the sample pairs with; -1 for an unpaired sample


def check_config(cfg: MarkupCorpusConfig) -> None:
    """Raise ValueError naming the first bad setting."""
    if cfg.language not in LANGUAGES:
        raise ValueError(f"language {cfg.language!r} is not supported; expected one of {sorted(LANGUAGES)}")
    if cfg.language not in cfg.corpus.sentences:
        raise ValueError(f"corpus.sentences has no {cfg.language!r} entry: the base corpus defines the splits")
    bad = sorted(set(cfg.samples) - set(SPLITS))
    if bad:
        raise ValueError(f"samples: unknown split(s) {bad}; expected {SPLITS}")
    for split, n in cfg.samples.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"samples.{split} must be a non-negative integer, got {n!r}")
    if not 1 <= cfg.min_pairs <= cfg.max_pairs <= len(STYLE_TAGS):
        raise ValueError(
            f"need 1 <= min_pairs <= max_pairs <= {len(STYLE_TAGS)} (one style each), "
            f"got min_pairs={cfg.min_pairs}, max_pairs={cfg.max_pairs}"
        )
    for name in ("unpaired_fraction", "alone_fraction", "nonverbal_fraction"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    unknown = sorted(set(cfg.tag_weights) - set(STYLE_TAGS) - set(NONVERBAL_TAGS))
    if unknown:
        raise ValueError(f"tag_weights: unknown tag(s) {unknown}; expected some of {STYLE_TAGS + NONVERBAL_TAGS}")
    for tag, weight in cfg.tag_weights.items():
        if not weight >= 0:
            raise ValueError(f"tag_weights[{tag!r}] must be >= 0, got {weight}")
    for kind, tags in (("style", STYLE_TAGS), ("non-verbal", NONVERBAL_TAGS)):
        if not any(cfg.tag_weights.get(t, 1.0) for t in tags):
            raise ValueError(f"tag_weights: every {kind} tag weighs 0")
    if cfg.unpaired_fraction + cfg.alone_fraction > 1.0:
        raise ValueError(
            f"unpaired_fraction + alone_fraction must be <= 1, got {cfg.unpaired_fraction} + {cfg.alone_fraction}"
        )
    if not 0.0 <= cfg.min_gap <= cfg.max_gap:
        raise ValueError(f"need 0 <= min_gap <= max_gap, got min_gap={cfg.min_gap}, max_gap={cfg.max_gap}")
    if cfg.workers < 1:
        raise ValueError(f"workers must be >= 1, got {cfg.workers}")


def split_sentences(cfg: MarkupCorpusConfig) -> dict[str, list[str]]:
    """The base corpus' sentences of `cfg.language`, by split."""
    base = dataclasses.replace(cfg.corpus, sentences={cfg.language: cfg.corpus.sentences[cfg.language]})
    pools: dict[str, list[str]] = {s: [] for s in SPLITS}
    for utt, _ in plan(base):
        pools[utt.split].append(utt.text)
    return pools


def _stream(pool: list[str], rng: random.Random) -> Iterator[str]:
    """Endless passes over `pool`, each in a new order: sentences are reused only once all were used."""
    while True:
        order = list(pool)
        rng.shuffle(order)
        yield from order


def _draw(stream: Iterator[str], n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        text = next(stream)
        if text not in out:
            out.append(text)
    return out


def _compose(
    segments: list[tuple[str, str]], sound: str, rng: random.Random, cfg: MarkupCorpusConfig
) -> tuple[str, list[Part], list[str]]:
    """(text, audio parts, tags) of segments [(text, style tag or '')]; `sound` ('' for none) goes at a random
    word boundary, the same place in text and audio."""
    words = [text.split() for text, _ in segments]
    slots = [(i, k) for i, w in enumerate(words) for k in range(len(w) + 1)]
    at = rng.choice(slots) if sound else None
    pieces: list[str] = []
    parts: list[Part] = []
    tags: list[str] = []
    for i, ((_, style), w) in enumerate(zip(segments, words)):
        if style:
            pieces.append(style)
            tags.append(style)
        if i:
            parts.append(Part("silence", seconds=round(rng.uniform(cfg.min_gap, cfg.max_gap), 3)))
        if style:
            parts.append(Part("style", tag=style))
        cut = at[1] if at is not None and at[0] == i else None
        if cut is None:
            pieces += w
            parts.append(Part("speech", " ".join(w), style))
            continue
        left, right = w[:cut], w[cut:]
        if left:
            pieces += left
            parts += [Part("speech", " ".join(left), style), Part("silence", seconds=_short_gap(rng))]
        pieces.append(sound)
        tags.append(sound)
        parts.append(Part("sound", tag=sound))
        if right:
            pieces += right
            parts += [Part("silence", seconds=_short_gap(rng)), Part("speech", " ".join(right), style)]
    return " ".join(pieces), parts, tags


def _rotation(tags: tuple[str, ...], weights: dict[str, float], n: int) -> list[str]:
    """`n` tags in smooth weighted round robin: each tag's count is proportional to its weight (default 1) and
    spread evenly; with equal weights, `tags` in turn."""
    weight = [float(weights.get(t, 1.0)) for t in tags]
    current, total, out = [0.0] * len(tags), sum(weight), []
    for _ in range(n):
        current = [c + w for c, w in zip(current, weight)]
        best = current.index(max(current))
        current[best] -= total
        out.append(tags[best])
    return out


def _short_gap(rng: random.Random) -> float:
    return round(rng.uniform(*NONVERBAL_GAP), 3)


def _digest(speaker: Speaker, parts: list[Part], sample_rate: int) -> str:
    """Names the wav after everything that shapes its audio, style settings included: a change re-renders it."""
    settings = {p.tag: repr(STYLES.get(p.tag) or VOCAL_SOUNDS.get(p.tag)) for p in parts if p.tag}
    recipe = json.dumps(
        [speaker.espeak_args(), [asdict(p) for p in parts], settings, sample_rate, RENDERER], sort_keys=True
    )
    return hashlib.sha1(recipe.encode()).hexdigest()[:8]


def plan_markups(cfg: MarkupCorpusConfig) -> list[MarkupJob]:
    """Deterministic sample plan (no audio rendered)."""
    check_config(cfg)
    pools = split_sentences(cfg)
    speakers = speakers_for(cfg.language, LANGUAGES[cfg.language].espeak_voice, cfg.corpus.en_speakers)
    jobs: list[MarkupJob] = []
    group = 0
    for split in SPLITS:
        n = cfg.samples.get(split, 0)
        if not n:
            continue
        rng = random.Random(f"markups:{cfg.seed}:{cfg.language}:{split}")
        voices = [s for s in speakers if s.held_out == (split == "test")]
        n_unpaired, n_alone = round(n * cfg.unpaired_fraction), round(n * cfg.alone_fraction)
        need = 1 if n_unpaired + n_alone == n else cfg.max_pairs + 1
        if len(pools[split]) < need:
            raise ValueError(
                f"the base corpus' {split} split has {len(pools[split])} {cfg.language} sentence(s), "
                f"need at least {need}; raise corpus.sentences.{cfg.language}"
            )
        stream = _stream(pools[split], rng)
        samples: list[tuple[Speaker, list[tuple[str, str]], int]] = []
        for _ in range(n_unpaired):
            samples.append((rng.choice(voices), [(next(stream), "")], -1))
        for style in _rotation(STYLE_TAGS, cfg.tag_weights, n_alone):
            samples.append((rng.choice(voices), [(next(stream), style)], -1))
        left = n - n_unpaired - n_alone
        while left:
            k = min(rng.randint(cfg.min_pairs, cfg.max_pairs), left)
            neutral, *stylised = _draw(stream, k + 1)
            speaker = rng.choice(voices)
            for text, style in zip(stylised, rng.sample(STYLE_TAGS, k)):
                samples.append((speaker, [(neutral, ""), (text, style)], group))
            group += 1
            left -= k
        rng.shuffle(samples)
        n_sound = round(n * cfg.nonverbal_fraction)
        sounds = _rotation(NONVERBAL_TAGS, cfg.tag_weights, n_sound)
        rng.shuffle(sounds)
        sound_at = dict(zip(rng.sample(range(n), n_sound), sounds))
        for i, (speaker, segments, grp) in enumerate(samples):
            text, parts, tags = _compose(segments, sound_at.get(i, ""), rng, cfg)
            uid = f"{speaker.id}_mk_{split}_{i:05d}"
            wav = f"wavs/{split}/{speaker.id}/{uid}_{_digest(speaker, parts, cfg.corpus.sample_rate)}.wav"
            utt = Utterance(uid, text, cfg.language, speaker.id, wav, 0.0, cfg.corpus.sample_rate, split, tags)
            jobs.append(MarkupJob(utt, speaker, parts, grp))
    return jobs


def render_parts(speaker: Speaker, parts: list[Part], sample_rate: int) -> tuple[np.ndarray, list[list]]:
    """Concatenate the parts' audio (speech trimmed of espeak-ng's own pauses, so the planned gaps are the pauses)
    and time it as it is joined: [IPA, start s] for every phoneme of each speech part (rendered by libespeak-ng,
    which reports them), and [tag, start s] for a style tag where its segment starts and for a non-verbal tag where
    its sound starts. Word-synchronous training cuts the audio at these starts, so a tag's slot holds its own sound,
    which neither a re-rendering of the whole text nor an ASR can place."""
    edge = np.zeros(round(EDGE_SILENCE * sample_rate), np.float32)
    pieces, events = [edge], []
    joined = len(edge)  # samples so far
    for p in parts:
        start = joined / sample_rate
        if p.kind == "silence":
            piece = np.zeros(round(p.seconds * sample_rate), np.float32)
        elif p.kind == "sound":
            piece = nonverbal(speaker, p.tag, sample_rate)
            events.append([p.tag, round(start, 3)])
        elif p.kind == "style":  # no audio: the style starts where the next part does
            piece = np.zeros(0, np.float32)
            events.append([p.tag, round(start, 3)])
        else:
            wave, said = render_timed(speaker, p.text, p.tag, sample_rate)
            first, last = trim_bounds(wave)
            piece, lead = wave[first:last], first / sample_rate
            end = start + len(piece) / sample_rate
            events += [[ipa, round(min(max(start + t - lead, start), end), 3)] for ipa, t in said]
        pieces.append(piece)
        joined += len(piece)
    return np.concatenate([*pieces, edge]), events


def _render(job: MarkupJob, root: Path, timed: dict[str, list]) -> Utterance | str:
    """Render and time one sample; a failure comes back as a message naming it. A sample rendered before keeps its
    file and the timing `timed` (the manifest's, by wav) holds for it: libespeak-ng's pauses vary a little from
    one rendering to the next, so a timing must come from its file's own rendering. A file whose timing is lost
    is rendered again."""
    events = timed.get(job.utt.wav)
    if events is None:
        (root / job.utt.wav).unlink(missing_ok=True)

    def synthesise() -> np.ndarray:
        nonlocal events
        wave, events = render_parts(job.speaker, job.parts, job.utt.sample_rate)
        return wave

    row = render_utterance(job.utt, root, synthesise)
    if not isinstance(row, str):
        row.phonemes = events
    return row


def build_markup_corpus(cfg: MarkupCorpusConfig) -> dict:
    """Render the markup corpus; returns the summary also written to `out_dir/summary.json`."""
    root = Path(cfg.out_dir)
    jobs = plan_markups(cfg)
    rows, failures = [], []
    manifest = root / "manifest.jsonl"
    timed = {r.wav: r.phonemes for r in read_manifest(manifest, check_files=False)} if manifest.is_file() else {}
    with ThreadPoolExecutor(cfg.workers) as pool:
        for res in tqdm(pool.map(lambda j: _render(j, root, timed), jobs), total=len(jobs), desc="markup corpus"):
            (failures if isinstance(res, str) else rows).append(res)
    write_manifest(manifest, rows)
    per_split: dict[str, dict] = {}
    for r in rows:
        entry = per_split.setdefault(
            r.split, {"samples": 0, "paired": 0, "alone": 0, "unpaired": 0, "nonverbal": 0, "hours": 0.0}
        )
        entry["samples"] += 1
        styled = bool(set(r.tags) & set(STYLE_TAGS))
        entry["unpaired" if not styled else "alone" if r.text.startswith(STYLE_TAGS) else "paired"] += 1
        entry["nonverbal"] += bool(set(r.tags) & set(NONVERBAL_TAGS))
        entry["hours"] += r.duration / 3600
    for entry in per_split.values():
        entry["hours"] = round(entry["hours"], 3)
    tags = Counter(t for r in rows for t in r.tags)
    summary = {
        "samples": len(rows),
        "failures": failures,
        "per_split": per_split,
        "styles": {t: tags[t] for t in STYLE_TAGS},
        "nonverbals": {t: tags[t] for t in NONVERBAL_TAGS},
        "pairs_per_neutral": dict(sorted(Counter(Counter(j.group for j in jobs if j.group >= 0).values()).items())),
        "config": asdict(cfg),
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
