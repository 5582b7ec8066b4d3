"""Where a run's weights come from: a SpeechLM checkpoint, a run directory, or a plain causal LM expanded here.

The checks run on the driver before any worker starts, so a wrong path or a checkpoint built for another
codec fails in seconds with a message instead of after the cluster has spun up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tts.base.layout import TokenLayout, expand
from tts.speechlm import load_speechlm, speech_layout, stop_at_speech_end


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
