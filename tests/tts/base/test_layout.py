"""Token layout: sizes, tokenizer/model expansion, Hewitt init, id<->code mapping, Llasa detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from tts.base.layout import (
    LLASA_SPECIALS,
    MARKUP_TAGS,
    NONVERBAL_TAGS,
    SPECIAL_TOKENS,
    STYLE_TAGS,
    TokenLayout,
    audio_token,
    expand,
    from_tokenizer,
)

LLAMA3_TEXT = 128256


def word_tokenizer(n: int) -> PreTrainedTokenizerFast:
    """WordLevel tokenizer with ids 0..n-1 ('<unk>', 'w1', ... ), whitespace split."""
    vocab = {"<unk>": 0, **{f"w{i}": i for i in range(1, n)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def tiny_llama(vocab: int, hidden: int = 16, tied: bool = False, seed: int = 0) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # anisotropic, off-centre rows so mean/cov checks are not trivially N(0, s^2 I)
        w = model.get_input_embeddings().weight
        w.copy_(torch.randn_like(w) @ torch.randn(hidden, hidden) * 0.3 + torch.linspace(-1, 1, hidden))
        if not tied:
            h = model.get_output_embeddings().weight
            h.copy_(torch.randn_like(h) * 0.05 + 0.2)
    return model


# -- sizes ---------------------------------------------------------------------------------------


def test_tags_and_specials():
    assert MARKUP_TAGS == STYLE_TAGS + NONVERBAL_TAGS and len(MARKUP_TAGS) == 15
    assert STYLE_TAGS[0] == "[angry]" and NONVERBAL_TAGS[-1] == "[yawn]"
    assert len(SPECIAL_TOKENS) == len(set(SPECIAL_TOKENS)) == 29
    assert SPECIAL_TOKENS[:4] == ("<|speech_start|>", "<|speech_end|>", "<|text_start|>", "<|text_end|>")


def test_plan_llama3_is_193856():
    lay = TokenLayout.plan(LLAMA3_TEXT)
    assert lay.vocab_size == 193856 and lay.vocab_size % 32 == 0
    assert lay.audio_offset == LLAMA3_TEXT + 29 and lay.codebook_size == 65536
    assert lay.speech_start_id == LLAMA3_TEXT and lay.tag_id("[angry]") == LLAMA3_TEXT + 7


@pytest.mark.parametrize("text,cb", [(100, 1000), (50257, 65536), (151665, 4096), (7, 1)])
def test_plan_pads_to_multiple_of_32(text, cb):
    lay = TokenLayout.plan(text, cb)
    assert lay.vocab_size % 32 == 0 and 0 <= lay.vocab_size - (text + 29 + cb) < 64


# -- expansion -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tied", [False, True])
def test_expand_tiny_llama(tied):
    tok, model = word_tokenizer(300), tiny_llama(300, tied=tied)
    old_in = model.get_input_embeddings().weight[:300].clone()
    old_out = model.get_output_embeddings().weight[:300].clone()
    lay = expand(model, tok, codebook_size=1000)

    assert lay == TokenLayout.plan(300, 1000) == from_tokenizer(tok)
    assert len(tok) == lay.vocab_size == model.config.vocab_size == 1344
    assert model.get_input_embeddings().weight.shape == (1344, 16)
    assert model.get_output_embeddings().weight.shape == (1344, 16)
    assert torch.equal(model.get_input_embeddings().weight[:300], old_in)  # text rows untouched
    assert torch.equal(model.get_output_embeddings().weight[:300], old_out)
    tied_now = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied_now == tied
    # ids are sequential, in the documented order
    ids = tok.convert_tokens_to_ids(list(SPECIAL_TOKENS) + [audio_token(c) for c in range(1000)])
    assert ids == list(range(300, 300 + 29 + 1000))
    assert tok.convert_tokens_to_ids("<|pad_0|>") == 1329 and tok.convert_ids_to_tokens(1343) == "<|pad_14|>"
    # the tokenizer keeps markup and audio tokens whole inside text
    enc = tok.encode("w5 [sad] w7 <|s_3|><|s_999|>", add_special_tokens=False)
    assert enc == [5, lay.tag_id("[sad]"), 7, lay.audio_offset + 3, lay.audio_offset + 999]
    logits = model(torch.tensor([enc])).logits
    assert logits.shape == (1, 5, 1344) and torch.isfinite(logits).all()


def test_expand_refuses_expanded_tokenizer():
    tok, model = word_tokenizer(50), tiny_llama(50)
    expand(model, tok, codebook_size=16)
    with pytest.raises(ValueError, match="already contains"):
        expand(model, tok, codebook_size=16)


def test_expand_is_deterministic():
    rows = []
    for _ in range(2):
        model = tiny_llama(64)
        expand(model, word_tokenizer(64), codebook_size=100, seed=3)
        rows.append((model.get_input_embeddings().weight[64:].clone(), model.lm_head.weight[64:].clone()))
    assert torch.equal(rows[0][0], rows[1][0]) and torch.equal(rows[0][1], rows[1][1])
    model = tiny_llama(64)
    expand(model, word_tokenizer(64), codebook_size=100, seed=4)
    assert not torch.equal(model.get_input_embeddings().weight[64:], rows[0][0])


def _matches_stats(old: torch.Tensor, new: torch.Tensor, tol: float = 0.05) -> bool:
    """True if new rows have old rows' mean (in per-dim std units) and covariance (relative Frobenius)."""
    old, new = old.double(), new.double()
    m_old, c_old = old.mean(0), torch.cov(old.T, correction=0)
    m_new, c_new = new.mean(0), torch.cov(new.T, correction=0)
    mean_ok = ((m_new - m_old).abs() / c_old.diagonal().sqrt()).max() < tol
    cov_ok = (c_new - c_old).norm() / c_old.norm() < tol
    return bool(mean_ok and cov_ok)


def test_new_rows_follow_old_mean_and_cov():
    """Hewitt init: 20k new rows ~ N(mean, cov) of the text rows, for both embedding and untied head."""
    n_text, hidden = 2000, 16
    model = tiny_llama(n_text, hidden=hidden)
    expand(model, word_tokenizer(n_text), codebook_size=20000)
    for w in (model.get_input_embeddings().weight.detach(), model.lm_head.weight.detach()):
        old, new = w[:n_text], w[n_text:]
        assert _matches_stats(old, new)
        # the check has teeth: zeros, N(0, 1) and mean-only rows (transformers' 1e-9 * cov) all fail it
        assert not _matches_stats(old, torch.zeros_like(new))
        assert not _matches_stats(old, torch.randn_like(new))
        assert not _matches_stats(old, old.mean(0).expand_as(new) + 1e-5 * torch.randn_like(new))
    # embedding and untied lm_head are drawn from their own statistics
    head_old, emb_new = model.lm_head.weight[:n_text].detach(), model.get_input_embeddings().weight[n_text:]
    assert not _matches_stats(head_old, emb_new.detach())


def test_expand_llama3_sized_vocab_reaches_193856():
    tok, model = word_tokenizer(LLAMA3_TEXT), tiny_llama(LLAMA3_TEXT, hidden=8)
    lay = expand(model, tok)
    assert lay.vocab_size == len(tok) == model.config.vocab_size == 193856
    assert model.get_input_embeddings().weight.shape[0] == model.lm_head.weight.shape[0] == 193856
    assert tok.convert_tokens_to_ids(["<|s_0|>", "<|s_65535|>"]) == [128285, 193820]
    assert from_tokenizer(tok) == lay == TokenLayout.plan(LLAMA3_TEXT)


# -- ids <-> codes ---------------------------------------------------------------------------------


LAY = TokenLayout.plan(1000, 64)


def test_codes_roundtrip_numpy_and_torch():
    codes = np.array([[0, 5], [63, 17]])
    ids = LAY.codes_to_ids(codes)
    assert isinstance(ids, np.ndarray) and ids.tolist() == [[1029, 1034], [1092, 1046]]
    assert np.array_equal(LAY.ids_to_codes(ids), codes)
    t = torch.tensor([3, 0, 63], dtype=torch.int32)
    tid = LAY.codes_to_ids(t)
    assert isinstance(tid, torch.Tensor) and tid.tolist() == [1032, 1029, 1092]
    assert torch.equal(LAY.ids_to_codes(tid), t.long())
    assert LAY.codes_to_ids([1, 2]) == [1030, 1031] and LAY.codes_to_ids(7) == 1036


def test_is_audio_mask():
    ids = np.array([0, 1028, 1029, 1092, 1093])
    assert LAY.is_audio(ids).tolist() == [False, False, True, True, False]
    assert LAY.is_audio(torch.tensor(ids)).tolist() == [False, False, True, True, False]


def test_ids_to_codes_rejects_non_audio():
    with pytest.raises(ValueError, match="id 1000 is not an audio token"):
        LAY.ids_to_codes(np.array([1029, 1000, 5]))
    with pytest.raises(ValueError, match="id 1093"):
        LAY.ids_to_codes(torch.tensor([1093]))
    with pytest.raises(ValueError, match="out of range"):
        LAY.codes_to_ids([0, 64])
    with pytest.raises(ValueError, match="out of range"):
        LAY.codes_to_ids(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integers"):
        LAY.codes_to_ids(np.array([1.0]))


def test_tag_ids():
    assert [LAY.tag_id(t) for t in MARKUP_TAGS] == list(range(1007, 1022))
    with pytest.raises(KeyError, match="unknown markup tag"):
        LAY.tag_id("[shout]")


def test_save_load(tmp_path):
    path = LAY.save(tmp_path / "ckpt")
    assert path.name == "layout.json"
    assert TokenLayout.load(tmp_path / "ckpt") == LAY
    assert TokenLayout.from_json(LAY.to_json()) == LAY


# -- Llasa -----------------------------------------------------------------------------------------


def llasa_tokenizer(codebook: int, shuffle: bool = False) -> PreTrainedTokenizerFast:
    tok = word_tokenizer(LLAMA3_TEXT)
    audio = [audio_token(c) for c in range(codebook)]
    if shuffle:  # a broken vocab: two audio tokens swapped
        audio[3], audio[4] = audio[4], audio[3]
    tok.add_tokens(list(LLASA_SPECIALS), special_tokens=True)
    tok.add_tokens(audio)
    return tok


def test_llasa_layout_small_codebook():
    lay = from_tokenizer(llasa_tokenizer(100))
    assert lay.kind == "llasa" and lay.audio_offset == 128264 and lay.codebook_size == 100
    assert lay.text_vocab_size == LLAMA3_TEXT and lay.vocab_size == 128364
    assert lay.text_start_id == 128258 and lay.text_end_id == 128259
    assert lay.speech_start_id == 128260 and lay.speech_end_id == 128261
    assert lay.special_ids["text_generation_start"] == 128256
    with pytest.raises(KeyError, match="no markup tag"):
        lay.tag_id("[sad]")


def test_llasa_layout_full_codebook():
    lay = from_tokenizer(llasa_tokenizer(65536))
    assert (lay.audio_offset, lay.codebook_size, lay.vocab_size) == (128264, 65536, 193800)
    assert lay.ids_to_codes(np.array([128264, 193799])).tolist() == [0, 65535]


def test_llasa_nonconsecutive_raises():
    with pytest.raises(ValueError, match="not consecutive"):
        from_tokenizer(llasa_tokenizer(10, shuffle=True))


def test_unknown_vocab_raises():
    with pytest.raises(ValueError, match="SPEECH_GENERATION_START"):
        from_tokenizer(word_tokenizer(20))
