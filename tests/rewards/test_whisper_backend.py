"""The openai-whisper backend (production: large-v3 on GPU) loads a local checkpoint and transcribes;
tested with a tiny randomly initialised Whisper so no download is needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewards.asr import WhisperASR, load_asr


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51864,
        n_text_ctx=448,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.en.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def test_local_checkpoint_transcribes(tiny_checkpoint):
    asr = load_asr("whisper", str(tiny_checkpoint), device="cpu")
    assert isinstance(asr, WhisperASR) and asr.english_only  # n_vocab 51864 = English-only tokenizer
    text = asr.transcribe(np.zeros(16000, np.float32), "en")
    assert isinstance(text, str)  # random weights: any string, but the full decode path ran
    with pytest.raises(ValueError, match="English-only"):
        asr.transcribe(np.zeros(16000, np.float32), "de")


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_asr("whisper", str(tmp_path / "missing.pt"), device="cpu")
    with pytest.raises(ValueError, match="unknown ASR backend"):
        load_asr("kaldi")


def test_openai_whisper_batch_runs(tiny_checkpoint):
    asr = load_asr("whisper", str(tiny_checkpoint), device="cpu")
    texts = asr.transcribe_batch([np.zeros(16000, np.float32), np.zeros(8000, np.float32)], "en")
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_faster_whisper_batch_matches_singletons_and_is_accurate():
    from rewards.asr import FasterWhisperASR, error_rate
    from tts.corpus.generate import speak
    from tts.corpus.voices import Speaker

    texts = ["The children walked to the park after lunch.", "On Sunday, my sister walked to the market."]
    waves = [speak(Speaker("a", "en", "en-us+m1", 45, 160), t, 16000) for t in texts]
    asr = FasterWhisperASR()
    batch = asr.transcribe_batch(waves + [np.zeros(40 * 16000, np.float32)])  # a > 30 s clip takes the long path
    assert batch[:2] == [asr.transcribe_batch([w])[0] for w in waves]
    assert all(error_rate(t, h) < 0.3 for t, h in zip(texts, batch[:2]))
    assert isinstance(batch[2], str)
