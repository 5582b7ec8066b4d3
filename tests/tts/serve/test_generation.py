"""The generation deployment: the transformers engine used directly (no Ray): streamed codes, seeds, the code
floor, LoRA voices; backend choice; and (slow) the vLLM engine serving the tiny app through Ray Serve."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.tts.serve.tiny_app import KEY, save_lora, tiny_config
from tts.prompts import encode_text, inference
from tts.serve import generation
from tts.serve.config import GenerationSettings, VoiceSpec
from tts.serve.generation import Sampling, SpeechLMGeneration, resolve_backend


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tts.speechlm import load_speechlm

    tmp = tmp_path_factory.mktemp("gen")
    cfg = tiny_config(tmp)
    cfg.generation.backend = "hf"
    save_lora(cfg.model, tmp / "anna", fill=0.5)
    cfg.voices = [VoiceSpec(name="anna", lora=str(tmp / "anna"))]
    _, tokenizer, layout = load_speechlm(cfg.model)
    prompt = inference(layout, encode_text(tokenizer, "hello there")).input_ids
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
    import io

    import httpx
    import numpy as np
    import soundfile as sf

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
            # concurrent requests share the engine's running batch (continuous batching)
            return await asyncio.gather(speak(c), speak(c), speak(c, voice="carol"), speak(c, response_format="wav"))

    parts, again, lora, wav = asyncio.run(scenario())
    pcm = [np.frombuffer(b"".join(p), "<i2") for p in (parts, again, lora)]
    assert len(parts) > 1 and len(pcm[0]) >= floor * hop and len(pcm[0]) % hop == 0  # chunks; the floor held
    np.testing.assert_array_equal(pcm[0], pcm[1])  # seeded: the same audio from two requests in one batch
    assert len(pcm[2]) >= floor * hop and not np.array_equal(pcm[2], pcm[0])  # the LoRA voice's adapter acts
    np.testing.assert_array_equal(sf.read(io.BytesIO(b"".join(wav)), dtype="int16")[0], pcm[0])
