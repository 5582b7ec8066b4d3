"""Planning, packing, labels and rank sharding of training examples."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.tts.train.tiny_setup import write_corpus
from tts.prompts import IGNORE
from tts.speechlm import load_speechlm
from tts.train.data import (
    Corpus,
    Position,
    Stream,
    collate,
    held_out,
    materialize,
    pack,
    pretrain_examples,
    rank_batches,
    sft_examples,
)


@pytest.fixture(scope="module")
def lm(lm_dir):
    return load_speechlm(lm_dir)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, codec_dir, lm):
    root = write_corpus(tmp_path_factory.mktemp("corpus40"), codec_dir, rows=40, speakers=4, n_codes=(20, 130))
    return Corpus([root], lm[1], lm[2])


def segments(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    starts = [i for i, p in enumerate(position_ids.tolist()) if p == 0] + [len(position_ids)]
    return list(zip(starts, starts[1:]))


def test_pack_keeps_every_example_and_the_length_limit():
    lengths = np.random.default_rng(0).integers(1, 300, size=500).tolist()
    packs = pack(lengths, 512)
    assert sorted(i for p in packs for i in p) == list(range(500))
    assert all(sum(lengths[i] for i in p) <= 512 for p in packs)
    assert sum(lengths) / (512 * len(packs)) > 0.9  # first-fit fills the sequences
    with pytest.raises(ValueError, match="more than max_len 512"):
        pack([10, 513], 512)


def test_long_utterances_become_segments_of_at_most_max_codes(corpus):
    rows = np.arange(len(corpus))
    examples = pretrain_examples(corpus, rows, epoch=0, seed=0, max_codes=50, text_fraction=0.0, max_len=512)
    assert all(e.kind == "speech" and e.end - e.start <= 50 and e.length == e.end - e.start + 2 for e in examples)
    for row in rows:  # every code exactly once, in near-equal pieces
        pieces = sorted((e.start, e.end) for e in examples if e.row == row)
        assert pieces[0][0] == 0 and pieces[-1][1] == corpus.n_codes[row]
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
        assert max(b - a for a, b in pieces) - min(b - a for a, b in pieces) <= 1


def test_text_is_about_ten_percent_of_pretraining_examples(corpus):
    rows = np.arange(len(corpus))
    kinds = [e.kind for epoch in range(10) for e in pretrain_examples(corpus, rows, epoch, 0, 2000, 0.1, 512)]
    assert 0.08 < kinds.count("text") / len(kinds) < 0.12
    assert kinds.count("speech") == 10 * len(rows)


def test_pretraining_packs_label_audio_speech_end_and_text(corpus, lm):
    layout = lm[2]
    examples = pretrain_examples(corpus, np.arange(len(corpus)), 0, 0, 2000, 0.1, 512)
    packs = pack([e.length for e in examples], 512)
    assert sorted(i for p in packs for i in p) == list(range(len(examples)))  # no example lost
    for group in packs:
        planned = [examples[i] for i in group]
        batch = collate([[materialize(corpus, layout, e) for e in planned]], pad_id=0)
        ids, labels, pos = (batch.inputs[k][0] for k in ("input_ids", "labels", "position_ids"))
        assert len(ids) <= 512 and batch.tokens == len(ids)
        for ex, (a, b) in zip(planned, segments(pos)):
            assert labels[a] == IGNORE  # never predicted from the previous example
            seg_ids, seg_labels = ids[a:b], labels[a + 1 : b]
            if ex.kind == "speech":
                assert seg_ids[0] == layout.speech_start_id and seg_ids[-1] == layout.speech_end_id
                assert torch.equal(seg_labels, seg_ids[1:])
                assert (layout.is_audio(seg_labels[:-1])).all() and seg_labels[-1] == layout.speech_end_id
                assert torch.equal(
                    layout.ids_to_codes(seg_ids[1:-1]), torch.from_numpy(corpus.codes(ex.row)[ex.start : ex.end])
                )
            else:
                assert ex.kind == "text" and not layout.is_audio(seg_ids).any()
                assert torch.equal(seg_labels, seg_ids[1:]) and seg_ids[-1] == corpus.eos_id


def test_sft_labels_only_target_audio_and_speech_end(corpus, lm):
    layout = lm[2]
    examples = sft_examples(corpus, np.arange(len(corpus)), 0, 0, clone_fraction=0.5, max_len=512)
    kinds = [e.kind for e in examples]
    assert 0 < kinds.count("clone") < len(examples) and len(examples) == len(corpus)
    for ex in examples:
        p = materialize(corpus, layout, ex)
        target = layout.codes_to_ids(corpus.codes(ex.row)).tolist()
        assert [t for t in p.labels if t != IGNORE] == target + [layout.speech_end_id]
        assert p.input_ids[-len(target) - 1 :] == target + [layout.speech_end_id]
        if ex.kind == "clone":
            assert ex.ref != ex.row and corpus.speakers[ex.ref] == corpus.speakers[ex.row]
            ref = layout.codes_to_ids(corpus.codes(ex.ref)).tolist()
            assert p.input_ids[-len(target) - 1 - len(ref) : -len(target) - 1] == ref  # conditioning only


def test_sft_drops_rows_that_do_not_fit_and_clones_only_where_they_fit(corpus):
    rows = np.arange(len(corpus))
    tts_len = {int(r): len(corpus.text_ids[r]) + int(corpus.n_codes[r]) + 4 for r in rows}
    examples = sft_examples(corpus, rows, 0, 0, clone_fraction=1.0, max_len=120)
    fit = {r for r, n in tts_len.items() if n <= 120}
    assert {e.row for e in examples} == fit and 0 < len(fit) < len(rows)
    assert all(e.length <= 120 for e in examples)
    assert {e.kind for e in sft_examples(corpus, rows, 0, 0, clone_fraction=1.0, max_len=400)} == {"clone"}
    mixed = sft_examples(corpus, rows, 0, 0, clone_fraction=1.0, max_len=200)  # pairs too long fall back
    assert {e.kind for e in mixed} == {"tts", "clone"} and all(e.length <= 200 for e in mixed)
    assert len(mixed) == len(rows)


def test_cloning_references_are_untagged_where_the_speaker_has_untagged_speech(tmp_path, codec_dir, lm):
    # rows alternate "[sad] ..." / plain; 3 speakers, so each speaker has both; speaker "solo" only tagged rows
    root = write_corpus(tmp_path / "tags", codec_dir, rows=30, speakers=3, n_codes=(20, 40), tags=("[sad]", ""))
    corpus = Corpus([root], lm[1], lm[2])
    assert corpus.tagged.sum() == 15 and corpus.tagged[0] and not corpus.tagged[1]
    for k in np.flatnonzero(corpus.tagged)[:5]:  # one speaker with tagged rows only
        corpus.speakers[k] = "solo"
    rows = np.arange(len(corpus))
    examples = [e for epoch in range(4) for e in sft_examples(corpus, rows, epoch, 0, 1.0, 2048)]
    assert {e.kind for e in examples} == {"clone"} and len(examples) == 4 * len(corpus)
    for e in examples:
        assert e.ref != e.row and corpus.speakers[e.ref] == corpus.speakers[e.row]
        assert corpus.tagged[e.ref] == (corpus.speakers[e.row] == "solo")  # a tagged one only without a choice
    # every untagged peer serves as a reference, for tagged and untagged targets alike
    plain = {r for r in rows if not corpus.tagged[r]}
    styled = {e.ref for e in examples if corpus.tagged[e.row] and corpus.speakers[e.row] != "solo"}
    assert styled == plain == {e.ref for e in examples} - {0, 2, 4, 6, 8}


def test_loss_of_a_pack_is_the_loss_of_its_examples(corpus, lm):
    model, _, layout = lm
    examples = sft_examples(corpus, np.arange(6), 0, 0, clone_fraction=0.5, max_len=2048)
    prompts = [materialize(corpus, layout, e) for e in examples]
    with torch.no_grad():
        packed = collate([prompts], pad_id=0)
        loss = model(**packed.inputs, use_cache=False).loss.item() * packed.targets
        alone = 0.0
        for p in prompts:
            one = collate([[p]], pad_id=0)
            alone += model(**one.inputs, use_cache=False).loss.item() * one.targets
    assert loss == pytest.approx(alone, rel=1e-5)


def test_rank_batches_are_disjoint_and_complete():
    for n, world, bs in [(12, 2, 3), (13, 2, 3), (7, 3, 1)]:
        got = [rank_batches(n, r, world, bs) for r in range(world)]
        flat = [i for batches in got for b in batches for i in b]
        assert len(flat) == len(set(flat)) == n - n % (world * bs)
        assert set(flat) == set(range(len(flat))) and len({len(b) for b in got}) == 1


def test_two_rank_streams_cover_an_epoch_and_resume_from_a_position(corpus, lm):
    layout = lm[2]
    rows = np.arange(len(corpus))

    def plan(epoch):
        return pretrain_examples(corpus, rows, epoch, 0, 2000, 0.1, 256)

    ranks = [Stream(corpus, layout, plan, 256, 2, rank, 2, 0) for rank in range(2)]
    per_epoch = ranks[0].batches_in(0)
    seen = []
    for stream in ranks:
        it = stream(Position())
        for _ in range(per_epoch):
            _, batch = next(it)
            seen += [tuple(row[row != 0].tolist()) for row in batch.inputs["input_ids"]]
    assert len(seen) == len(set(seen)) == 2 * 2 * per_epoch >= len(ranks[0].packs(0)) - 3
    it = ranks[1](Position())
    stream = [next(it) for _ in range(per_epoch + 2)]  # into epoch 1
    pos, _ = stream[per_epoch - 1]
    assert pos == Position(0, per_epoch)
    resumed = ranks[1](stream[2][0])
    for position, batch in stream[3:]:
        again = next(resumed)
        assert again[0] == position and torch.equal(again[1].inputs["input_ids"], batch.inputs["input_ids"])


def test_held_out_split_is_stable(corpus):
    base = held_out(corpus, [], [], 0.25, seed=0)
    assert 0 < base.sum() < len(corpus) and np.array_equal(base, held_out(corpus, [], [], 0.25, seed=0))
    assert not np.array_equal(base, held_out(corpus, [], [], 0.25, seed=1))
    marked = held_out(corpus, ["spk1"], ["u000"], 0.0, seed=0)
    assert marked[0] and all(marked[i] == (corpus.speakers[i] == "spk1" or i == 0) for i in range(len(corpus)))


def test_word_synchronous_sft_cuts_each_row_at_its_words(tmp_path, codec_dir, lm):
    """A word-synchronous layout: the shards' phoneme timings give each word's start frame; every planned
    example builds to its planned length (materialize checks) with the row's codes in order after its words."""
    _, tokenizer, plain = lm
    layout = dataclasses.replace(plain, interleave="words")
    timed = write_corpus(tmp_path / "timed", codec_dir, rows=12, speakers=3, n_codes=(40, 80), timed=True)
    corpus = Corpus([timed], tokenizer, layout, frame_rate=50)
    assert corpus.usable().all()
    for k in range(len(corpus)):
        starts = corpus.starts[k]
        assert starts[0] == 0 and starts == sorted(starts) and starts[-1] < corpus.n_codes[k]
        assert len(starts) == len(corpus.words[k]) == len(corpus.meta[k]["text"].split())
    examples = sft_examples(corpus, np.arange(len(corpus)), 0, 0, clone_fraction=0.5, max_len=1024)
    assert {e.kind for e in examples} == {"tts", "clone"}
    for ex in examples:
        p = materialize(corpus, layout, ex)
        target = layout.codes_to_ids(corpus.codes(ex.row)).tolist()
        tail = p.input_ids[p.input_ids.index(layout.speech_start_id) + 1 :]
        if ex.kind == "clone":
            tail = tail[int(corpus.n_codes[ex.ref]) :]  # the reference's codes, plain
        assert tail[: len(corpus.words[ex.row][0])] == corpus.words[ex.row][0]  # the first word opens the speech
        assert [t for t in tail if layout.is_audio(t)] == target
    with pytest.raises(ValueError, match="needs the codec's frame_rate"):
        Corpus([timed], tokenizer, layout)
    untimed = write_corpus(tmp_path / "untimed", codec_dir, rows=4)
    with pytest.raises(ValueError, match="phoneme timings in the shards"):
        Corpus([untimed], tokenizer, layout, frame_rate=50)
