"""`tts-align corpus generate`: a deterministic, multilingual espeak-ng speech corpus.

Splits: `test` = held-out speakers reading held-out sentences; `val` = held-out sentences read by training
speakers; `train` = the rest. Re-running reuses finished wav files, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from tts.base.audio import AudioError, check_wave, resample, save_audio
from tts.base.languages import LANGUAGES
from tts.base.manifest import Utterance, write_manifest
from tts.corpus.open_text import FORTUNES, open_sentences, word_sequences
from tts.corpus.text import generate_sentences
from tts.corpus.timing import add_timings
from tts.corpus.voices import Speaker, speakers_for


@dataclass
class CorpusConfig:
    out_dir: str = "data/corpus"
    # sentences per language; English first and largest (it trains the embedded SpeechLM)
    sentences: dict[str, int] = field(
        default_factory=lambda: {
            "en": 2400,
            "de": 150,
            "fr": 150,
            "es": 150,
            "it": 100,
            "pt": 100,
            "nl": 100,
            "pl": 100,
            "zh": 150,
            "ja": 100,
            "ko": 100,
        }
    )
    # open-vocabulary sentences per language (tts.corpus.open_text: English only), on top of the grammar's; ids
    # carry "_open" so evaluation can tell the two sets apart
    open_sentences: dict[str, int] = field(default_factory=dict)
    open_text_source: str = FORTUNES
    # sequences of random English words per language (tts.corpus.open_text: English only): vocabulary to learn
    # pronunciation from, for training only; ids carry "_words"
    word_sequences: dict[str, int] = field(default_factory=dict)
    en_speakers: int = 10  # English voices, 10-24 (tts.corpus.voices; two are held out for the test split)
    val_fraction: float = 0.04
    test_fraction: float = 0.05
    sample_rate: int = 16000
    timings: bool = False  # each row's phoneme start times (tts.corpus.timing), for word-synchronous training
    seed: int = 0
    workers: int = 2


class SynthesisError(RuntimeError):
    pass


def speak(speaker: Speaker, text: str, sample_rate: int) -> np.ndarray:
    """Render `text` with espeak-ng and return float32 mono audio at `sample_rate`."""
    if not text.strip():
        raise SynthesisError(f"{speaker.id}: empty text")
    try:
        proc = subprocess.run(
            ["espeak-ng", *speaker.espeak_args(), "--stdout", text], capture_output=True, timeout=60, check=True
        )
    except FileNotFoundError as exc:
        raise SynthesisError("espeak-ng is not installed (run scripts/install.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise SynthesisError(f"{speaker.id}: espeak-ng timed out on {text[:40]!r}") from exc
    except subprocess.CalledProcessError as exc:
        raise SynthesisError(f"{speaker.id}: espeak-ng failed: {exc.stderr.decode(errors='replace')[:200]}") from exc
    try:
        wave, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
        wave = check_wave(wave, f"espeak-ng output for {speaker.id}", min_samples=sample_rate // 10)
    except (sf.LibsndfileError, AudioError) as exc:
        raise SynthesisError(f"{speaker.id}: espeak-ng produced no usable audio for {text[:40]!r}") from exc
    return resample(wave, sr, sample_rate)


OPEN = "open"  # the kind of open-vocabulary rows, in their ids: <speaker>_open<index>
WORDS = "words"  # the kind of word-sequence rows: <speaker>_words<index>


def outside_grammar(uid: str) -> bool:
    """Whether a corpus row (by id) reads an open-vocabulary sentence rather than one of the grammar's."""
    return f"_{OPEN}" in uid


def plan(cfg: CorpusConfig) -> list[tuple[Utterance, Speaker]]:
    """Assign sentences to splits and speakers (deterministic; no audio rendered)."""
    languages = dict.fromkeys([*cfg.sentences, *cfg.open_sentences, *cfg.word_sequences])
    unknown = sorted(set(languages) - set(LANGUAGES))
    if unknown:
        raise ValueError(f"unknown language(s) {unknown}; supported: {sorted(LANGUAGES)}")
    jobs: list[tuple[Utterance, Speaker]] = []
    for lang in languages:
        speakers = speakers_for(lang, LANGUAGES[lang].espeak_voice, cfg.en_speakers)
        rng = random.Random(f"{cfg.seed}:{lang}")
        sets = [("", generate_sentences(lang, cfg.sentences.get(lang, 0), seed=cfg.seed))]
        if cfg.open_sentences.get(lang):
            sets.append((OPEN, open_sentences(lang, cfg.open_sentences[lang], cfg.seed, cfg.open_text_source)))
        if cfg.word_sequences.get(lang):
            sets.append((WORDS, word_sequences(lang, cfg.word_sequences[lang], cfg.seed)))
        for kind, sentences in sets:
            jobs += _assign(cfg, lang, kind, sentences, speakers, rng)
    return jobs


def _assign(
    cfg: CorpusConfig, lang: str, kind: str, sentences: list[str], speakers: list[Speaker], rng: random.Random
) -> list[tuple[Utterance, Speaker]]:
    """Split one sentence set (test: held-out voices only) and give each sentence a speaker."""
    seen = [s for s in speakers if not s.held_out]
    held = [s for s in speakers if s.held_out]
    n = len(sentences)
    n_test = max(2, round(n * cfg.test_fraction))
    n_val = max(2, round(n * cfg.val_fraction))
    jobs = []
    for i, text in enumerate(sentences):
        split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
        spk = rng.choice(held if split == "test" else seen)
        # the file name carries a digest of what is spoken and how: a changed sentence or voice is re-rendered
        digest = hashlib.sha1(f"{text}|{spk.espeak_args()}|{cfg.sample_rate}".encode()).hexdigest()[:8]
        uid = f"{spk.id}_{kind}{i:05d}"
        wav = f"wavs/{lang}/{spk.id}/{uid}_{digest}.wav"
        jobs.append((Utterance(uid, text, lang, spk.id, wav, 0.0, cfg.sample_rate, split), spk))
    return jobs


def render_utterance(utt: Utterance, root: Path, synthesise: Callable[[], np.ndarray]) -> Utterance | str:
    """Write `utt`'s wav unless a complete one exists (resume), fill its duration; errors come back as a
    message naming the utterance, so batch rendering counts them instead of dying."""
    path = root / utt.wav
    try:
        if path.is_file():  # files are written atomically, so a readable one is complete
            try:
                info = sf.info(str(path))
                if info.samplerate == utt.sample_rate and info.frames > 0:
                    utt.duration = round(info.frames / utt.sample_rate, 3)
                    return utt
            except sf.LibsndfileError:
                pass  # corrupt: render again
        wave = synthesise()
        save_audio(path, wave, utt.sample_rate)
        utt.duration = round(len(wave) / utt.sample_rate, 3)
        return utt
    except (SynthesisError, AudioError, sf.LibsndfileError) as exc:
        return f"{utt.id}: {exc}"


def _render(job: tuple[Utterance, Speaker], root: Path, sample_rate: int) -> Utterance | str:
    utt, spk = job
    return render_utterance(utt, root, lambda: speak(spk, utt.text, sample_rate))


def generate(cfg: CorpusConfig) -> dict:
    """Render the corpus; returns the summary also written to `out_dir/summary.json`."""
    root = Path(cfg.out_dir)
    jobs = plan(cfg)
    rows, failures = [], []
    with ThreadPoolExecutor(cfg.workers) as pool:
        results = pool.map(lambda j: _render(j, root, cfg.sample_rate), jobs)
        for res in tqdm(results, total=len(jobs), desc="espeak-ng corpus"):
            (failures if isinstance(res, str) else rows).append(res)
    write_manifest(root / "manifest.jsonl", rows)
    summary: dict = {"utterances": len(rows), "failures": failures, "config": asdict(cfg), "per_language": {}}
    if cfg.timings:
        summary["untimed"] = add_timings(root / "manifest.jsonl")["untimed"]  # rows kept, without `phonemes`
    for r in rows:
        entry = summary["per_language"].setdefault(
            r.language, {s: 0 for s in ("train", "val", "test")} | {"hours": 0.0, "speakers": set()}
        )
        entry[r.split] += 1
        entry["hours"] += r.duration / 3600
        entry["speakers"].add(r.speaker)
    for entry in summary["per_language"].values():
        entry["hours"] = round(entry["hours"], 3)
        entry["speakers"] = sorted(entry["speakers"])
    (root / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary
