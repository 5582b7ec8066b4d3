"""Samples at evaluation steps: prompts from held-out rows, generated ids -> codes -> wav + samples.jsonl."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.tts.train.tiny_setup import write_corpus
from tts.codec import load_codec
from tts.speech_sampling import SamplingSettings
from tts.speechlm import load_speechlm
from tts.train.data import Corpus
from tts.train.samples import FILE, audio_prefix, sample_prompts, synthesize


class ScriptedLM(torch.nn.Module):
    """Stands in for the SpeechLM: 'generates' fixed continuations, one per call."""

    def __init__(self, continuations: list[list[int]]):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.continuations = list(continuations)

    def generate(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        assert kwargs["max_new_tokens"] == 30 and kwargs["do_sample"] is False
        return torch.cat([input_ids, torch.tensor([self.continuations.pop(0)])], dim=1)


@pytest.fixture(scope="module")
def setup(lm_dir, tokens_dir, codec_dir):
    _, tokenizer, layout = load_speechlm(lm_dir)
    return Corpus([tokens_dir], tokenizer, layout), layout, load_codec(codec_dir)


def test_prompts_per_job(setup):
    corpus, layout, _ = setup
    rows = np.array([0, 3, 6])  # speaker spk0 (three speakers, round-robin)
    (cont,) = sample_prompts(corpus, layout, rows, "pretrain", 1, clone=False, frame_rate=50)
    assert cont.mode == "continue" and cont.input_ids[0] == layout.speech_start_id
    assert all(layout.is_audio(cont.input_ids[1:])) and len(cont.input_ids) - 1 <= corpus.n_codes[0] // 2
    sft = sample_prompts(corpus, layout, rows, "sft", 3, clone=True, frame_rate=50)
    assert [s.mode for s in sft] == ["tts", "clone", "tts"] and sft[1].ref == 0
    assert sft[0].input_ids[-1] == layout.speech_start_id and sft[1].input_ids[-1] != layout.speech_start_id


def test_audio_prefix_stops_at_speech_end_or_a_stray_token(setup):
    _, layout, _ = setup
    a = layout.codes_to_ids([1, 2, 3])
    assert audio_prefix(layout, a + [layout.speech_end_id, *a]) == ([1, 2, 3], "speech_end")
    assert audio_prefix(layout, a + [5]) == ([1, 2, 3], "non_audio_token")
    assert audio_prefix(layout, a) == ([1, 2, 3], "max_tokens")


def test_synthesize_writes_wavs_and_jsonl(setup, tmp_path):
    corpus, layout, codec = setup
    items = sample_prompts(corpus, layout, np.array([0, 3]), "sft", 2, clone=True, frame_rate=50)
    audio = layout.codes_to_ids(list(range(10)))
    model = ScriptedLM([audio + [layout.speech_end_id], [layout.text_start_id]])
    model.train()
    rows = synthesize(model, layout, codec, corpus, items, tmp_path, 7, 30, temperature=0.0, seed=0)
    assert model.training  # restored
    assert [(r["mode"], r["codes"], r["stop"]) for r in rows] == [
        ("tts", 10, "speech_end"),
        ("clone", 0, "non_audio_token"),
    ]
    assert rows[1]["wav"] is None and rows[1]["ref_id"] == corpus.meta[0]["id"]
    wave, sr = sf.read(tmp_path / rows[0]["wav"])
    assert sr == codec.sample_rate and len(wave) == 10 * codec.hop_length
    assert [json.loads(line) for line in (tmp_path / FILE).read_text().splitlines()] == rows


def test_word_synchronous_samples_are_spoken_word_by_word(tmp_path, lm_dir, codec_dir, monkeypatch):
    """A word-synchronous run's samples: the prompt ends with the first word, the engine writes the rest (the model
    only picks where each starts), and only the audio codes reach the codec."""
    _, tokenizer, plain = load_speechlm(lm_dir)
    layout = dataclasses.replace(plain, interleave="words")
    corpus = Corpus([write_corpus(tmp_path / "timed", codec_dir, rows=6, timed=True)], tokenizer, layout, 50)
    items = sample_prompts(corpus, layout, np.arange(6), "sft", 2, clone=True, frame_rate=50)
    assert [s.mode for s in items] == ["tts", "clone"]
    for item in items:
        words = corpus.words[item.row]
        assert item.words == words and item.input_ids[-len(words[0]) :] == words[0]
    model, _, _ = load_speechlm(lm_dir)
    monkeypatch.setattr(SamplingSettings, "max_codes_per_word", 3)  # the untrained model would babble on
    rows = synthesize(model, layout, load_codec(codec_dir), corpus, items, tmp_path, 3, 400, temperature=1.0, seed=0)
    for item, row in zip(items, rows):
        # every word written (the engine forces the next one after max_codes_per_word), then <|speech_end|>
        assert row["stop"] == "speech_end" and 0 < row["codes"] <= 3 * len(corpus.words[item.row])
        assert (tmp_path / row["wav"]).exists()
