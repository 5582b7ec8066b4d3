"""Tests for the espeak-ng corpus planner/renderer (tts/corpus/generate.py) and its speakers (voices.py)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import tts.corpus.generate as gen
from tts.base.languages import LANGUAGES
from tts.base.manifest import read_manifest
from tts.corpus.generate import CorpusConfig, SynthesisError, generate, plan, speak
from tts.corpus.open_text import FORTUNES, open_sentences, vocabulary, word_sequences
from tts.corpus.text import generate_sentences
from tts.corpus.voices import MAX_EN_SPEAKERS, Speaker, find_speaker, speakers_for

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
REQUIRED = {"id", "text", "language", "speaker", "wav", "duration", "sample_rate", "split", "tags"}


@pytest.fixture(scope="module")
def small_plan():
    cfg = CorpusConfig(out_dir="unused", sentences={"en": 60, "de": 20})
    return cfg, plan(cfg)


# --- speakers ---------------------------------------------------------------------------------------------


def test_english_speakers():
    speakers = speakers_for("en", LANGUAGES["en"].espeak_voice)
    assert len({s.id for s in speakers}) == len(speakers) >= 8
    assert len({(s.voice, s.pitch, s.speed) for s in speakers}) == len(speakers)  # audibly distinct settings
    assert all(s.language == "en" for s in speakers)
    held = [s for s in speakers if s.held_out]
    assert len(held) == 2 and len(speakers) - len(held) >= 8


def test_up_to_24_english_voices_keep_the_first_ten_and_their_held_out_pair():
    ten, all_ = speakers_for("en", "en-us"), speakers_for("en", "en-us", MAX_EN_SPEAKERS)
    assert MAX_EN_SPEAKERS == 24 and all_[:10] == ten
    assert len({(s.voice, s.pitch, s.speed) for s in all_}) == 24
    assert [s.id for s in all_ if s.held_out] == ["en_08", "en_09"]
    assert find_speaker("en", "en_23") == all_[23] and find_speaker("en", "en_24") is None
    with pytest.raises(ValueError, match=r"en_speakers must be in \[10, 24\]"):
        speakers_for("en", "en-us", 25)


@pytest.mark.skipif(not Path(FORTUNES).is_dir(), reason="the fortunes package is not installed")
def test_open_sentences_are_plain_distinct_deterministic_and_split_apart():
    got = open_sentences("en", 300, seed=1)
    assert got == open_sentences("en", 300, seed=1) != open_sentences("en", 300, seed=2)
    assert len(set(got)) == 300 and all(5 <= len(s.split()) <= 20 and s[-1] in ".!?" for s in got)
    assert not any(ch.isdigit() or ch in ':"' for s in got for ch in s)
    grammar = set(generate_sentences("en", 2000))
    assert not grammar & set(got)  # other words, other sentence shapes
    with pytest.raises(ValueError, match="only English"):
        open_sentences("de", 10)
    cfg = CorpusConfig(out_dir="unused", sentences={"en": 40}, open_sentences={"en": 60}, en_speakers=24)
    jobs = plan(cfg)
    opened = [u for u, _ in jobs if "_open" in u.id]
    assert len(opened) == 60 and len({u.id for u, _ in jobs}) == 100
    assert Counter(u.split for u in opened) == {"test": 3, "val": 2, "train": 55}
    assert all(s.held_out for u, s in jobs if u.split == "test")
    used = {s.id for _, s in jobs if not s.held_out}
    assert len(used & {f"en_{i:02d}" for i in range(10, 24)}) >= 10  # the new voices speak too


def test_word_sequences_are_distinct_deterministic_words_of_the_vocabulary_and_train_apart():
    words = set(vocabulary())
    assert len(words) > 5000 and {"the", "mathematics", "triangle"} <= words
    assert not {"th", "an", "re"} & words  # two-letter tokens are left out
    got = word_sequences("en", 200, seed=1)
    assert got == word_sequences("en", 200, seed=1) != word_sequences("en", 200, seed=2)
    assert len(set(got)) == 200 and all(s[0].isupper() and s.endswith(".") for s in got)
    assert all(4 <= len(s.split()) <= 12 and set(s[:-1].lower().split()) <= words for s in got)
    with pytest.raises(ValueError, match="only English"):
        word_sequences("fr", 3)
    jobs = plan(CorpusConfig(out_dir="unused", sentences={}, word_sequences={"en": 40}, en_speakers=24))
    assert len(jobs) == 40 and all("_words" in u.id for u, _ in jobs)
    assert not any(gen.outside_grammar(u.id) for u, _ in jobs)  # never an open-vocabulary evaluation item


def test_other_language_speakers():
    speakers = speakers_for("de", "de")
    assert [s.id for s in speakers] == ["de_00", "de_01", "de_02"]
    assert [s.held_out for s in speakers] == [False, False, True]
    assert all(s.voice.startswith("de+") and s.language == "de" for s in speakers)


def test_espeak_args():
    assert Speaker("x", "en", "en-us+f3", 60, 155).espeak_args() == ["-v", "en-us+f3", "-p", "60", "-s", "155"]


# --- plan ---------------------------------------------------------------------------------------------------


def test_plan_split_sizes(small_plan):
    _, jobs = small_plan
    counts = Counter((u.language, u.split) for u, _ in jobs)
    # n_test = max(2, round(n * 0.05)), n_val = max(2, round(n * 0.04))
    assert counts == {
        ("en", "test"): 3,
        ("en", "val"): 2,
        ("en", "train"): 55,
        ("de", "test"): 2,
        ("de", "val"): 2,
        ("de", "train"): 16,
    }


def test_test_split_uses_only_held_out_speakers(small_plan):
    _, jobs = small_plan
    test = [(u, s) for u, s in jobs if u.split == "test"]
    assert test
    for u, s in test:
        assert s.held_out and u.speaker == s.id
    for u, s in jobs:
        if u.split in ("train", "val"):
            assert not s.held_out, u


def test_val_speakers_are_training_speakers(small_plan):
    _, jobs = small_plan
    train_speakers = {u.speaker for u, _ in jobs if u.split == "train"}
    val = [u for u, _ in jobs if u.split == "val"]
    assert val and all(u.speaker in train_speakers for u in val)


def test_test_sentences_are_held_out(small_plan):
    _, jobs = small_plan
    test_texts = {u.text for u, _ in jobs if u.split == "test"}
    other_texts = {u.text for u, _ in jobs if u.split != "test"}
    assert len(test_texts) == 5
    assert not test_texts & other_texts
    val_texts = {u.text for u, _ in jobs if u.split == "val"}
    train_texts = {u.text for u, _ in jobs if u.split == "train"}
    assert not val_texts & train_texts


def test_plan_rows(small_plan):
    cfg, jobs = small_plan
    assert len(jobs) == 80
    assert len({u.id for u, _ in jobs}) == 80 and len({u.wav for u, _ in jobs}) == 80
    for u, s in jobs:
        assert u.language == s.language and u.speaker == s.id
        assert u.wav.startswith(f"wavs/{u.language}/{s.id}/{u.id}_") and u.wav.endswith(".wav")
        assert u.sample_rate == cfg.sample_rate and u.duration == 0.0
        assert u.text.strip()
    # training data spreads over several speakers, not one
    assert len({u.speaker for u, _ in jobs if u.language == "en" and u.split == "train"}) >= 6


def test_plan_is_deterministic_and_seeded(small_plan):
    cfg, jobs = small_plan
    assert plan(CorpusConfig(sentences={"en": 60, "de": 20})) == jobs
    other = plan(CorpusConfig(sentences={"en": 60, "de": 20}, seed=1))
    assert [u.text for u, _ in other] != [u.text for u, _ in jobs]


def test_unknown_language():
    with pytest.raises(ValueError, match=r"unknown language\(s\) \['klingon', 'xx'\]; supported: .*'en'"):
        plan(CorpusConfig(sentences={"en": 4, "xx": 2, "klingon": 1}))


# --- speak / generate (espeak-ng) ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n"])
def test_speak_empty_text(text):
    with pytest.raises(SynthesisError, match="en_00: empty text"):
        speak(Speaker("en_00", "en", "en-us"), text, 16000)


@needs_espeak
def test_speak_renders_float_mono():
    wave = speak(Speaker("en_00", "en", "en-us+m1", 45, 165), "the cat sat on the mat", 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.5 < len(wave) / 16000 < 5
    assert 0.05 < np.abs(wave).max() <= 1.0


@needs_espeak
def test_speak_unknown_voice():
    with pytest.raises(SynthesisError, match="bad: espeak-ng failed"):
        speak(Speaker("bad", "en", "zzqq"), "hello there", 16000)


@needs_espeak
def test_generate_and_resume(tmp_path, monkeypatch):
    out = tmp_path / "corpus"
    cfg = CorpusConfig(out_dir=str(out), sentences={"en": 12, "de": 6}, workers=2)
    summary = generate(cfg)

    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 18
    for line in lines:
        raw = json.loads(line)
        assert set(raw) == REQUIRED
        wav = out / raw["wav"]
        info = sf.info(str(wav))
        assert info.samplerate == 16000 and info.channels == 1 and info.frames > 1600
        assert raw["sample_rate"] == 16000
        assert raw["duration"] == round(info.frames / 16000, 3)
    rows = read_manifest(out / "manifest.jsonl")
    expected = {(lang, s) for lang in ("en", "de") for s in ("train", "val", "test")}
    assert {(r.language, r.split) for r in rows} == expected

    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary
    assert summary["utterances"] == 18 and summary["failures"] == []
    assert summary["config"]["sentences"] == {"en": 12, "de": 6}
    en, de = summary["per_language"]["en"], summary["per_language"]["de"]
    assert (en["train"], en["val"], en["test"]) == (8, 2, 2)
    assert (de["train"], de["val"], de["test"]) == (2, 2, 2)
    assert en["hours"] == round(sum(r.duration for r in rows if r.language == "en") / 3600, 3) > 0
    assert set(en["speakers"]) == {r.speaker for r in rows if r.language == "en"}

    # Re-running reuses every finished wav: nothing is re-rendered or rewritten.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert len(mtimes) == 18

    def no_speak(*args, **kw):
        raise AssertionError("speak() called on a resumed run")

    monkeypatch.setattr(gen, "speak", no_speak)
    again = generate(cfg)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes
    assert read_manifest(out / "manifest.jsonl") == rows
    assert again["per_language"] == summary["per_language"]

    # A file at the wrong rate is not "finished": only that one is rendered again.
    stale = out / rows[0].wav
    sf.write(stale, np.zeros(800, dtype=np.float32), 8000)
    calls = []
    monkeypatch.setattr(gen, "speak", lambda spk, text, sr: calls.append(text) or speak(spk, text, sr))
    generate(cfg)
    assert calls == [rows[0].text]
    assert sf.info(str(stale)).samplerate == 16000


def test_changed_text_gets_a_new_file(monkeypatch):
    """Resume keys files by content: a changed sentence never reuses the audio of the old one."""
    cfg = CorpusConfig(sentences={"en": 6})
    before = {u.id: u.wav for u, _ in gen.plan(cfg)}
    assert before == {u.id: u.wav for u, _ in gen.plan(cfg)}  # deterministic
    original = gen.generate_sentences
    monkeypatch.setattr(
        gen, "generate_sentences", lambda lang, n, seed: ["A changed sentence."] + original(lang, n, seed)[1:]
    )
    after = {u.id: u.wav for u, _ in gen.plan(cfg)}
    changed = [k for k in before if before[k] != after[k]]
    assert len(changed) == 1 and changed[0].endswith("_00000")


def test_generate_records_failures(tmp_path, monkeypatch):
    def flaky(spk, text, sr):
        if spk.held_out:
            raise SynthesisError(f"{spk.id}: boom")
        return np.full(sr // 5, 0.1, dtype=np.float32)

    monkeypatch.setattr(gen, "speak", flaky)
    summary = generate(CorpusConfig(out_dir=str(tmp_path), sentences={"en": 6}, workers=1))
    assert summary["utterances"] == 4 and len(summary["failures"]) == 2
    assert all("boom" in f for f in summary["failures"])
    rows = read_manifest(tmp_path / "manifest.jsonl")
    assert [r.split for r in rows] == ["val", "val", "train", "train"]
    assert all(r.duration == 0.2 for r in rows)
