"""Sampling shared by GRPO rollouts and Serve: the code floor per character and the audio-only restriction (the
vLLM side runs in the slow rollout and Serve tests)."""

from __future__ import annotations

import pytest
import torch

from tts.base.layout import TokenLayout
from tts.speech_sampling import (
    AudioOnly,
    SamplingSettings,
    WordSync,
    WordSyncBatch,
    hf_sampling,
    min_new_tokens,
    spoken_chars,
)


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


def test_word_synchronous_sampling_takes_no_floor(layout):
    """The engine writes every word: a floor would only hold back the end forced after the last one."""
    from tts.speech_sampling import vllm_sampling

    settings = {"temperature": 0.7, "top_p": 0.9, "top_k": 0, "repetition_penalty": 1.0}
    sync = WordSyncBatch.of(layout, [[5], [6]], layout.vocab_size, "cpu", 1, 3, max_codes=2)
    kw = hf_sampling(layout, None, **settings, max_new_tokens=50, min_new_tokens=30, word_sync=sync)
    assert kw["min_new_tokens"] == 0 and kw["logits_processor"][0] is sync
    words = vllm_sampling(
        layout, **settings, max_tokens=50, min_tokens=30, words=[[5], [6]], max_codes_per_word=2, max_codes_per_sound=3
    )
    plain = vllm_sampling(layout, **settings, max_tokens=50, min_tokens=30)
    assert (words.min_tokens, plain.min_tokens) == (0, 30) and words.extra_args["words"] == [[5], [6]]
    assert (words.extra_args["max_codes_per_word"], words.extra_args["max_codes_per_sound"]) == (2, 3)


def test_engine_kwargs_pin_raw_logprobs_and_the_settings():
    from tts.speech_sampling import EngineSettings, vllm_engine_kwargs

    kw = vllm_engine_kwargs("model-dir", EngineSettings(dtype="bfloat16", max_model_len=640), seed=3)
    assert kw["logprobs_mode"] == "raw_logprobs" and kw["model"] == "model-dir" and kw["seed"] == 3
    assert (kw["dtype"], kw["max_model_len"], kw["enforce_eager"]) == ("bfloat16", 640, True)


def test_word_sync_forces_each_word_after_the_model_starts_it():
    lay = TokenLayout.plan(100, 8)  # audio 129..136, speech_end 101
    sync = WordSync(lay, [[5, 6], [7, 8, 9], [10]], vocab_size=140)
    logits = torch.arange(140, dtype=torch.float32)

    def allowed(generated):
        out = sync(generated, logits.clone())
        return sorted(torch.nonzero(torch.isfinite(out)).flatten().tolist())

    audio = list(range(129, 137))
    assert allowed([]) == [7, *audio]  # audio, or start word 1 (not speech_end: words are left)
    assert allowed([130]) == [7, *audio]
    assert allowed([130, 7]) == [8]  # the model started word 1: the engine writes the rest of it
    assert allowed([130, 7, 8]) == [9]
    assert allowed([130, 7, 8, 9]) == [10, *audio]
    assert allowed([130, 7, 8, 9, 131, 10]) == [101, *audio]  # every word written: audio or speech_end
    assert sync([130, 7, 8, 9, 131, 10, 132], logits.clone())[132] == 132.0  # kept logits are the model's own
    with pytest.raises(ValueError, match="at least one word"):
        WordSync(lay, [], vocab_size=140)


def test_word_sync_batch_runs_one_state_machine_per_row():
    lay = TokenLayout.plan(100, 8)
    rows = WordSyncBatch([WordSync(lay, [[5], [7]], 140), WordSync(lay, [[5], [7]], 140)], prompt_len=2)
    ids = torch.tensor([[1, 5, 130], [1, 5, 7]])
    out = rows(ids, torch.zeros(2, 140))
    assert torch.isfinite(out[0]).sum() == 9 and torch.isfinite(out[0, 7])  # 8 audio + word 1
    assert torch.isfinite(out[1]).sum() == 9 and torch.isfinite(out[1, 101])  # word 1 written: audio or end


def test_word_sync_forced_marks_the_tokens_the_engine_wrote():
    lay = TokenLayout.plan(100, 8)
    sync = WordSync(lay, [[5], [7, 8, 9], [10, 11]], vocab_size=140)
    completion = [7, 8, 9, 130, 131, 10, 11, 132, 101]  # word 1 started at once, word 2 after two codes
    assert sync.forced(completion) == [False, True, True, False, False, False, True, False, False]
    assert sync.forced([]) == [] and sync.seen == 0  # a replay leaves the live state alone
    # word 0's codes and its end (word 1's first token) are word 0's; word 1's rest is forced, then its codes
    assert sync.word_of(completion) == [0, 1, 1, 1, 1, 1, 2, 2, 2]
    assert sync.code_starts(completion) == [None, 0, 2]  # word 0 no code; word 1 from code 0; word 2 from 2


def test_word_sync_moves_on_after_max_codes_of_one_word():
    lay = TokenLayout.plan(100, 8)
    sync = WordSync(lay, [[5], [7, 8], [10]], vocab_size=140, max_codes=2)
    logits = torch.zeros(140)

    def allowed(generated):
        return torch.nonzero(torch.isfinite(sync(generated, logits.clone()))).flatten().tolist()

    assert len(allowed([130])) == 9  # one code of word 0: audio or word 1
    assert allowed([130, 131]) == [7]  # two: word 1 is forced
    assert allowed([130, 131, 7, 8, 132]) != [10] and allowed([130, 131, 7, 8, 132, 133]) == [10]
    assert allowed([130, 131, 7, 8, 132, 133, 10, 134, 135]) == [101]  # the last word's limit ends the speech
    # the learner sees those forced choices as the engine's, not the policy's
    completion = [130, 131, 7, 8, 132, 133, 10, 134, 135, 101]
    assert sync.forced(completion) == [False, False, True, True, False, False, True, False, False, True]
    with pytest.raises(ValueError, match="max_codes_per_word must be >= 0"):
        SamplingSettings(max_codes_per_word=-1)
    with pytest.raises(ValueError, match="max_codes_per_sound must be >= 0"):
        SamplingSettings(max_codes_per_sound=-1)


def test_a_non_verbal_tag_has_its_own_code_limit():
    """A written [cry] or [yawn] lasts 1-1.6 s in the markup corpus, longer than the 0.8 s a spoken word may: the
    word limit would cut every such sound short (and end the speech) where it is the last word."""
    lay = TokenLayout.plan(100, 8)
    cry, sad = lay.tag_id("[cry]"), lay.tag_id("[sad]")
    space = 9  # a tag after the first word is tokenised with its leading space: [space, tag]
    sync = WordSync(lay, [[sad], [5], [space, cry]], vocab_size=140, max_codes=2, max_sound_codes=4)
    logits = torch.zeros(140)

    def allowed(generated):
        return torch.nonzero(torch.isfinite(sync(generated, logits.clone()))).flatten().tolist()

    assert allowed([130, 131]) == [5]  # a style tag is not a sound: the word limit
    assert allowed([130, 131, 5, 132, 133]) == [space]
    assert len(allowed([130, 131, 5, 132, 133, space, cry, 134, 135])) == 9  # two codes of the sound: audio or end
    assert allowed([130, 131, 5, 132, 133, space, cry, 134, 135, 136, 129]) == [101]  # its own limit ends speech
    same = WordSync(lay, [[5], [space, cry]], vocab_size=140, max_codes=2)  # no sound limit given: the word limit
    assert torch.isfinite(same([130, 131, space, cry, 132, 133], logits.clone())).sum() == 1
    endless = WordSync(lay, [[5], [space, cry]], vocab_size=140, max_codes=2, max_sound_codes=0)  # 0: no limit
    assert torch.isfinite(endless([space, cry, 130, 131, 132], logits.clone())).sum() == 9


def test_the_embedded_tokenizers_non_verbal_words_get_the_sound_limit():
    """On the real word list (the front end, then each word tokenised with its leading space)."""
    from transformers import AutoTokenizer

    from tts.prompts import encode_words
    from tts.speechlm import _ROOT, EMBEDDED_SPEECHLM

    tokenizer, lay = (
        AutoTokenizer.from_pretrained(_ROOT / EMBEDDED_SPEECHLM),
        TokenLayout.load(_ROOT / EMBEDDED_SPEECHLM),
    )
    words = encode_words(tokenizer, lay, "[sad] Go home. [cry] [laugh] Then sleep. [yawn]")
    sync = WordSync(lay, words, lay.vocab_size, max_codes=40, max_sound_codes=100)
    assert [w[-1] for w, most in zip(words, sync.max_codes) if most == 100] == [
        lay.tag_id(t) for t in ("[cry]", "[laugh]", "[yawn]")
    ]
    assert sync.max_codes.count(40) == len(words) - 3  # the words and the style tag
