"""The paired markup corpus (tts/corpus/markups.py): plan statistics, splits, text/audio agreement, rendering."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections import Counter, defaultdict

import numpy as np
import pytest
import soundfile as sf

from tts.base.config import load_config
from tts.base.layout import NONVERBAL_TAGS, STYLE_TAGS
from tts.base.manifest import read_manifest, write_manifest
from tts.corpus.generate import CorpusConfig
from tts.corpus.markups import SPLITS, MarkupCorpusConfig, build_markup_corpus, plan_markups, split_sentences
from tts.corpus.timing import word_starts
from tts.front_end import FrontEnd

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
BASE = CorpusConfig(sentences={"en": 300})
CFG = MarkupCorpusConfig(out_dir="unused", samples={"train": 200, "val": 20, "test": 40}, corpus=BASE)


@pytest.fixture(scope="module")
def jobs():
    return plan_markups(CFG)


def _split_text(text: str) -> list[str]:
    """Transcripts between style tags, non-verbal tags removed."""
    plain = re.sub(r"\s*\[(?:" + "|".join(t[1:-1] for t in NONVERBAL_TAGS) + r")\]\s*", " ", text)
    return [s.strip() for s in re.split(r"\[(?:" + "|".join(t[1:-1] for t in STYLE_TAGS) + r")\]", plain)]


def test_fractions_are_exact(jobs):
    for split, n in CFG.samples.items():
        rows = [j.utt for j in jobs if j.utt.split == split]
        assert len(rows) == n
        unpaired = [r for r in rows if not set(r.tags) & set(STYLE_TAGS)]
        alone = [r for r in rows if r.text.startswith(STYLE_TAGS)]  # one styled utterance, its tag first
        sounds = [r for r in rows if set(r.tags) & set(NONVERBAL_TAGS)]
        assert len(unpaired) == round(CFG.unpaired_fraction * n) and len(alone) == round(CFG.alone_fraction * n)
        assert len(sounds) == round(CFG.nonverbal_fraction * n) and 0 < len(sounds) < n
        assert all(len([t for t in r.tags if t in STYLE_TAGS]) == 1 for r in alone)
        assert all(len([t for t in r.tags if t in NONVERBAL_TAGS]) <= 1 for r in rows)


def test_pairs_share_neutral_speaker_and_use_unique_styles(jobs):
    groups = defaultdict(list)
    for j in jobs:
        if j.group >= 0:
            groups[j.group].append(j)
    sizes = [len(g) for g in groups.values()]
    assert min(sizes) >= 1 and max(sizes) == 5 and len(set(sizes)) >= 4
    for g in groups.values():
        assert len({j.speaker.id for j in g}) == 1 and len({j.utt.split for j in g}) == 1
        neutral = {_split_text(j.utt.text)[0] for j in g}
        stylised = [_split_text(j.utt.text)[1] for j in g]
        styles = [next(t for t in j.utt.tags if t in STYLE_TAGS) for j in g]
        assert len(neutral) == 1 and neutral.isdisjoint(stylised)
        assert len(set(stylised)) == len(g) and len(set(styles)) == len(g)


def test_text_matches_audio_parts(jobs):
    for j in jobs:
        text_tags = re.findall(r"\[[a-z_]+\]", j.utt.text)
        assert text_tags == j.utt.tags
        sounds = [p.tag for p in j.parts if p.kind == "sound"]
        assert sounds == [t for t in j.utt.tags if t in NONVERBAL_TAGS]
        assert [p.tag for p in j.parts if p.kind in ("sound", "style")] == j.utt.tags  # the text's order
        # the words are spoken in the order they are written, each in the style of the tag before it
        written, style = [], ""
        for piece in re.findall(r"\[[a-z_]+\]|[^\[\]]+", j.utt.text):
            if piece in STYLE_TAGS:
                style = piece
            elif piece not in NONVERBAL_TAGS:
                written += [(w, style) for w in piece.split()]
        assert [(w, p.tag) for p in j.parts if p.kind == "speech" for w in p.text.split()] == written
        gaps = [p.seconds for p in j.parts if p.kind == "silence"]
        pair_gaps = [g for g in gaps if g >= 0.5]
        alone = j.utt.text.startswith(STYLE_TAGS)  # one styled utterance: no pair, no pair gap
        assert len(pair_gaps) == len([t for t in j.utt.tags if t in STYLE_TAGS]) - alone
        assert all(0.1 <= g <= 1.5 for g in gaps)


def test_splits_follow_the_base_corpus(jobs):
    pools = split_sentences(CFG)
    for j in jobs:
        for transcript in filter(None, _split_text(j.utt.text)):  # '' before an "alone" sample's leading tag
            assert transcript in pools[j.utt.split], (j.utt.split, transcript)
        assert j.speaker.held_out == (j.utt.split == "test")
    assert {j.utt.split for j in jobs} == {"train", "val", "test"}


def test_voices_follow_the_base_corpus_speakers(jobs):
    """The markup corpus speaks with the base corpus's voices: 8 training voices at its default, 22 with
    `corpus.en_speakers=24` (the embedded SpeechLM's corpus), the same two held out for the test split."""
    more = plan_markups(dataclasses.replace(CFG, corpus=dataclasses.replace(BASE, en_speakers=24)))
    voices = {split: {j.speaker.id for j in jobs if j.utt.split == split} for split in SPLITS}
    wider = {split: {j.speaker.id for j in more if j.utt.split == split} for split in SPLITS}
    assert len(voices["train"]) == 8 and len(wider["train"]) == 22 and voices["train"] < wider["train"]
    assert voices["test"] == wider["test"] == {"en_08", "en_09"}


def test_plan_is_deterministic_and_seeded(jobs):
    again = plan_markups(CFG)
    assert [(j.utt, j.parts) for j in again] == [(j.utt, j.parts) for j in jobs]
    other = plan_markups(dataclasses.replace(CFG, seed=1))
    assert [j.utt.text for j in other] != [j.utt.text for j in jobs]


def test_tag_weights_set_each_tags_share_of_the_styled_alone_samples_and_of_the_sounds(jobs):
    weighted = plan_markups(dataclasses.replace(CFG, tag_weights={"[whispering]": 3.0, "[cough]": 2.0}))
    train = [j.utt for j in weighted if j.utt.split == "train"]  # 200 samples: 80 styled alone, 140 with a sound
    alone = Counter(u.tags[0] for u in train if u.text.startswith(STYLE_TAGS))
    sounds = Counter(t for u in train for t in u.tags if t in NONVERBAL_TAGS)
    assert alone["[whispering]"] == 24 and {alone[t] for t in STYLE_TAGS if t != "[whispering]"} == {8}  # 3 : 1
    assert sounds["[cough]"] == 35 and {sounds[t] for t in NONVERBAL_TAGS if t != "[cough]"} <= {17, 18}  # 2 : 1
    assert sum(alone.values()) == 80 and sum(sounds.values()) == 140  # the fractions stay as they were
    # only the ratios count: equal weights, however large, are one plan with each tag in turn
    equal = plan_markups(dataclasses.replace(CFG, tag_weights={}))
    same = plan_markups(dataclasses.replace(CFG, tag_weights=dict.fromkeys(STYLE_TAGS + NONVERBAL_TAGS, 2.0)))
    assert [(j.utt, j.parts) for j in same] == [(j.utt, j.parts) for j in equal] != [(j.utt, j.parts) for j in jobs]
    turns = [u.tags[0] for u in (j.utt for j in equal) if u.split == "train" and u.text.startswith(STYLE_TAGS)]
    assert Counter(turns) == dict.fromkeys(STYLE_TAGS, 10)


def test_all_tags_used(jobs):
    used = {t for j in jobs for t in j.utt.tags}
    assert used == set(STYLE_TAGS) | set(NONVERBAL_TAGS)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"language": "xx"}, "not supported"),
        ({"corpus": CorpusConfig(sentences={"de": 50})}, "no 'en' entry"),
        ({"samples": {"dev": 3}}, "unknown split"),
        ({"samples": {"train": -1}}, "non-negative integer"),
        ({"max_pairs": 9}, "max_pairs"),
        ({"min_pairs": 3, "max_pairs": 2}, "min_pairs"),
        ({"unpaired_fraction": 1.5}, "unpaired_fraction"),
        ({"unpaired_fraction": 0.7, "alone_fraction": 0.4}, r"unpaired_fraction \+ alone_fraction"),
        ({"nonverbal_fraction": -0.1}, "nonverbal_fraction"),
        ({"min_gap": 2.0}, "min_gap"),
        ({"workers": 0}, "workers"),
        ({"tag_weights": {"[dancing]": 2.0}}, r"tag_weights: unknown tag\(s\) \['\[dancing\]'\]"),
        ({"tag_weights": {"[sad]": -1.0}}, r"tag_weights\['\[sad\]'\] must be >= 0"),
        ({"tag_weights": dict.fromkeys(NONVERBAL_TAGS, 0.0)}, "every non-verbal tag weighs 0"),
        ({"samples": {"test": 5}, "corpus": CorpusConfig(sentences={"en": 20})}, "raise corpus.sentences.en"),
    ],
)
def test_bad_config(change, message):
    with pytest.raises(ValueError, match=message):
        plan_markups(dataclasses.replace(CFG, **change))


def test_config_from_overrides():
    cfg = load_config(MarkupCorpusConfig, None, ["corpus.sentences.en=300", "samples.test=7", "max_gap=1.0"])
    assert cfg.corpus.sentences["en"] == 300 and cfg.corpus.sentences["de"] == 150
    assert cfg.samples == {"train": 4500, "val": 80, "test": 7} and cfg.max_gap == 1.0


@needs_espeak
def test_build_small_corpus(tmp_path):
    cfg = dataclasses.replace(CFG, out_dir=str(tmp_path), samples={"train": 10, "test": 5})
    summary = build_markup_corpus(cfg)
    assert summary["samples"] == 15 and not summary["failures"]
    assert summary["per_split"]["train"] | {"hours": 0} == {
        "samples": 10,
        "paired": 4,
        "alone": 4,
        "unpaired": 2,
        "nonverbal": 7,
        "hours": 0,
    }
    rows = read_manifest(tmp_path / "manifest.jsonl")
    assert len(rows) == 15
    for r in rows:
        wave, sr = sf.read(str(r.wav_path(tmp_path)), dtype="float32")
        assert sr == 16000 and abs(len(wave) / sr - r.duration) < 1e-3
        if set(r.tags) & set(STYLE_TAGS) and not r.text.startswith(STYLE_TAGS):  # the pair gap is in the audio
            silent = np.abs(wave) < 1e-3
            edges = np.flatnonzero(np.diff(np.r_[0, silent.astype(int), 0]))
            assert (edges[1::2] - edges[::2]).max() >= 0.5 * sr, r.id
    mtimes = {r.wav: r.wav_path(tmp_path).stat().st_mtime_ns for r in rows}
    assert build_markup_corpus(cfg)["samples"] == 15  # resumes: no file written again, the same timings
    assert {r.wav: r.wav_path(tmp_path).stat().st_mtime_ns for r in rows} == mtimes
    assert [r.phonemes for r in read_manifest(tmp_path / "manifest.jsonl")] == [r.phonemes for r in rows]
    lost = [dataclasses.replace(r, phonemes=None) if k == 0 else r for k, r in enumerate(rows)]
    write_manifest(tmp_path / "manifest.jsonl", lost)  # a file whose timing is lost is rendered again
    assert build_markup_corpus(cfg)["samples"] == 15
    again = {r.wav: r for r in read_manifest(tmp_path / "manifest.jsonl")}
    assert again[rows[0].wav].phonemes and rows[0].wav_path(tmp_path).stat().st_mtime_ns != mtimes[rows[0].wav]
    assert all(again[r.wav].phonemes == r.phonemes for r in rows[1:])


@needs_espeak
def test_samples_are_timed_as_they_are_joined(tmp_path):
    """Each row carries its phoneme and tag starts from construction: a style tag where its segment starts (after
    the pair's pause), a non-verbal where its sound starts (after its short pause), the words in between; the
    word-synchronous layout's word cutting (`word_starts`) puts every tag at its own start."""
    cfg = dataclasses.replace(CFG, out_dir=str(tmp_path), samples={"train": 24}, nonverbal_fraction=0.5)
    assert not build_markup_corpus(cfg)["failures"]
    front, cut = FrontEnd("phonemes"), 0
    for r in read_manifest(tmp_path / "manifest.jsonl"):
        wave, sr = sf.read(str(r.wav_path(tmp_path)), dtype="float32")
        starts = [t for _, t in r.phonemes]
        assert starts == sorted(starts) and 0.1 <= starts[0] and starts[-1] < r.duration
        assert [p for p, _ in r.phonemes if p in r.tags] == r.tags
        for tag, t in ((p, t) for p, t in r.phonemes if p in r.tags):
            at = round(t * sr)
            pair = tag in STYLE_TAGS and not r.text.startswith(tag)
            pause = 0.45 if pair else 0.08  # the pair's gap (0.5-1.5 s), or a sound's (0.1-0.3 s) or the edge's
            assert np.abs(wave[at - round(pause * sr) : at - round(0.01 * sr)]).max() < 1e-3, (r.id, tag)
            assert np.abs(wave[at : at + round(0.1 * sr)]).max() > 1e-2, (r.id, tag)  # sound starts there
        words = front.apply(r.text).split()
        starts = word_starts(words, r.phonemes)  # None where a voice's accent is far from the front end's
        cut += starts is not None
        if starts is not None:
            assert all(dict(zip(words, starts))[tag] == t for tag, t in r.phonemes if tag in r.tags), r.id
    assert cut >= 18
