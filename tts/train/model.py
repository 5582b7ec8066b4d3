"""Where a run's weights come from: a SpeechLM checkpoint, a run directory, or a plain causal LM expanded here.

The checks run on the driver before any worker starts, so a wrong path or a checkpoint built for another
codec fails in seconds with a message instead of after the cluster has spun up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tts.layout import TokenLayout, audio_token, expand, from_tokenizer
from tts.speechlm import load_speechlm, stop_at_speech_end
from tts.train import checkpoint


def model_dir(init_from: str | Path) -> Path:
    """The model directory `init_from` names: itself, or a run directory's latest checkpoint."""
    path = Path(init_from)
    if not path.exists():
        raise FileNotFoundError(f"init_from {path} does not exist")
    if (path / "config.json").is_file():
        return path
    found = checkpoint.latest(path)
    if found is None:
        raise FileNotFoundError(f"init_from {path} is neither a model checkpoint (no config.json) nor a run directory")
    return found


def speech_layout(directory: Path, codebook_size: int) -> TokenLayout | None:
    """The token layout of a SpeechLM checkpoint, None for a plain LM (to be expanded); raises when the
    checkpoint's audio vocabulary does not match the codec."""
    from transformers import AutoTokenizer

    if (directory / "layout.json").is_file():
        layout = TokenLayout.load(directory)
    else:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if audio_token(0) not in tokenizer.get_vocab():
            return None
        layout = from_tokenizer(tokenizer)
    if layout.codebook_size != codebook_size:
        raise ValueError(
            f"{directory} was built for a codebook of {layout.codebook_size} codes but the codec has "
            f"{codebook_size}: train with the codec_dir it was built for, or start from a matching checkpoint"
        )
    return layout


def load(directory: Path, codebook_size: int, seed: int, attn_implementation: str) -> tuple[Any, Any, TokenLayout]:
    """(model in fp32, tokenizer, layout); a plain LM gets the special and audio tokens added (seeded, so
    every worker draws the same new rows)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if speech_layout(directory, codebook_size) is not None:
        model, tokenizer, layout = load_speechlm(directory)
    else:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
        layout = expand(model, tokenizer, codebook_size=codebook_size, seed=seed)
        stop_at_speech_end(model, layout)
    model.set_attn_implementation(attn_implementation)
    return model, tokenizer, layout
