"""The generation deployment: the transformers engine used directly (no Ray): streamed codes, seeds, the code
floor, LoRA voices; backend choice; and (slow) the vLLM engine serving the tiny app through Ray Serve."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil

import pytest

from tests.tts.serve.tiny_app import KEY, tiny_config
from tts.base.layout import TokenLayout
from tts.prompts import encode_text, inference, speech_request
from tts.serve import generation
from tts.serve.config import GenerationSettings, VoiceSpec
from tts.serve.generation import Sampling, SpeechLMGeneration, resolve_backend
from tts.speechlm import load_speechlm


@pytest.fixture(scope="module")
def setup(tiny):
    cfg = tiny_config(tiny)
    cfg.generation.backend = "hf"
    cfg.voices = [VoiceSpec(name="anna", lora=str(tiny / "lora"))]
    _, tokenizer, layout = load_speechlm(cfg.model)
    prompt = inference(layout, encode_text(tokenizer, layout, "hello there")).input_ids
    return SpeechLMGeneration(cfg, cfg.model), prompt


def run(gen: SpeechLMGeneration, prompt: list[int], seed: int, voice: str | None = None, n: int = 20, floor=0):
    async def collect():
        sampling = Sampling(1.0, 1.0, n, seed, min_tokens=floor)
        return [c async for codes in gen.generate(prompt, sampling, voice) for c in codes]

    return asyncio.run(collect())


def test_streams_codes_reproducibly_per_seed(setup):
    gen, prompt = setup
    a, b, c = run(gen, prompt, 1), run(gen, prompt, 1), run(gen, prompt, 2)
    assert 0 < len(a) <= 20 and all(0 <= x < 64 for x in a)
    assert a == b and a != c


def test_min_tokens_floor_keeps_the_model_speaking(setup):
    gen, prompt = setup
    lengths = {seed: len(run(gen, prompt, seed)) for seed in range(8)}
    early = [seed for seed, n in lengths.items() if n < 12]
    assert early, lengths  # the tiny policy stops early for some seeds: the floor has something to change
    assert all(len(run(gen, prompt, seed, floor=12)) >= 12 for seed in early)


def test_lora_voice_uses_its_adapter(setup):
    gen, prompt = setup
    assert gen.info() == {"backend": "hf", "voices": ["anna"]}
    assert run(gen, prompt, 1, "anna") != run(gen, prompt, 1)
    with pytest.raises(ValueError, match="no LoRA voice"):
        run(gen, prompt, 1, "bob")


def adapter(tmp_path, name: str, **conf) -> str:
    (tmp_path / name).mkdir()
    (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": 8} | conf))
    return str(tmp_path / name)


def test_backend_auto_prefers_vllm_and_falls_back_to_transformers(tmp_path, monkeypatch):
    plain, tags = adapter(tmp_path, "plain"), adapter(tmp_path, "tags", trainable_token_indices=[5, 6])
    wide = adapter(tmp_path, "wide", r=64)
    auto, vllm = GenerationSettings(backend="auto"), GenerationSettings(backend="vllm")
    monkeypatch.setattr(generation, "vllm_installed", lambda: True)
    assert resolve_backend(auto, {"a": plain}) == "vllm"
    assert resolve_backend(auto, {"a": plain, "b": tags}) == "hf"  # transformers merges any peft adapter
    assert resolve_backend(GenerationSettings(backend="hf"), {}) == "hf"
    for bad, needle in [(tags, "trains token embeddings"), (wide, "rank 64 > generation.max_lora_rank 16")]:
        with pytest.raises(ValueError, match=needle):
            resolve_backend(vllm, {"b": bad})
    with pytest.raises(ValueError, match="not a LoRA adapter directory"):
        resolve_backend(vllm, {"c": str(tmp_path / "missing")})
    monkeypatch.setattr(generation, "vllm_installed", lambda: False)
    assert resolve_backend(auto, {"a": plain}) == "hf"
    with pytest.raises(ValueError, match="generation.backend must be one of"):
        GenerationSettings(backend="tgi")


@pytest.mark.slow
def test_vllm_engine_streams_audio_through_the_app(server):
    import httpx
    import numpy as np

    url, *_ = server
    text, hop = "hello there", 16000 // 50
    floor = 2 * len(text)  # generation.min_codes_per_char 2.0: the tiny random policy cannot stop before

    async def speak(c: httpx.AsyncClient, **kw) -> list[bytes]:
        body = {"model": "tts-1", "input": text, "voice": "default", "response_format": "pcm", "seed": 3} | kw
        async with c.stream("POST", "/v1/audio/speech", json=body) as r:
            assert r.status_code == 200, await r.aread()
            return [p async for p in r.aiter_bytes() if p]

    async def scenario():
        async with httpx.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as c:
            if (await c.get("/health")).json()["backend"] != "vllm":
                pytest.skip("vllm is not installed: the package's app runs the transformers engine")
            # concurrent requests share the engine's running batch (continuous batching); whole responses are
            # decoded once, so equal codes give equal audio (streamed chunks depend on arrival timing)
            whole = [speak(c, stream=False), speak(c, stream=False), speak(c, stream=False, voice="carol")]
            return await asyncio.gather(speak(c), *whole)

    parts, *whole = asyncio.run(scenario())
    streamed, a, b, lora = [np.frombuffer(b"".join(p), "<i2") for p in (parts, *whole)]
    assert len(parts) > 1 and len(streamed) >= floor * hop and len(streamed) % hop == 0  # chunks; floor held
    assert len(a) == len(streamed)  # the same seed gave the same number of codes streamed and whole
    np.testing.assert_array_equal(a, b)  # seeded: the same codes from two requests in one batch
    assert len(lora) >= floor * hop and not np.array_equal(lora, a)  # the LoRA voice's adapter acts


def test_a_word_synchronous_model_streams_only_codes_and_needs_the_words(tiny, tmp_path):
    """The engine writes the words: they are sampled like codes but never reach the client as codes."""
    cfg = tiny_config(tiny)
    cfg.generation.backend = "hf"
    model_dir = tmp_path / "words"
    shutil.copytree(cfg.model, model_dir)
    dataclasses.replace(TokenLayout.load(model_dir), interleave="words").save(model_dir)
    cfg.model = str(model_dir)
    _, tokenizer, layout = load_speechlm(model_dir)
    req = speech_request(tokenizer, layout, "hello there, hello again")
    gen = SpeechLMGeneration(cfg, cfg.model)

    async def collect(words):
        sampling = Sampling(1.0, 1.0, 200, 3, words=words)
        return [c async for codes in gen.generate(req.input_ids, sampling) for c in codes]

    codes = asyncio.run(collect(req.words))
    assert codes and all(0 <= c < layout.codebook_size for c in codes)
    with pytest.raises(ValueError, match="needs the request's words"):
        asyncio.run(collect(None))
