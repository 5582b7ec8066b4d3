"""seed-tts-eval's ASR: Whisper through transformers (English) and Paraformer-zh through FunASR (Chinese), each
from a local directory, routed per language. Whisper is tested with a tiny randomly initialised model saved in
the Hugging Face layout (no download); FunASR is an optional dependency of GPU hosts, so its adapter is tested
against a stand-in module that records how it is called."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from rewards.asr import ParaformerASR, TransformersWhisperASR, load_asr
from rewards.router import AsrConfig
from rewards.scorers import AsrScorer, Sample

SOT, EN, ZH, TRANSCRIBE, NO_TIMESTAMPS, EOT = 50257, 50258, 50259, 50358, 50362, 50256


@pytest.fixture(scope="module")
def tiny_hf_whisper(tmp_path_factory):
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    from rewards.asr import embedded_whisper_dir

    path = tmp_path_factory.mktemp("hf-whisper")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(embedded_whisper_dir() / "tokenizer.json"))
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(path)
    config = WhisperConfig(
        vocab_size=51864,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        decoder_start_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        bos_token_id=EOT,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        max_length=24,
        is_multilingual=True,  # as large-v3: the language and task are forced
        lang_to_id={"<|en|>": EN, "<|zh|>": ZH},
        task_to_id={"transcribe": TRANSCRIBE},
        no_timestamps_token_id=NO_TIMESTAMPS,
    )
    model.save_pretrained(path)
    return path


def test_transformers_whisper_loads_a_local_directory_and_forces_the_language(tiny_hf_whisper, monkeypatch):
    asr = load_asr("transformers-whisper", str(tiny_hf_whisper), device="cpu")
    assert isinstance(asr, TransformersWhisperASR) and not asr.english_only
    seen = []
    generate, forward = asr._model.generate, asr._model.forward

    def spy_generate(features, **kwargs):
        seen.append((features.shape, kwargs, []))
        return generate(features, **kwargs)

    def spy_forward(*args, **kwargs):
        seen[-1][2].append(kwargs["decoder_input_ids"][0].tolist())
        return forward(*args, **kwargs)

    monkeypatch.setattr(asr._model, "generate", spy_generate)
    monkeypatch.setattr(asr._model, "forward", spy_forward)
    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 40000)]
    batch = asr.transcribe_batch(waves, "en")
    assert len(batch) == 2 and all(isinstance(t, str) for t in batch)
    assert batch == [asr.transcribe(w, "en") for w in waves]  # 30 s padding: batched = one at a time
    shape, kwargs, prompt = seen[0]
    assert tuple(shape) == (2, 80, 3000) and kwargs == {"language": "en", "task": "transcribe"}
    assert prompt[0][:4] == [SOT, EN, TRANSCRIBE, NO_TIMESTAMPS]  # seed-tts-eval's forced decoder prompt
    asr.transcribe(waves[0], "zh")
    assert seen[-1][2][0][:2] == [SOT, ZH]


def test_transformers_whisper_needs_a_local_model(tmp_path):
    with pytest.raises(ValueError, match="needs `model`"):
        load_asr("transformers-whisper", None)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_asr("transformers-whisper", str(tmp_path / "whisper-large-v3"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_asr("transformers-whisper", str(tmp_path))


@pytest.fixture
def fake_funasr(monkeypatch):
    calls = []

    class AutoModel:
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def generate(self, input, **kwargs):  # noqa: A002  FunASR's keyword
            calls.append(("generate", input.dtype, input.shape, kwargs))
            return [{"key": "x", "text": "今天天氣很好"}]  # traditional characters

    monkeypatch.setitem(sys.modules, "funasr", types.SimpleNamespace(AutoModel=AutoModel))
    return calls


def test_paraformer_transcribes_chinese_into_simplified_characters(fake_funasr, tmp_path):
    asr = load_asr("paraformer", str(tmp_path), device="cpu")
    assert isinstance(asr, ParaformerASR)
    assert asr.transcribe_batch([np.zeros(16000)] * 2, "zh") == ["今天天气很好"] * 2
    assert fake_funasr[0] == (
        "init",
        {"model": str(tmp_path), "device": "cpu", "disable_update": True, "disable_pbar": True},
    )
    assert fake_funasr[1][1:] == (np.float32, (16000,), {"batch_size_s": 300})
    with pytest.raises(ValueError, match="Chinese only"):
        asr.transcribe(np.zeros(16000), "en")


def test_paraformer_without_funasr_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "funasr", None)  # import fails
    with pytest.raises(ImportError, match=r"tts-align\[seed-tts-eval\]"):
        load_asr("paraformer", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_asr("paraformer", str(tmp_path / "paraformer-zh"))


def test_asr_config_checks_backends_per_language():
    assert AsrConfig(per_language={"zh": {"backend": "paraformer", "model": "/m"}}).per_language["zh"]["model"] == "/m"
    with pytest.raises(ValueError, match="known|expected a backend"):
        AsrConfig(backend="wav2vec")
    with pytest.raises(ValueError, match="per_language.zh"):
        AsrConfig(per_language={"zh": {"backend": "funasr"}})
    with pytest.raises(ValueError, match="per_language.zh"):
        AsrConfig(per_language={"zh": {"backend": "paraformer", "path": "/m"}})


def test_scorer_routes_each_language_to_its_asr(fake_funasr, tmp_path):
    scorer = AsrScorer(per_language={"zh": {"backend": "paraformer", "model": str(tmp_path)}}, threads=1)
    wave = np.zeros(16000, np.float32)
    zh, en = scorer.score_batch(
        [
            Sample(id="z", text="今天天气很好", wave=wave, sr=16000, language="zh"),
            Sample(id="e", text="hello", wave=wave, sr=16000, language="en"),
        ]
    )
    assert zh["transcript"] == "今天天气很好" and zh["error_rate"] == 0.0 and zh["metric"] == "cer"
    assert en["metric"] == "wer" and "今天" not in (en["transcript"] or "")  # English went to Whisper tiny.en
