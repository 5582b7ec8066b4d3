"""Embedded benchmark sets: prompt choice, short phrases, long runs (known answers on constructed rows), and one
slow build of every set from a small rendered test split through `tts-align eval make-sets`."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from evals.buckets import bucket_of
from evals.meta import cloning_items, pick_prompt, read_meta_lst
from evals.sets import long_texts, short_phrase
from rayjobs.cli import main
from tts.base.audio import load_audio, save_audio
from tts.base.manifest import Utterance, write_manifest
from tts.corpus.generate import speak
from tts.corpus.voices import speakers_for


def utt(uid: str, text: str = "Some text here.", speaker: str = "s", duration: float = 3.0) -> Utterance:
    return Utterance(uid, text, "en", speaker, f"{uid}.wav", duration, 16000, "test")


def test_pick_prompt_takes_the_next_short_enough_other_utterance():
    rows = [utt("a"), utt("b", duration=9.0), utt("c"), utt("d")]
    assert pick_prompt(rows, "a", {"a"}, 6.0).id == "c"  # b is too long
    assert pick_prompt(rows, "d", {"d"}, 6.0).id == "a"  # wraps around
    assert pick_prompt(rows, "a", {"a", "c", "d"}, 6.0) is None
    assert pick_prompt(rows[:1], "a", {"a"}, 6.0) is None


def test_cloning_items_pair_each_target_with_its_speakers_next_utterance(tmp_path):
    rows = [utt("a1", "One.", "a"), utt("a2", "Two.", "a"), utt("b1", "Three.", "b")]
    items = cloning_items(rows, tmp_path)
    assert [(it.id, it.prompt_text, it.target_text) for it in items] == [("a1", "Two.", "One."), ("a2", "One.", "Two.")]
    assert items[0].prompt_wav == str(tmp_path / "a2.wav") and items[0].gt_wav == str(tmp_path / "a1.wav")


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("My teacher will listen to the radio.", "My teacher."),
        ("In the afternoon, my sister took the train.", "In the."),
        ("Yesterday, the young woman waited.", "Yesterday."),
        ("Extraordinarily long first word.", None),
    ],
)
def test_short_phrase_is_the_longest_prefix_within_bounds(text, phrase):
    got = short_phrase(text, [3, 12])
    assert got == phrase
    assert got is None or (3 <= len(got) <= 12 and bucket_of(got) == "short")


def test_long_texts_join_consecutive_sentences_into_the_long_bucket():
    rows = [utt(f"u{k}", "x" * n) for k, n in enumerate([60, 70, 50, 300, 100, 30])]
    runs = long_texts(rows, [121, 225])
    assert [[r.id for r in run] for run in runs] == [["u0", "u1"], ["u4", "u5"]]  # u2 alone is short; u3 too long
    for run in runs:
        text = " ".join(r.text for r in run)
        assert 121 <= len(text) <= 225 and bucket_of(text) == "long"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")
def test_make_sets_writes_seed_tts_eval_layout(tmp_path, capsys):
    sentences = [
        "My teacher will listen to the radio at home tomorrow morning.",
        "The boys sold some old books in the village early this morning.",
        "The young woman walked the dog behind the school after dinner.",
        "There are many people today who literally do not have a close personal friend.",  # outside the grammar
    ]
    speaker = speakers_for("en", "en")[-1]  # a held-out corpus voice
    rows = []
    for k, text in enumerate(sentences):
        wave = speak(speaker, text, 16000)
        save_audio(tmp_path / "corpus" / f"{k}.wav", wave, 16000)
        uid = f"{speaker.id}_{'open' if k == 3 else ''}{k:05d}"
        rows.append(Utterance(uid, text, "en", speaker.id, f"{k}.wav", len(wave) / 16000, 16000, "test"))
    manifest = write_manifest(tmp_path / "corpus" / "manifest.jsonl", rows)
    out = tmp_path / "sets"
    main(["eval", "make-sets", "--manifest", str(manifest), "--out", str(out), "length_per_bucket=2", "markup_takes=2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["sets"] == {
        "cloning/en": 4,
        "open/en": 1,
        "continuation/en": 4,
        "length/en": 6,
        "markups/en": 4 * 16 * 2,  # two takes
    }
    (outside,) = read_meta_lst(out / "open" / "en" / "meta.lst")
    assert outside.target_text == sentences[3] and Path(outside.prompt_wav).is_file() and outside.prompt_text
    markups = read_meta_lst(out / "markups" / "en" / "meta.lst")
    assert {it.target_text for it in markups if it.id.endswith("__sad")} == {f"[sad] {t}" for t in sentences}
    assert all(it.gt_wav is None and Path(it.prompt_wav).is_file() for it in markups)
    assert sum("__take1__" in it.id for it in markups) == 4 * 16

    cloning = read_meta_lst(out / "cloning" / "en" / "meta.lst")
    assert [it.target_text for it in cloning] == sentences
    assert all(it.gt_wav == str(out / "cloning/en/wavs" / f"{it.id}.wav") for it in cloning)

    summary = json.loads((out / "sets.json").read_text())
    assert summary["sets"]["continuation/en"]["cut_by"] == {"word timing": 4, "estimate": 0}
    for it in read_meta_lst(out / "continuation" / "en" / "meta.lst"):
        original = next(r for r in rows if r.id == it.id)
        assert f"{it.prompt_text} {it.target_text}" == original.text
        prompt, target = load_audio(it.prompt_wav)[0], load_audio(it.gt_wav)[0]
        assert len(prompt) + len(target) == pytest.approx(original.duration * 16000, abs=1)

    length = read_meta_lst(out / "length" / "en" / "meta.lst")
    assert sorted(bucket_of(it.target_text) for it in length) == ["long"] * 2 + ["medium"] * 2 + ["short"] * 2
    assert summary["sets"]["length/en"]["table7"]["short"]["max_chars"] <= 12
    for it in length:  # the prompt never says (part of) the target
        assert it.prompt_text not in it.target_text and it.gt_wav and load_audio(it.gt_wav)[0].size


def test_continuation_item_of_another_corpus_estimates_the_cut_and_skips_bad_rows(tmp_path):
    from evals.sets import continuation_item
    from tests.evals.test_continuation import SR, bursts

    wave, starts = bursts([0.4, 0.4, 0.4, 0.4], [0.08, 0.08, 0.08])
    save_audio(tmp_path / "u.wav", wave, SR)
    row = Utterance("x_1", "aaaa bbbb cccc dddd", "en", "not-a-corpus-voice", "u.wav", len(wave) / SR, SR, "test")
    item, how = continuation_item(row, tmp_path, tmp_path / "set")
    assert how == "estimate" and (item.prompt_text, item.target_text) == ("aaaa bbbb", "cccc dddd")
    assert starts[2] - 0.08 < len(load_audio(item.prompt_wav)[0]) / SR < starts[2]
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    skipped, why = continuation_item(replace(row, wav="bad.wav"), tmp_path, tmp_path / "set")
    assert skipped is None and "unreadable audio" in why
    skipped, why = continuation_item(replace(row, text="aaaabbbb"), tmp_path, tmp_path / "set")
    assert skipped is None and "cannot bisect" in why
