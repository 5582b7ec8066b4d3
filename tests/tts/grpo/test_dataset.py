"""GRPO prompt sets (tts/grpo/dataset.py) on a tiny espeak-ng corpus: references, step-seeded sampling, held-out
prompts from the test split and the voice-cloning token order of tts/prompts.py."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest
from transformers import AutoTokenizer

from evals.meta import EvalItem
from tts import prompts
from tts.base.layout import TokenLayout
from tts.base.manifest import read_manifest
from tts.grpo.config import DataConfig
from tts.grpo.dataset import ItemSet, PromptSet


@pytest.fixture(scope="module")
def tok(policy_dir):
    return AutoTokenizer.from_pretrained(policy_dir), TokenLayout.load(policy_dir)


def fake_codes(ps: PromptSet, layout: TokenLayout) -> dict[str, np.ndarray]:
    """Distinct codes per reference (the codec is not what these tests are about)."""
    return {rid: (np.arange(5 + k) * 7 + k) % layout.codebook_size for k, (rid, _) in enumerate(ps.references())}


def prompt_set(corpus, tok, split: str = "train", **kw) -> PromptSet:
    tokenizer, layout = tok
    ps = PromptSet(DataConfig(manifest=str(corpus), **kw), split, tokenizer, layout)
    ps.attach(fake_codes(ps, layout))
    return ps


def test_references_are_each_speakers_shortest_short_utterances(corpus, tok):
    ps = prompt_set(corpus, tok, refs_per_speaker=2, max_ref_seconds=4.0)
    rows = [r for r in read_manifest(corpus, split="train") if r.language == "en"]
    by_speaker = defaultdict(list)
    for r in rows:
        by_speaker[r.speaker].append(r)
    expected = {}
    for speaker, rs in by_speaker.items():
        short = sorted((r for r in rs if r.duration <= 4.0), key=lambda r: (r.duration, r.id))[:2]
        if short:
            expected[speaker] = [r.id for r in short]
    assert {s: [u.id for u in us] for s, us in ps.refs.items()} == expected
    # the threshold and the count both cut: some utterance is too long, some speaker has more than two short ones
    assert any(r.duration > 4.0 for r in rows)
    assert any(len([r for r in rs if r.duration <= 4.0]) > 2 for rs in by_speaker.values())
    assert {t.speaker for t in ps.targets} == set(expected) and all(t.language == "en" for t in ps.targets)
    for rid, wav in ps.references():
        assert wav.endswith(".wav") and (corpus.parent / [r.wav for r in rows if r.id == rid][0]).samefile(wav)


def test_prompt_is_the_voice_cloning_inference_prompt(corpus, tok):
    tokenizer, layout = tok
    ps = prompt_set(corpus, tok)
    for p in ps.for_step(0, 4, seed=0):
        target_id, ref_id = p.id.split("@")
        ref = next(u for us in ps.refs.values() for u in us if u.id == ref_id)
        target = next(t for t in ps.targets if t.id == target_id)
        assert ref.speaker == target.speaker and p.text == target.text and p.language == "en"
        codes = ps.codes[ref_id]
        text = tokenizer.encode(ref.text, add_special_tokens=False) + tokenizer.encode(
            target.text, add_special_tokens=False
        )
        expected = [
            layout.text_start_id,
            *text,
            layout.text_end_id,
            layout.speech_start_id,
            *layout.codes_to_ids(codes).tolist(),
        ]
        assert p.input_ids == expected
        assert (
            p.input_ids
            == prompts.inference(
                layout,
                prompts.encode_text(tokenizer, layout, target.text),
                prompts.encode_text(tokenizer, layout, ref.text),
                codes,
            ).input_ids
        )
        assert np.array_equal(p.ref.codes, codes) and p.ref.text == ref.text and p.ref.wav.endswith(ref.wav)


def test_for_step_is_a_function_of_seed_and_step(corpus, tok):
    ps, again = prompt_set(corpus, tok), prompt_set(corpus, tok)

    def ids(s, step, seed=0):
        return [p.id for p in s.for_step(step, 4, seed)]

    assert ids(ps, 3) == ids(ps, 3) == ids(again, 3)  # a fresh set (a resumed run) replays the same prompts
    assert [p.input_ids for p in ps.for_step(3, 4, 0)] == [p.input_ids for p in again.for_step(3, 4, 0)]
    assert len({tuple(ids(ps, step)) for step in range(5)}) == 5
    assert ids(ps, 3, seed=1) != ids(ps, 3)
    assert len(ps.for_step(0, 40, 0)) == 40  # more prompts than targets: drawn with replacement
    # resampling draws of a step: other prompts, again a function of (seed, step, draw); draw 0 is the step's own
    draw = [p.id for p in ps.for_step(3, 4, 0, draw=1)]
    assert draw == [p.id for p in again.for_step(3, 4, 0, draw=1)] and draw != ids(ps, 3)
    assert [p.id for p in ps.for_step(3, 4, 0, draw=0)] == ids(ps, 3)


def test_held_out_uses_only_the_test_split(corpus, tok):
    test_ids = {r.id for r in read_manifest(corpus, split="test") if r.language == "en"}
    ps = prompt_set(corpus, tok, split="test", max_ref_seconds=5.0)
    held = ps.held_out(10, seed=0)
    assert len(held) == len(test_ids) == 2  # count clipped to the split
    for p in held:
        target, ref = p.id.split("@")
        assert target in test_ids and ref in test_ids
    assert [p.id for p in held] == [p.id for p in ps.held_out(10, seed=0)]
    # a 4 s limit leaves only one held-out speaker with a reference
    assert len(prompt_set(corpus, tok, split="test", max_ref_seconds=4.0).held_out(10, seed=0)) == 1


def test_no_rows_in_the_languages_is_a_clear_error(corpus, tok):
    tokenizer, layout = tok
    with pytest.raises(ValueError, match=r"no train-split rows in languages \['fr'\]"):
        PromptSet(DataConfig(manifest=str(corpus), languages=["fr"]), "train", tokenizer, layout)
    with pytest.raises(ValueError, match="no test-split speaker has a reference"):
        PromptSet(DataConfig(manifest=str(corpus), max_ref_seconds=1.0), "test", tokenizer, layout)


def test_attach_with_missing_codes_raises(corpus, tok):
    tokenizer, layout = tok
    ps = PromptSet(DataConfig(manifest=str(corpus)), "train", tokenizer, layout)
    codes = fake_codes(ps, layout)
    dropped = sorted(codes)[0]
    del codes[dropped]
    with pytest.raises(ValueError, match=dropped):
        ps.attach(codes)
    assert ps.codes == {}


def items_of(corpus, n: int = 3) -> list[EvalItem]:
    """Benchmark rows over the corpus: clone a train utterance saying a test sentence (seed-tts-eval's shape)."""
    train = [r for r in read_manifest(corpus, split="train") if r.language == "en"][:n]
    test = [r for r in read_manifest(corpus, split="test") if r.language == "en"]
    root = corpus.parent
    return [
        EvalItem(f"u{k}", r.text, str(r.wav_path(root)), test[k % len(test)].text, "en") for k, r in enumerate(train)
    ]


def test_item_set_builds_the_cloning_prompt_of_each_benchmark_row(corpus, tok):
    tokenizer, layout = tok
    items = items_of(corpus) + [EvalItem("same-wav", "Other words.", items_of(corpus)[0].prompt_wav, "Hi there.", "en")]
    s = ItemSet("cloning/en", items, tokenizer, layout)
    assert s.references() == sorted({(it.prompt_wav, it.prompt_wav) for it in items}) and len(s.references()) == 3
    codes = {wav: (np.arange(4 + k) * 5 + k) % layout.codebook_size for k, (wav, _) in enumerate(s.references())}
    s.attach(codes, max_prompt_tokens=10_000)
    assert [p.id for p in s.prompts] == [f"cloning/en:{it.id}" for it in items] and s.skipped == []
    for p, it in zip(s.prompts, items):
        expected = prompts.inference(
            layout,
            prompts.encode_text(tokenizer, layout, it.target_text),
            prompts.encode_text(tokenizer, layout, it.prompt_text),
            codes[it.prompt_wav],
        ).input_ids
        assert p.input_ids == expected and p.text == it.target_text and p.language == "en"
        assert p.ref.wav == it.prompt_wav and p.ref.text == it.prompt_text  # SIM against the prompt audio
    # the row with the shared prompt audio: the same codes, its own prompt text
    assert np.array_equal(s.prompts[3].ref.codes, s.prompts[0].ref.codes) and s.prompts[3].ref.text == "Other words."


def test_item_set_leaves_out_prompts_without_room_and_fails_when_none_fits(corpus, tok):
    tokenizer, layout = tok
    items = items_of(corpus, 2)
    codes = {items[0].prompt_wav: np.zeros(3, np.int64), items[1].prompt_wav: np.zeros(400, np.int64)}
    s = ItemSet("length/en", items, tokenizer, layout)
    s.attach(codes, max_prompt_tokens=300)
    assert [p.id for p in s.prompts] == ["length/en:u0"] and [p.id for p in s.skipped] == ["length/en:u1"]
    with pytest.raises(ValueError, match=r"'length/en': every prompt is longer than 5 tokens"):
        s.attach(codes, max_prompt_tokens=5)
    with pytest.raises(ValueError, match="'empty' has no rows"):
        ItemSet("empty", [], tokenizer, layout)


def test_a_word_synchronous_policy_gets_its_words_and_a_prompt_ending_with_the_first(corpus, tok):
    tokenizer, layout = tok
    words_layout = dataclasses.replace(layout, interleave="words")
    ps = PromptSet(DataConfig(manifest=str(corpus)), "train", tokenizer, words_layout)
    ps.attach(fake_codes(ps, words_layout))
    p = ps.for_step(0, 1, seed=0)[0]
    assert p.words == prompts.encode_words(tokenizer, words_layout, p.text) and len(p.words) > 2
    flat = [t for w in p.words for t in w]
    expected = prompts.inference(
        words_layout, flat, prompts.encode_text(tokenizer, words_layout, p.ref.text), p.ref.codes, p.words[0]
    ).input_ids
    assert p.input_ids == expected and p.input_ids[-len(p.words[0]) :] == p.words[0]
    assert prompt_set(corpus, tok).for_step(0, 1, seed=0)[0].words is None  # the default layout: no words
