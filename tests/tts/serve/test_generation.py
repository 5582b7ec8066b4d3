"""The generation deployment's transformers engine, used directly (no Ray): streamed codes, seeds, LoRA voices."""

from __future__ import annotations

import asyncio

import pytest

from tests.tts.serve.tiny_app import tiny_config
from tts.prompts import encode_text, inference
from tts.serve.config import VoiceSpec
from tts.serve.generation import Sampling, SpeechLMGeneration


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tts.lora import LoraSettings, add_lora, save_adapter
    from tts.speechlm import load_speechlm

    tmp = tmp_path_factory.mktemp("gen")
    cfg = tiny_config(tmp)
    model, tokenizer, layout = load_speechlm(cfg.model)
    lora = add_lora(model, LoraSettings(rank=2, alpha=4, target_modules=["q_proj", "v_proj"]))
    for name, p in lora.named_parameters():  # a non-zero adapter, so the LoRA voice differs from the base
        if "lora_B" in name:
            p.data.fill_(0.5)
    save_adapter(lora, tmp / "anna")
    cfg.voices = [VoiceSpec(name="anna", lora=str(tmp / "anna"))]
    prompt = inference(layout, encode_text(tokenizer, "hello there")).input_ids
    return SpeechLMGeneration(cfg, cfg.model), prompt


def run(gen: SpeechLMGeneration, prompt: list[int], seed: int, voice: str | None = None, n: int = 20) -> list:
    async def collect():
        return [c async for codes in gen.generate(prompt, Sampling(1.0, 1.0, n, seed), voice) for c in codes]

    return asyncio.run(collect())


def test_streams_codes_reproducibly_per_seed(setup):
    gen, prompt = setup
    a, b, c = run(gen, prompt, 1), run(gen, prompt, 1), run(gen, prompt, 2)
    assert 0 < len(a) <= 20 and all(0 <= x < 64 for x in a)
    assert a == b and a != c


def test_lora_voice_uses_its_adapter(setup):
    gen, prompt = setup
    assert gen.info()["voices"] == ["anna"]
    assert run(gen, prompt, 1, "anna") != run(gen, prompt, 1)
    with pytest.raises(ValueError, match="no LoRA voice"):
        run(gen, prompt, 1, "bob")
