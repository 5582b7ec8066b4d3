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
