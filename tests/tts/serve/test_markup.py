"""Markup tags in `input` reach the prompt as their special tokens; unknown tags and languages are refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tts.base.layout import MARKUP_TAGS, TokenLayout
from tts.prompts import encode_text, speech_request
from tts.serve.config import EMBEDDED_SPEECHLM, ServeConfig
from tts.serve.markup import check_markup, model_tags


@pytest.fixture(scope="module")
def embedded():
    """The embedded model's tokenizer and layout, its recorded tags cleared: every tag of its vocabulary usable."""
    from transformers import AutoTokenizer

    layout = replace(TokenLayout.load(EMBEDDED_SPEECHLM), learned_tags=None)
    return AutoTokenizer.from_pretrained(EMBEDDED_SPEECHLM), layout


def test_the_embedded_model_learned_no_tags_so_serve_refuses_them():
    """It was trained on untagged speech: its tag tokens are untrained embeddings, refused rather than rendered."""
    layout = TokenLayout.load(EMBEDDED_SPEECHLM)
    assert layout.learned_tags == [] and model_tags(layout) == []
    with pytest.raises(ValueError, match="this model has learned no markup tags"):
        check_markup(layout, "[happy] hi")


def test_every_tag_is_one_special_token_of_the_embedded_model(embedded):
    tokenizer, layout = embedded
    assert model_tags(layout) == list(MARKUP_TAGS)
    for tag in MARKUP_TAGS:
        assert encode_text(tokenizer, layout, f"{tag} hi")[0] == layout.tag_id(tag)


def test_tags_inside_input_land_in_the_prompt_text_block_in_order(embedded):
    tokenizer, layout = embedded
    text = "[happy] Hello there. [laugh] And now [whispering] quietly."
    assert check_markup(layout, text) == ["[happy]", "[laugh]", "[whispering]"]
    ids = speech_request(tokenizer, layout, text).input_ids
    block = ids[ids.index(layout.text_start_id) + 1 : ids.index(layout.text_end_id)]
    tags = [i for i in block if i in {layout.tag_id(t) for t in MARKUP_TAGS}]
    assert tags == [layout.tag_id("[happy]"), layout.tag_id("[laugh]"), layout.tag_id("[whispering]")]
    assert layout.speech_start_id in ids[ids.index(layout.text_end_id) :]


def test_unknown_tags_are_refused_with_the_list(embedded):
    _, layout = embedded
    with pytest.raises(ValueError, match=r"unknown markup tag \[dancing\]; supported tags: \[angry\]"):
        check_markup(layout, "hello [happy] [dancing]")
    assert check_markup(layout, "plain text, [1] and [Note] are not tags") == []


def test_a_model_without_tag_tokens_refuses_every_tag():
    llasa = TokenLayout("llasa", 100, 108, 16, 124, {"speech_start": 100, "speech_end": 101})
    assert model_tags(llasa) == []
    with pytest.raises(ValueError, match="this model has learned no markup tags"):
        check_markup(llasa, "[happy] hi")


def test_only_the_tags_a_fine_tune_taught_are_accepted(embedded):
    """A markups LoRA records the tags its data held (layout.learned_tags); the rest are refused, not rendered
    as untrained embeddings."""
    _, layout = embedded
    taught = replace(layout, learned_tags=["[sad]", "[whispering]"])
    assert model_tags(taught) == ["[sad]", "[whispering]"]
    assert check_markup(taught, "[sad] hi [whispering] there") == ["[sad]", "[whispering]"]
    with pytest.raises(ValueError, match=r"unknown markup tag \[happy\]; supported tags: \[sad\] \[whispering\]"):
        check_markup(taught, "[happy] hi")
    assert TokenLayout.from_json(taught.to_json()).learned_tags == ["[sad]", "[whispering]"]
    with pytest.raises(ValueError, match="learned no markup tags"):
        check_markup(replace(layout, learned_tags=[]), "[sad] hi")


@pytest.mark.parametrize("languages", [[], ["en", "xx"], ["english"]])
def test_config_languages_must_be_corpus_languages(languages):
    with pytest.raises(ValueError, match="languages must be"):
        ServeConfig(languages=languages)
    assert ServeConfig(languages=["en", "de"]).languages == ["en", "de"]
