"""LoRA markup fine-tuning (tts/lora.py) on a tiny SpeechLM: parameter count, merge/unmerge, save/load, training."""

from __future__ import annotations

import pytest
import torch

from tests.tiny import TINY_LM
from tts.base.layout import MARKUP_TAGS
from tts.lora import LLAMA_QKVO_MLP, LoraSettings, add_lora, load_adapter, merge, save_adapter, unmerge
from tts.speechlm import create_tiny_speechlm, load_speechlm

TINY = TINY_LM


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm")
    create_tiny_speechlm(out, TINY, codebook_size=64)
    return out


@pytest.fixture
def base(lm_dir):
    model, _, layout = load_speechlm(lm_dir)
    return model.eval(), layout


def _batch(layout, seed=0):
    """Text, the 15 tag tokens and audio tokens, as a markup sample would mix them."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(10, layout.text_vocab_size, (2, 12), generator=g)
    tags = torch.tensor([[layout.tag_id(t) for t in MARKUP_TAGS]] * 2)
    audio = torch.randint(layout.audio_offset, layout.audio_offset + layout.codebook_size, (2, 20), generator=g)
    return torch.cat([text, tags, audio], dim=1)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _randomise_adapters(model, seed=1):
    """lora_B starts at zero (a no-op adapter); give it weights so merge checks compare something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def test_table6_defaults():
    s = LoraSettings()
    assert (s.rank, s.alpha, s.dropout, s.train_embeddings) == (16, 32, 0.2, False)
    assert s.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_trainable_parameter_count(base):
    model, layout = base
    c = model.config
    head = c.hidden_size // c.num_attention_heads
    shapes = {  # (in, out) of each target projection in one LLaMA layer
        "q_proj": (c.hidden_size, c.num_attention_heads * head),
        "k_proj": (c.hidden_size, c.num_key_value_heads * head),
        "v_proj": (c.hidden_size, c.num_key_value_heads * head),
        "o_proj": (c.num_attention_heads * head, c.hidden_size),
        "gate_proj": (c.hidden_size, c.intermediate_size),
        "up_proj": (c.hidden_size, c.intermediate_size),
        "down_proj": (c.intermediate_size, c.hidden_size),
    }
    expected = c.num_hidden_layers * sum(16 * (i + o) for i, o in shapes.values())
    assert expected == 16 * (128 + 96 + 96 + 128 + 192 + 192 + 192) == 16384
    peft_model = add_lora(model, LoraSettings(), layout)
    trainable = {n: p.numel() for n, p in peft_model.named_parameters() if p.requires_grad}
    assert sum(trainable.values()) == expected
    assert all("lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == set(LLAMA_QKVO_MLP)


def test_train_embeddings_adds_only_tag_rows(lm_dir):
    model, _, layout = load_speechlm(lm_dir)
    peft_model = add_lora(model, LoraSettings(train_embeddings=True), layout)
    extra = {n: p.numel() for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n}
    assert sum(extra.values()) == len(MARKUP_TAGS) * TINY.hidden_size  # 15 rows, shared by the tied lm_head
    with pytest.raises(ValueError, match="layout"):
        add_lora(load_speechlm(lm_dir)[0], LoraSettings(train_embeddings=True))


@pytest.mark.parametrize("train_embeddings", [False, True])
def test_merge_and_unmerge(lm_dir, train_embeddings):
    model, _, layout = load_speechlm(lm_dir)
    model.eval()
    ids = _batch(layout)
    base_out = _logits(model, ids)
    peft_model = add_lora(model, LoraSettings(train_embeddings=train_embeddings), layout).eval()
    _randomise_adapters(peft_model)
    lora_out = _logits(peft_model, ids)
    assert not torch.allclose(lora_out, base_out, atol=1e-3)
    merged = merge(peft_model)
    torch.testing.assert_close(_logits(merged, ids), lora_out, atol=1e-5, rtol=0)
    unmerge(peft_model)
    torch.testing.assert_close(_logits(peft_model, ids), lora_out, atol=1e-5, rtol=0)
    with peft_model.disable_adapter():
        torch.testing.assert_close(_logits(peft_model, ids), base_out, atol=1e-5, rtol=0)


def test_adapter_round_trip(lm_dir, tmp_path):
    model, _, layout = load_speechlm(lm_dir)
    peft_model = add_lora(model, LoraSettings(train_embeddings=True), layout).eval()
    _randomise_adapters(peft_model)
    ids = _batch(layout)
    expected = _logits(peft_model, ids)
    save_adapter(peft_model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()  # adapter only, not the base
    fresh, _, _ = load_speechlm(lm_dir)
    loaded = load_adapter(fresh, tmp_path / "adapter").eval()
    assert torch.equal(_logits(loaded, ids), expected)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_adapter(fresh, tmp_path)


def test_training_changes_only_adapters_and_tag_rows(lm_dir):
    model, _, layout = load_speechlm(lm_dir)
    torch.manual_seed(0)
    peft_model = add_lora(model, LoraSettings(train_embeddings=True), layout)
    frozen = {n: p.detach().clone() for n, p in peft_model.named_parameters() if not p.requires_grad}
    params = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in params.items()}
    embed_before = merge(peft_model).get_input_embeddings().weight.detach().clone()  # effective table
    unmerge(peft_model)
    ids = _batch(layout)
    optimiser = torch.optim.AdamW(params.values(), lr=1e-2)
    peft_model.train()
    losses = []
    for _ in range(8):
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1
    assert all(torch.equal(p, frozen[n]) for n, p in peft_model.named_parameters() if not p.requires_grad)
    assert all(not torch.equal(p, before[n]) for n, p in params.items())
    embed_after = merge(peft_model).get_input_embeddings().weight.detach()
    changed = (embed_after != embed_before).any(dim=1).nonzero().flatten().tolist()
    assert changed == sorted(layout.tag_id(t) for t in MARKUP_TAGS)
