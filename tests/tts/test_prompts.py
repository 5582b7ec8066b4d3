"""Prompt builders: exact token order and label masks, checked against hand-written lists."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tts import prompts
from tts.base.layout import TokenLayout
from tts.prompts import IGNORE as X

# text 0..99, specials 100..128 (speech_start 100, speech_end 101, text_start 102, text_end 103),
# audio 129..136 for codes 0..7
LAY = TokenLayout.plan(100, 8)
SS, SE, TS, TE = 100, 101, 102, 103


def test_layout_constants():
    assert (LAY.speech_start_id, LAY.speech_end_id, LAY.text_start_id, LAY.text_end_id) == (SS, SE, TS, TE)
    assert LAY.audio_offset == 129


def test_tts():
    p = prompts.tts(LAY, [5, 6], [0, 7, 2])
    assert p.input_ids == [TS, 5, 6, TE, SS, 129, 136, 131, SE]
    assert p.labels == [X, X, X, X, X, 129, 136, 131, SE]


def test_tts_accepts_numpy_and_torch_codes():
    ref = prompts.tts(LAY, [5], [1, 2])
    assert prompts.tts(LAY, [5], np.array([1, 2], dtype=np.int16)) == ref
    assert prompts.tts(LAY, [5], torch.tensor([1, 2])) == ref


def test_tts_markup_tag_in_text():
    p = prompts.tts(LAY, [LAY.tag_id("[whispering]"), 9], [3])
    assert p.input_ids == [TS, 114, 9, TE, SS, 132, SE]
    assert p.labels == [X, X, X, X, X, 132, SE]


def test_clone():
    p = prompts.clone(LAY, [1, 2], [3], [4, 5], [6, 0])
    assert p.input_ids == [TS, 1, 2, 3, TE, SS, 133, 134, 135, 129, SE]
    assert p.labels == [X, X, X, X, X, X, X, X, 135, 129, SE]


def test_pretrain_speech():
    p = prompts.pretrain_speech(LAY, [2, 2, 7])
    assert p.input_ids == [SS, 131, 131, 136, SE]
    assert p.labels == [X, 131, 131, 136, SE]


def test_pretrain_text():
    p = prompts.pretrain_text([7, 8, 9])
    assert p.input_ids == [7, 8, 9] and p.labels == [7, 8, 9]
    with pytest.raises(ValueError, match="empty"):
        prompts.pretrain_text([])


def test_inference():
    p = prompts.inference(LAY, [5, 6])
    assert p.input_ids == [TS, 5, 6, TE, SS] and p.labels == [X] * 5
    p = prompts.inference(LAY, [5], ref_text_ids=[1], ref_codes=[0, 1])
    assert p.input_ids == [TS, 1, 5, TE, SS, 129, 130] and p.labels == [X] * 7
    # the inference prompt is a prefix of the matching training example
    train = prompts.clone(LAY, [1], [5], [0, 1], [3])
    assert train.input_ids[: len(p)] == p.input_ids
    with pytest.raises(ValueError, match="both"):
        prompts.inference(LAY, [5], ref_text_ids=[1])


@pytest.mark.parametrize("codes", [[8], [-1], [0, 99]])
def test_code_range_checked(codes):
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        prompts.tts(LAY, [1], codes)


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        prompts.tts(LAY, [1], [])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        prompts.pretrain_speech(LAY, np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        prompts.tts(LAY, [1], np.array([1.5]))
    with pytest.raises(ValueError, match="text is empty"):
        prompts.tts(LAY, [], [1])
    with pytest.raises(ValueError, match="target text is empty"):
        prompts.clone(LAY, [1], [], [1], [1])
    with pytest.raises(ValueError, match="not a text/special token"):
        prompts.tts(LAY, [1, 130], [1])  # an audio id smuggled into text


def _tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(vocab={"<unk>": 0, "hello": 1, "world": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<unk>")


def test_encode_text():
    tok, layout = _tokenizer(), TokenLayout.plan(3, 8)
    assert prompts.encode_text(tok, layout, "  hello world ") == [1, 2]
    assert prompts.encode_texts(tok, layout, ["hello", "world hello"]) == [[1], [2, 1]]
    for bad in ["", "   ", "\n\t"]:
        with pytest.raises(ValueError, match="non-empty"):
            prompts.encode_text(tok, layout, bad)


WORDS_LAY = dataclasses.replace(LAY, interleave="words")


def test_word_synchronous_tts_interleaves_words_and_labels_only_where_each_starts():
    # words [5, 6] [7] [8, 9]; codes 0..5 with words starting at frames 0, 2, 5
    p = prompts.words_tts(WORDS_LAY, [[5, 6], [7], [8, 9]], [0, 1, 2, 3, 4, 5], [0, 2, 5])
    a = [129 + c for c in range(6)]
    assert p.input_ids == [TS, 5, 6, 7, 8, 9, TE, SS, 5, 6, a[0], a[1], 7, a[2], a[3], a[4], 8, 9, a[5], SE]
    # word 0 is in the inference prompt; of a later word only its first token (where it starts) is learnt
    assert p.labels == [X] * 8 + [X, X, a[0], a[1], 7, a[2], a[3], a[4], 8, X, a[5], SE]


def test_word_synchronous_clone_and_start_frames_out_of_order_or_range():
    p = prompts.words_tts(WORDS_LAY, [[5], [7]], [0, 1, 2], [0, 9], ref_text_ids=[3], ref_codes=[4, 4])
    assert p.input_ids == [TS, 3, 5, 7, TE, SS, 133, 133, 5, 129, 130, 131, 7, SE]  # word 1 past the end: no audio
    assert p.labels == [X] * 9 + [129, 130, 131, 7, SE]
    q = prompts.words_tts(WORDS_LAY, [[5], [6], [7]], [0, 1, 2, 3], [0, 3, 1])  # a start before the previous one
    assert q.input_ids[6:] == [5, 129, 130, 131, 6, 7, 132, SE]
    with pytest.raises(ValueError, match="2 words but 1 start frames"):
        prompts.words_tts(WORDS_LAY, [[5], [7]], [0, 1], [0])
    with pytest.raises(ValueError, match="interleave='words'"):
        prompts.words_tts(LAY, [[5]], [0], [0])
    with pytest.raises(ValueError, match="both ref_text_ids and ref_codes"):
        prompts.words_tts(WORDS_LAY, [[5]], [0], [0], ref_text_ids=[3])


def test_word_synchronous_inference_prompt_ends_with_the_first_word():
    p = prompts.inference(WORDS_LAY, [5, 6, 7], [3], [4], first_word=[5, 6])
    assert p.input_ids == [TS, 3, 5, 6, 7, TE, SS, 133, 5, 6] and set(p.labels) == {X}
    with pytest.raises(ValueError, match="ends with its first word"):
        prompts.inference(WORDS_LAY, [5, 6, 7])
    with pytest.raises(ValueError, match="ends with its first word"):
        prompts.inference(LAY, [5], first_word=[5])


def test_encode_words_tokenizes_each_word_after_the_front_end():
    tok, layout = _tokenizer(), TokenLayout.plan(3, 8)
    assert prompts.encode_words(tok, layout, "  hello world hello ") == [[1], [2], [1]]
    with pytest.raises(ValueError, match="non-empty"):
        prompts.encode_words(tok, layout, "  ")
