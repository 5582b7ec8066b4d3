"""Sampling shared by GRPO rollouts and Serve: the code floor per character and the audio-only restriction (the
vLLM side runs in the slow rollout and Serve tests)."""

from __future__ import annotations

import pytest
import torch

from tts.base.layout import TokenLayout
from tts.speech_sampling import AudioOnly, hf_sampling, min_new_tokens, spoken_chars


def test_spoken_chars_skip_markup_tags_and_extra_spaces():
    assert spoken_chars("Hello there.") == 12
    assert spoken_chars("[happy] Hello  [laugh] there. [sigh]") == 12
    assert spoken_chars("[dancing] hi") == 12  # an unknown tag is read out (the API refuses it earlier)
    assert spoken_chars("[laugh]") == 0


def test_min_new_tokens_is_a_capped_ceiling():
    assert min_new_tokens("abc", 2.0, 100) == 6
    assert min_new_tokens("abcd", 1.1, 100) == 5  # ceil(4.4)
    assert min_new_tokens("x" * 100, 2.0, 60) == 60
    assert min_new_tokens("[laugh]", 2.0, 60) == min_new_tokens("abc", 0.0, 60) == 0
    with pytest.raises(ValueError, match="codes_per_char must be >= 0"):
        min_new_tokens("abc", -1.0, 10)


@pytest.fixture(scope="module")
def layout():
    return TokenLayout.plan(text_vocab_size=100, codebook_size=16)


def test_audio_only_leaves_codes_and_speech_end(layout):
    scores = torch.zeros(2, layout.vocab_size)
    out = AudioOnly(layout, layout.vocab_size)(None, scores)
    open_ids = torch.isfinite(out[0]).nonzero().flatten().tolist()
    assert open_ids == sorted(layout.speech_ids()) and len(open_ids) == 17


def test_hf_sampling_stops_at_speech_end_and_caps_the_floor(layout):
    kw = hf_sampling(
        layout,
        AudioOnly(layout, layout.vocab_size),
        temperature=0.7,
        top_p=0.9,
        top_k=0,
        repetition_penalty=1.0,
        max_new_tokens=50,
        min_new_tokens=80,
    )
    assert kw["eos_token_id"] == kw["pad_token_id"] == layout.speech_end_id
    assert kw["min_new_tokens"] == 50 and kw["top_k"] is None and kw["do_sample"]


def test_engine_kwargs_pin_raw_logprobs_and_the_settings():
    from tts.speech_sampling import EngineSettings, vllm_engine_kwargs

    kw = vllm_engine_kwargs("model-dir", EngineSettings(dtype="bfloat16", max_model_len=640), seed=3)
    assert kw["logprobs_mode"] == "raw_logprobs" and kw["model"] == "model-dir" and kw["seed"] == 3
    assert (kw["dtype"], kw["max_model_len"], kw["enforce_eager"]) == ("bfloat16", 640, True)
