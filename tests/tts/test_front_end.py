"""The text front end (tts/front_end.py): raw text or espeak-ng phonemes, recorded in the checkpoint and applied by
the one door `prompts.encode_text`; markup tags pass through; bad input is a clear error."""

from __future__ import annotations

import dataclasses

import pytest

from tts import prompts
from tts.base.layout import TokenLayout
from tts.front_end import FrontEnd
from tts.speechlm import TinySpeechLMConfig, create_tiny_speechlm, load_speechlm

PHONEMES = FrontEnd("phonemes", "en-us")


def test_phonemes_are_espeaks_and_tags_pass_through():
    assert FrontEnd().apply("Hello there.") == "Hello there."  # raw text: unchanged
    said = PHONEMES.apply_batch(["The old farm.", "[whispering] Come here [laugh] now."])
    assert said[0] == "ðɪ oʊld fɑːɹm"
    assert said[1].startswith("[whispering] ") and " [laugh] " in said[1] and "[" not in said[1].split("]")[-1]
    assert PHONEMES.apply("Come here") in said[1]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="found nothing to say in '!!!'"):
        PHONEMES.apply("!!!")
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        FrontEnd("phonemes", "xx-nowhere").apply("hello")
    with pytest.raises(ValueError, match="kind must be one of"):
        FrontEnd("graphemes")


def test_a_layout_without_a_record_reads_raw_text():
    assert FrontEnd.from_record(None) == FrontEnd()
    assert FrontEnd.from_record(PHONEMES.record()) == PHONEMES and FrontEnd().record() is None
    assert TokenLayout.from_json(TokenLayout.plan(8, 16).to_json()).front_end is None


SMALL = TinySpeechLMConfig(
    text_vocab_size=120, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
)


def test_a_phoneme_checkpoint_records_its_front_end_and_encode_text_applies_it(tmp_path):
    cfg = dataclasses.replace(SMALL, front_end=PHONEMES)
    create_tiny_speechlm(tmp_path, cfg, codebook_size=64)
    _, tokenizer, layout = load_speechlm(tmp_path)
    assert layout.front_end == {"kind": "phonemes", "language": "en-us"}
    ids = prompts.encode_text(tokenizer, layout, "The old farm.")
    assert tokenizer.decode(ids) == "ðɪ oʊld fɑːɹm"  # the tokenizer was trained on, and reads, phonemes
    raw = dataclasses.replace(layout, front_end=None)
    assert prompts.encode_text(tokenizer, raw, "The old farm.") != ids
    tagged = prompts.encode_text(tokenizer, layout, "[sad] The old farm.")
    assert tagged[0] == layout.tag_id("[sad]") and tokenizer.decode(tagged[1:]).strip() == "ðɪ oʊld fɑːɹm"
